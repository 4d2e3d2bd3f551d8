"""A seeded fuzz test of the CLI and the API: random bytes, random WAV headers, cut files, random option values.

Whatever is thrown, `asr transcribe` exits 0 or 2 with no traceback, gives one error line per bad input, and still
transcribes the good file given beside it; `load_audio` returns float32 audio or raises `AudioError`, nothing else.
`FUZZ_CASES` sets the number of cases per test (default 150).
"""

import io
import os
import struct

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import load_audio
from asr.checkpoint import save_model
from asr.cli import main
from asr.errors import AsrError, AudioError
from asr.features import FeatureConfig
from asr.model import BiLstmCtc, ModelConfig
from asr.text import Vocabulary

CASES = int(os.environ.get("FUZZ_CASES", "150"))
SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    model = folder / "model.pt"
    save_model(model, BiLstmCtc(ModelConfig(conv_channels=4, hidden_size=8, num_layers=1)), FeatureConfig(),
               Vocabulary())
    good = folder / "good.wav"
    soundfile.write(good, (0.1 * np.sin(np.arange(8000) * 0.05)).astype(np.float32), 16000)
    return folder, model, good


def random_wav_header(rng) -> bytes:
    """A RIFF/WAVE header with random but plausible-looking fields, then random data."""
    rate = int(rng.choice([0, 1, 8000, 16000, 44100, 2**31 - 1, int(rng.integers(0, 2**32))]))
    channels = int(rng.choice([0, 1, 2, 7, 65535]))
    bits = int(rng.choice([0, 8, 16, 24, 32, 64, 13]))
    fmt = int(rng.choice([1, 3, 6, 7, 0xFFFE, 0]))
    data = rng.bytes(int(rng.integers(0, 4000)))
    declared = int(rng.choice([len(data), 0, 2**32 - 1, int(rng.integers(0, 2**32))]))
    block = max(1, channels * bits // 8) & 0xFFFF
    return (b"RIFF" + struct.pack("<I", (36 + declared) & 0xFFFFFFFF) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, fmt, channels, rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF, block,
                        bits) + b"data" + struct.pack("<I", declared) + data)


def random_file(rng, good: bytes) -> bytes:
    kind = int(rng.integers(4))
    if kind == 0:
        return rng.bytes(int(rng.choice([0, 1, 44, 500, 20000])))
    if kind == 1:
        return random_wav_header(rng)
    if kind == 2:  # the good file cut short or with bytes flipped
        data = bytearray(good[: int(rng.integers(0, len(good)))])
        for _ in range(int(rng.integers(0, 20))):
            if data:
                data[int(rng.integers(len(data)))] ^= int(rng.integers(1, 256))
        return bytes(data)
    buffer = io.BytesIO()  # a real file of a random format, length and level
    length = int(rng.choice([1, 100, 399, 400, 3000]))
    samples = (rng.standard_normal(length) * float(rng.choice([0, 1e-6, 0.3, 50, 1e20]))).astype(np.float32)
    soundfile.write(buffer, samples, int(rng.choice([8000, 16000, 48000])), format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def random_option(rng) -> list[str]:
    values = ["nan", "inf", "-inf", "-1", "0", "1", "3", "1e308", "100000", "abc", "", "0.5", "-20", "2.5"]
    option = str(rng.choice(["--lm-weight", "--word-bonus", "--unk-penalty", "--blank-penalty", "--beam-size",
                             "--passes", "--threads", "--batch-size", "--device", "--format", "--int8", "none"]))
    if option == "none":
        return []
    if option == "--int8":
        return [option]
    if option == "--device":
        return [option, str(rng.choice(["cpu", "foo", "cuda:x", "auto", ""]))]
    if option == "--format":
        return [option, str(rng.choice(["text", "json", "srt", "vtt", "xml"]))]
    return [option, str(rng.choice(values))]


def test_transcribe_survives_random_files_and_options(setup, capsys):
    folder, model, good = setup
    rng = np.random.default_rng(2026)
    good_bytes = good.read_bytes()
    outcomes = {0: 0, 2: 0}
    for case in range(CASES):
        bad = folder / f"case{case}{SUFFIXES[case % len(SUFFIXES)]}"
        bad.write_bytes(random_file(rng, good_bytes))
        options = random_option(rng)
        code = main(["transcribe", str(bad), str(good), "--model", str(model), "--no-lm", "--no-progress",
                     *options])
        out, err = capsys.readouterr()
        context = f"case {case}: {bad.stat().st_size} bytes, options {options}: {err[-300:]!r}"
        assert code in (0, 2), context
        assert "Traceback" not in err and "Error:" not in err.replace("asr: error:", ""), context
        errors = [line for line in err.splitlines() if line.strip()]
        if any("transcribe: error: argument" in line for line in errors):  # an option refused: nothing run
            assert code == 2 and len(errors) == 1 and out == "", context
        else:
            assert str(good) in out, context  # the good file is transcribed whatever came beside it
            assert len(errors) <= 1 and all(line.startswith("asr: error: ") for line in errors), context
            assert (code == 2) == bool(errors), context
        outcomes[code] += 1
        bad.unlink()
    assert outcomes[2] > CASES // 4  # the generator does produce bad input


def test_load_audio_returns_audio_or_raises_audio_error(setup):
    rng = np.random.default_rng(7)
    good_bytes = setup[2].read_bytes()
    for case in range(CASES):
        try:
            if case % 2:
                samples = load_audio(random_file(rng, good_bytes), name=f"case{case}")
            else:
                dtype = rng.choice([np.float32, np.float64, np.int16, np.int32, np.uint8, np.complex64, np.bool_])
                shape = tuple(int(rng.choice([0, 1, 2, 399, 400, 3000])) for _ in range(int(rng.integers(0, 4))))
                if np.prod(shape) > 200_000:
                    shape = shape[:2]
                with np.errstate(invalid="ignore", over="ignore"):  # 1e30 cast to integers wraps: fine here
                    array = (rng.standard_normal(shape) * float(rng.choice([1, 1e30]))).astype(dtype)
                samples = load_audio(array, sample_rate=rng.choice([None, 0, -5, 16000, 44100, 10**9, "x"]))
        except AudioError:
            continue
        except AsrError as error:
            pytest.fail(f"case {case}: {type(error).__name__}, not AudioError: {error}")
        assert samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all(), case
        assert np.abs(samples).max(initial=0) < 1e4 * 2, case
