"""tools/plot_model_lineage.py: scores each committed default model, reads old scores back, names a bad commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "plot_model_lineage.py"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def run_tool(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--output", "lineage.png", "--work-dir", "models", *args],
                          cwd=repo, capture_output=True, text=True)


def test_each_committed_model_is_scored_once(tmp_path, model_path, noise_manifest):
    repo = tmp_path / "repo"
    (repo / "asr" / "models").mkdir(parents=True)
    git(repo, "init", "-q")
    shutil.copy(model_path, repo / "asr" / "models" / "default.pt")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first model")
    first = git(repo, "rev-parse", "--short", "HEAD")

    result = run_tool(repo, "--models", f"first={first}", "--sets", f"noise={noise_manifest}", "--goal", "noise=50")
    assert result.returncode == 0, result.stderr
    scores = json.loads((repo / "lineage.json").read_text())
    assert list(scores) == ["noise"] and list(scores["noise"]) == ["first"]
    assert 0.0 <= scores["noise"]["first"]  # an untrained model: any rate, but one was measured
    assert (repo / "lineage.png").stat().st_size > 0
    assert (repo / "models" / first / "default.pt").read_bytes() == model_path.read_bytes()

    # A second run with a score already there reads it back instead of evaluating again.
    scores["noise"]["first"] = 0.123
    (repo / "lineage.json").write_text(json.dumps(scores))
    result = run_tool(repo, "--models", f"first={first}", "--sets", f"noise={noise_manifest}")
    assert result.returncode == 0, result.stderr
    assert "WER" not in result.stdout
    assert json.loads((repo / "lineage.json").read_text())["noise"]["first"] == 0.123


def test_a_commit_without_a_model_is_a_one_line_error(tmp_path, noise_manifest):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("no model here\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "no model")
    result = run_tool(repo, "--models", "empty=HEAD", "--sets", f"noise={noise_manifest}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: commit HEAD has no asr/models/default.pt")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_set_without_a_name_is_refused(tmp_path, noise_manifest):
    result = run_tool(tmp_path, "--models", "a=HEAD", "--sets", str(noise_manifest))
    assert result.returncode == 2
    assert "--sets takes NAME=VALUE pairs" in result.stderr
