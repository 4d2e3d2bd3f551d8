"""tools/wer_by_corpus.py: an errors file broken down by the corpus of each utterance, and by length."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr.errors import AsrError

TOOL = Path(__file__).resolve().parent.parent / "tools" / "wer_by_corpus.py"


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def test_errors_are_grouped_by_corpus_and_length(tmp_path):
    entries = [("a", "/data/real-train/fsdd/audio/a.wav", "FIVE"),
               ("b", "/x/natural/kokoro/dev/1/1/b.flac", "CALL JOHN SMITH NOW"),
               ("c", "/x/natural/kokoro/dev/1/1/c.flac", "A LONG BOOK SENTENCE OF EIGHT WORDS HERE"),
               ("d", "/x/other/d.wav", "HELLO")]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": i, "audio": a, "duration": 1.0, "text": t}) + "\n"
                                for i, a, t in entries))
    errors = tmp_path / "e.txt"
    errors.write_text("WER 40.00% (4/14)\n\na  errors 1/1\nREF: FIVE\n\nb  errors 1/4\n\nc  errors 2/8\n\n"
                      "d  errors 0/1\n")
    result = run_tool("--errors", errors, "--manifest", manifest, "--short-words", 6)
    rows = {line[:40].strip(): line.split()[-3:] for line in result.stdout.splitlines()[1:]}
    assert result.returncode == 0
    assert rows == {"fsdd, up to 6 words": ["1", "1", "100.00"], "kokoro, up to 6 words": ["1", "4", "25.00"],
                    "kokoro, over 6 words": ["1", "8", "25.00"], "other, up to 6 words": ["1", "1", "0.00"]}


def test_an_errors_file_of_another_set_is_refused(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "z", "audio": "z.wav", "duration": 1.0, "text": "Z"}) + "\n")
    errors = tmp_path / "e.txt"
    errors.write_text("a  errors 1/1\n")
    result = run_tool("--errors", errors, "--manifest", manifest)
    assert result.returncode == 2 and "no utterance" in result.stderr
    result = run_tool("--errors", tmp_path / "missing.txt", "--manifest", manifest)
    assert result.returncode == 2 and "missing.txt" in result.stderr


def test_errors_files_are_read_back_as_written(tmp_path):
    from asr.evaluate import EvaluationReport, read_errors_file, write_errors_file
    from asr.metrics import char_error_rate, word_error_rate

    references, hypotheses = ("THE CAT SAT", "YES", "CALL HOME NOW"), ("THE CAT SAT", "NO", "CALL HOME")
    report = EvaluationReport(word_error_rate(references, hypotheses), char_error_rate(references, hypotheses), 3, 0,
                              references, hypotheses, ("u1", "u2", "u3"))
    path = tmp_path / "errors.txt"
    write_errors_file(path, report)
    assert read_errors_file(path) == {"u1": (0, 3), "u2": (1, 1), "u3": (1, 3)}
    path.write_text("not an errors file\n")
    with pytest.raises(AsrError, match="no 'ID  errors E/N' lines"):
        read_errors_file(path)
