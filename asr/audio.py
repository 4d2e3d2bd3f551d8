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

from asr.errors import AudioError, one_line
from asr.torchaudio_backend import torchaudio

SAMPLE_RATE = 16_000  # Hz; every model in this package works at this rate
# Longer input is refused rather than read whole (3 h of 16 kHz float32 is ~0.7 GB); long files are
# transcribed in windows by the caller instead.
MAX_SECONDS = 3 * 3600
# A run of exact zeros this long (20 ms) is digital silence (an edit, or files joined with silence between them),
# not a quiet stretch of a recording, whose samples cross zero but do not stay there.
DIGITAL_SILENCE_SAMPLES = SAMPLE_RATE // 50

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
        raise AudioError(path, f"not a readable audio file ({one_line(error, limit=120)})",
                         "convert it to WAV or FLAC") from None
    return info.frames / info.samplerate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc), float32 in and out."""
    tensor = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio().functional.resample(tensor, from_rate, to_rate).numpy()


def runs_of_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The [start, end) indices of each run of True in a bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def background_rms(samples: np.ndarray) -> float:
    """The level of a recording's background: the RMS of its quietest whole 20 ms; 0.0 if it is shorter."""
    frame = SAMPLE_RATE // 50
    whole = len(samples) // frame * frame
    if whole == 0:
        return 0.0
    return float(np.sqrt((samples[:whole].astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1).min()))


def fill_silent_edges(samples: np.ndarray, seed: int = 0) -> np.ndarray:
    """`samples` with digital silence (`DIGITAL_SILENCE_SAMPLES` or more exact zeros) at its start and end replaced
    by Gaussian noise at the level of the recording's background, the way training pads each utterance
    (`pad_with_background`), when the recording between them never falls silent itself.

    Such edges are what a noisy recording cut from a longer file, or joined to others, has around it: silence
    the model was never trained on, which it mishears the speech next to. With 0.4 s of zeros after each, the WER
    with the LM of four sets of 111-123 dev utterances rose from 11.43 to 12.20%; filled in, 11.46% (and the
    utterances as they are still score 11.43%). Recordings with digital silence inside (clean synthetic speech,
    silent between words) are left as they are: training padded those with silence too, their quietest 20 ms
    being silent. Fixed `seed`, so a recording always gets the same transcript."""
    runs = [(start, end) for start, end in zip(*runs_of_true(samples == 0)) if end - start >= DIGITAL_SILENCE_SAMPLES]
    if not runs:
        return samples
    lead = runs[0][1] if runs[0][0] == 0 else 0
    trail = runs[-1][0] if runs[-1][1] == len(samples) else len(samples)
    edge_runs = int(lead > 0) + int(trail < len(samples))  # numpy bools would add as "or"
    if len(runs) != edge_runs or trail <= lead:  # silence inside, or nothing but silence
        return samples
    level = background_rms(samples[lead:trail])
    rng = np.random.default_rng(seed)
    filled = samples.astype(np.float32, copy=True)
    filled[:lead] = rng.standard_normal(lead) * level
    filled[trail:] = rng.standard_normal(len(samples) - trail) * level
    return filled


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
        raise AudioError(label, f"not a readable audio file ({one_line(error, limit=120)})",
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


