"""Reading audio: any file libsndfile can read, bytes, or an array, to 16 kHz mono float32.

The rest of the package only ever sees `numpy.ndarray[float32]` of shape (samples,) at `SAMPLE_RATE`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
import soundfile
import torch

from asr.errors import AudioError

SAMPLE_RATE = 16_000  # Hz; every model in this package works at this rate
# Longer input is refused rather than read whole (3 h of 16 kHz float32 is ~0.7 GB); long files are
# transcribed in windows by the caller instead.
MAX_SECONDS = 3 * 3600

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, torch.Tensor]


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    *,
    max_seconds: float = MAX_SECONDS,
    name: str | None = None,
) -> np.ndarray:
    """Return `source` as float32 mono samples at 16 kHz, shape (samples,).

    `source` is a path, the bytes of an audio file, or an array (samples,) or (samples, channels) / (channels, samples)
    with its `sample_rate`. `name` labels the input in error messages when it is not a path.
    Raises `AudioError` for anything unusable: missing, not audio, empty, NaN or infinite, longer than `max_seconds`.
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        label = name or "<array>"
        if sample_rate is None:
            raise AudioError(label, "an array was given without its sample rate", "pass sample_rate=")
        samples = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
        samples = _to_mono(samples, label, channels_last=None)
        rate = int(sample_rate)
    elif isinstance(source, (bytes, bytearray)):
        label = name or "<bytes>"
        samples, rate = _read_file(io.BytesIO(source), label, max_seconds)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise AudioError(label, "no such file", "check the path")
        if path.is_dir():
            raise AudioError(label, "is a directory, not an audio file", "pass the audio files inside it")
        samples, rate = _read_file(path, label, max_seconds)
    else:
        raise TypeError(f"cannot read audio from {type(source).__name__}; pass a path, bytes or an array")

    _check_samples(samples, rate, label, max_seconds)
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the file header, without decoding the samples."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(path, f"not a readable audio file ({_short(error)})", "convert it to WAV or FLAC") from None
    return info.frames / info.samplerate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc), float32 in and out."""
    import torchaudio.functional  # kept here so torchaudio is used in one place for audio

    tensor = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio.functional.resample(tensor, from_rate, to_rate).numpy()


def _read_file(file, label: str, max_seconds: float) -> tuple[np.ndarray, int]:
    try:
        with soundfile.SoundFile(file) as sound:
            if sound.frames > max_seconds * sound.samplerate:
                hours = sound.frames / sound.samplerate / 3600
                raise AudioError(label, f"is {hours:.1f} h long, over the {max_seconds / 3600:.1f} h limit",
                                 "split it into shorter files")
            samples = sound.read(dtype="float32", always_2d=True)
            rate = sound.samplerate
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, OSError, EOFError) as error:
        raise AudioError(label, f"not a readable audio file ({_short(error)})",
                         "convert it to WAV, FLAC, OGG or MP3") from None
    return _to_mono(samples, label, channels_last=True), rate


def _to_mono(samples: np.ndarray, label: str, channels_last: bool | None) -> np.ndarray:
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.ndim != 2:
        raise AudioError(label, f"expected 1 or 2 dimensions (samples[, channels]), got shape {samples.shape}")
    if channels_last is None:  # an array from the caller: the channel axis is the short one
        channels_last = samples.shape[1] <= samples.shape[0]
    channel_axis = 1 if channels_last else 0
    return samples.astype(np.float32, copy=False).mean(axis=channel_axis)


def _check_samples(samples: np.ndarray, rate: int, label: str, max_seconds: float) -> None:
    if rate <= 0:
        raise AudioError(label, f"invalid sample rate {rate}")
    if samples.size == 0:
        raise AudioError(label, "contains no audio samples (zero length)", "check the recording")
    if not np.isfinite(samples).all():
        raise AudioError(label, "contains NaN or infinite samples", "the file is corrupt; re-export it")
    if samples.size > max_seconds * rate:
        raise AudioError(label, f"is {samples.size / rate / 3600:.1f} h long, over the {max_seconds / 3600:.1f} h "
                                "limit", "split it into shorter pieces")


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]
