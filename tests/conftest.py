"""Test helpers: every test makes its own data (tones, noise, synthetic speech) in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, frequency: float = 440.0,
               fmt: str | None = None) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * frequency * t).astype(np.float32)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    soundfile.write(path, data, rate, format=fmt)
    return mono


def write_manifest_lines(path: Path, entries: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


@pytest.fixture
def noise_manifest(tmp_path) -> Path:
    """Six utterances of coloured noise with short texts: enough to train a few steps on."""
    rng = np.random.default_rng(0)
    texts = ["HELLO", "A CAT", "THE DOG", "YES NO", "GO HOME", "OK"]
    entries = []
    for i, text in enumerate(texts):
        samples = (0.1 * rng.standard_normal(int(16000 * (0.6 + 0.1 * i)))).astype(np.float32)
        soundfile.write(tmp_path / f"n{i}.wav", samples, 16000)
        entries.append({"id": f"n{i}", "audio": f"n{i}.wav", "duration": len(samples) / 16000, "text": text})
    return write_manifest_lines(tmp_path / "noise.jsonl", entries)


@pytest.fixture
def model_path(tmp_path) -> Path:
    """An untrained tiny model file: enough to run every command end to end in milliseconds."""
    import torch

    from asr.checkpoint import save_model
    from asr.features import FeatureConfig
    from asr.model import BiLstmCtc, ModelConfig
    from asr.text import Vocabulary

    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_model(path, BiLstmCtc(ModelConfig(conv_channels=4, hidden_size=8, num_layers=1)), FeatureConfig(),
               Vocabulary())
    return path


API_KEY = "test-key"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`asr serve` with the bundled model on a free localhost port, as a user starts it: an API key, a 1 MB upload
    limit. Yields (base URL, process, spool folder)."""
    from asr.serve.process import ServerProcess

    running = ServerProcess(tmp_path_factory.mktemp("spool"), ["--max-upload-mb", "1", "--threads", "2"],
                            env={"ASR_API_KEY": API_KEY})
    yield running.url, running.process, running.spool
    running.stop()
