"""tools/compare_wer.py: the paired bootstrap of two models' WER on the same utterances."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.errors import AsrError

TOOL = Path(__file__).resolve().parent.parent / "tools" / "compare_wer.py"
spec = importlib.util.spec_from_file_location("compare_wer", TOOL)
compare_wer = importlib.util.module_from_spec(spec)
sys.modules["compare_wer"] = compare_wer  # its dataclass looks its module up there
spec.loader.exec_module(compare_wer)


def errors_file(path: Path, errors: dict[str, tuple[int, int]]) -> Path:
    path.write_text("WER x\n\n" + "".join(f"{i}  errors {e}/{n}\nREF: X\n\n" for i, (e, n) in errors.items()))
    return path


def test_a_clear_gain_has_an_interval_below_zero_and_a_tie_one_around_it():
    rng = np.random.default_rng(1)
    words = rng.integers(5, 20, size=400)
    baseline = rng.binomial(words, 0.2)
    better = np.maximum(baseline - rng.binomial(words, 0.1), 0)  # about half the errors fixed, everywhere
    gain = compare_wer.paired_bootstrap(baseline, better, words, resamples=2000)
    assert gain.difference < 0 and gain.high < 0 and gain.candidate_better == 1.0
    assert gain.baseline_wer == pytest.approx(100 * baseline.sum() / words.sum())
    shuffled_tie = compare_wer.paired_bootstrap(baseline, rng.permutation(baseline), words, resamples=2000)
    assert shuffled_tie.low < 0 < shuffled_tie.high  # same errors, other utterances: the set cannot tell
    same = compare_wer.paired_bootstrap(baseline, baseline, words, resamples=500)
    assert same.difference == same.low == same.high == 0 and same.candidate_better == 0


def test_the_tool_prints_a_row_per_set(tmp_path):
    base = errors_file(tmp_path / "base.txt", {"a": (2, 10), "b": (1, 5), "c": (0, 4), "d": (3, 8)})
    new = errors_file(tmp_path / "new.txt", {"a": (1, 10), "b": (0, 5), "c": (0, 4), "d": (2, 8)})
    result = subprocess.run([sys.executable, str(TOOL), "--set", "small", base, new, "--baseline", base,
                             "--candidate", base, "--resamples", "500"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert [r[0].strip() for r in rows] == ["set", "small"]
    assert [c.strip() for c in rows[1][1:6]] == ["4", "27", "22.22", "11.11", "-11.11"]
    assert rows[1][7].strip() == "100%" and rows[0][5].strip() == "+0.00"


def test_files_of_different_utterances_are_refused_in_one_line(tmp_path):
    base = errors_file(tmp_path / "base.txt", {"a": (2, 10), "b": (1, 5)})
    other = errors_file(tmp_path / "other.txt", {"a": (2, 10), "z": (1, 5)})
    longer = errors_file(tmp_path / "longer.txt", {"a": (2, 11), "b": (1, 5)})
    for candidate, said in [(other, "different utterances"), (longer, "reference words")]:
        result = subprocess.run([sys.executable, str(TOOL), "--baseline", base, "--candidate", candidate],
                                capture_output=True, text=True)
        assert result.returncode == 2 and said in result.stderr and len(result.stderr.splitlines()) == 1
    with pytest.raises(AsrError, match="no reference words"):
        compare_wer.paired_bootstrap(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))
