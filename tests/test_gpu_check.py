"""tools/gpu_check.py, the check the first lent GPU runs, proven on the CPU at tiny sizes: every check runs and
passes (training, exact resume, throughput ratio, torchrun, transcription), so the GPU run is not its first run."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_gpu_check_runs_every_check_on_the_cpu(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--quick",
                          "--output", str(tmp_path / "results.md")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.split(" ")[0] in ("PASS", "FAIL", "SKIP")]
    assert [line.split(" ")[1].rstrip(":") for line in lines] == ["training", "resume", "throughput", "large-batch",
                                                                  "torchrun", "transcribe"]
    assert all(line.startswith("PASS") for line in lines if "large-batch" not in line)
    assert "ratio" in lines[2] and "| torchrun | PASS |" in (tmp_path / "results.md").read_text()
