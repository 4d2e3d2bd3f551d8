"""Two-process data-parallel training (torchrun, gloo on the CPU) equals one process on the combined batches."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from asr.checkpoint import load_model_file
from asr.model import BiLstmCtc

FRAMES_PER_UTTERANCE = 81  # every utterance the same length, so batches hold a fixed number of them
COMMON = ["train.epochs=1", "train.sortagrad=true", "train.spec_augment=false", "model.dropout=0.0",
          "train.num_workers=0", "model.hidden_size=16", "train.warmup_steps=1", "train.log_every_steps=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_on_combined_batches(tmp_path):
    rng = np.random.default_rng(0)
    texts = ["A CAT", "THE DOG", "YES", "NO WAY", "HELLO", "GO ON", "HI THERE", "OK NOW"] * 2
    samples_per_utterance = (FRAMES_PER_UTTERANCE - 1) * 160
    lines = []
    for i, text in enumerate(texts):
        soundfile.write(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(samples_per_utterance)).astype(np.float32),
                        16000, subtype="FLOAT")
        lines.append(json.dumps({"id": f"u{i}", "audio": f"u{i}.wav", "duration": samples_per_utterance / 16000,
                                 "text": text}))
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")

    def run(launcher, exp, per_batch):
        args = ["train", "--train-data", str(manifest), "--exp-dir", str(tmp_path / exp), "--preset", "tiny",
                "--device", "cpu", "--no-progress"]
        for override in COMMON + [f"train.max_batch_frames={per_batch * FRAMES_PER_UTTERANCE}"]:
            args += ["--set", override]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(launcher + args, check=True, env=env, timeout=300)
        return load_model_file(tmp_path / exp / "model.pt")

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                "127.0.0.1", "--master-port", str(free_port()), "-m", "asr"]
    two = run(torchrun, "ddp", per_batch=2)  # each process: 2 utterances a step
    one = run([sys.executable, "-m", "asr"], "single", per_batch=4)  # the same 4 utterances a step
    assert two.metadata["processes"] == 2 and two.metadata["steps"] == one.metadata["steps"] == 4
    for name, tensor in one.model.state_dict().items():
        assert torch.allclose(two.model.state_dict()[name], tensor, atol=1e-5, rtol=1e-4), name
    torch.manual_seed(0)  # the seed training starts from: the initial weights
    start = BiLstmCtc(one.model.config).state_dict()
    # Training moved the weights, so the equality above says something.
    assert any(not torch.allclose(start[n], t) for n, t in one.model.state_dict().items() if "feature" not in n)
