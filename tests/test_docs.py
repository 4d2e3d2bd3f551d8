"""The README's commands, run as a user would copy them, so the docs cannot rot: every line of its "Transcribe"
block (on the example recording, copied to the file names the README uses) and its Python block."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "examples" / "speech.txt").read_text().strip()


def _block_after(heading: str, language: str) -> str:
    section = README.split(f"## {heading}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def workdir(tmp_path):
    """The files the README's examples name, each the example recording in that format."""
    samples, rate = soundfile.read(ROOT / "examples" / "speech.flac", dtype="float32")
    for name in ("speech.wav", "a.wav", "b.flac", "talks/one.flac", "talk.mp3", "speech.flac"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        soundfile.write(tmp_path / name, samples, rate)
    return tmp_path


def _commands():
    lines = []
    for line in _block_after("Transcribe", "bash").splitlines():
        command = line.split("  #")[0].strip()
        if command:
            lines.append(command)
    return lines


def test_the_transcribe_block_has_the_commands_we_run():
    assert len(_commands()) == 5 and all(c.startswith("asr transcribe ") for c in _commands())


@pytest.mark.slow
@pytest.mark.parametrize("command", _commands())
def test_readme_transcribe_commands(command, workdir):
    if "--model exp/model.pt" in command:  # a model of your own: the bundled one stands in for it
        (workdir / "exp").mkdir()
        shutil.copy(ROOT / "asr" / "models" / "default.pt", workdir / "exp" / "model.pt")
    argv = [sys.executable, "-m", "asr", *shlex.split(command)[1:]]
    result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    if "--output-dir subs" in command:
        assert "-->" in (workdir / "subs" / "talk.srt").read_text()
    else:
        assert REFERENCE.split()[0] in result.stdout and "Traceback" not in result.stderr


@pytest.mark.slow
def test_readme_python_block(workdir):
    code = _block_after("Transcribe", "python")
    result = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == REFERENCE  # the one-call form prints the transcript
