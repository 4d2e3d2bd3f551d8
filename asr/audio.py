"""Reading audio: any file libsndfile can read, bytes, or an array, to 16 kHz mono float32.

The rest of the package only ever sees `numpy.ndarray[float32]` of shape (samples,) at `SAMPLE_RATE`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import tempfile
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

# What a file header may declare: a rate outside this range is a damaged header, not audio.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000
# Shorter than one 25 ms analysis window there is nothing to transcribe (and the features cannot be computed).
MIN_SECONDS = 0.025
# Float audio is nominally within +-1 (integer PCM read as float too); samples beyond this are damage, not sound.
MAX_ABS_SAMPLE = 1e4

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, torch.Tensor]
log = logging.getLogger(__name__)


def warn_damaged(label: str, problem: str) -> None:
    """Report a file that was transcribed only in part (truncated, damaged samples). The CLI counts these records
    (`damaged=True`) and exits with status 2 at the end, as for other bad files."""
    log.warning("%s: %s", label, problem, extra={"damaged": True})


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
    if isinstance(source, (np.ndarray, np.generic, torch.Tensor)):
        label = name or "<array>"
        if sample_rate is None:
            raise AudioError(label, "an array was given without its sample rate", "pass sample_rate=")
        samples = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
        if samples.dtype.kind in "iu":  # integer PCM: scale to +-1 as a file reader would
            info = np.iinfo(samples.dtype)
            samples = (samples.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
        elif samples.dtype.kind != "f":
            raise AudioError(label, f"an array of {samples.dtype} is not audio", "pass float or integer samples")
        samples, damage = _to_mono(samples, label, channels_last=None), ""
        try:
            rate = int(sample_rate)
        except (TypeError, ValueError, OverflowError):
            raise AudioError(label, f"sample rate {sample_rate!r} is not a whole number of Hz") from None
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(label, f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
                             "pass the rate the samples were recorded at")
    elif isinstance(source, (bytes, bytearray)):
        label = name or "<bytes>"
        samples, rate, damage = _read_file(io.BytesIO(source), label, max_seconds)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        check_regular_file(path, label)
        samples, rate, damage = _read_file(path, label, max_seconds)
    else:
        raise TypeError(f"cannot read audio from {type(source).__name__}; pass a path, bytes or an array")

    _check_samples(samples, rate, label, max_seconds)
    if samples.size < MIN_SECONDS * rate:  # refused before any repair is reported: one line per bad file
        raise AudioError(label, f"is only {1000 * samples.size / rate:.1f} ms long, too short to transcribe "
                                f"({1000 * MIN_SECONDS:.0f} ms or more)", "check the recording")
    if damage:
        warn_damaged(label, f"{damage}; transcribed what could be read")
    samples = repair_samples(samples, label, reported=bool(damage))
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


def check_regular_file(path: Path, label: str) -> None:
    """Refuse, in one line, what is not a readable regular file: missing, a folder, a pipe or device (reading one
    could wait for ever), or behind a permission it lacks."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioError(label, "no such file", "check the path") from None
    except PermissionError:
        raise AudioError(label, "cannot be opened (permission denied)", "check its and its folder's permissions") \
            from None
    except OSError as error:
        raise AudioError(label, f"cannot be opened ({one_line(error, limit=120)})") from None
    if stat.S_ISDIR(mode):
        raise AudioError(label, "is a directory, not an audio file", "pass the audio files inside it")
    if not stat.S_ISREG(mode):
        raise AudioError(label, "is not a regular file (a pipe, socket or device)", "save the audio to a file first")
    if not os.access(path, os.R_OK):
        raise AudioError(label, "cannot be read (permission denied)", "check its permissions")


def check_declared(label: str, rate: int, frames: int, max_seconds: float) -> None:
    """Refuse a header that declares an impossible sample rate or a length over the limit, before reading a byte of
    the samples (a damaged header could declare days of audio)."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(label, f"declares a sample rate of {rate} Hz, outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
                         "the header is damaged; re-export the file")
    if frames > max_seconds * rate:
        raise AudioError(label, f"is {frames / rate / 3600:.1f} h long, over the {max_seconds / 3600:.1f} h limit",
                         "split it into shorter files")


def repair_samples(samples: np.ndarray, label: str, reported: bool = False) -> np.ndarray:
    """Samples of absurd size (over MAX_ABS_SAMPLE: damage, not sound) set to silence, with a warning unless the
    file's damage was `reported` already; otherwise one damaged stretch would dominate the feature scale and erase
    the words around it."""
    absurd = np.abs(samples) > MAX_ABS_SAMPLE
    if not absurd.any():
        return samples
    if not reported:
        warn_damaged(label, f"{int(absurd.sum())} samples of absurd size (up to {float(np.abs(samples).max()):.3g}) "
                            "set to silence; the rest was transcribed")
    return np.where(absurd, 0.0, samples).astype(np.float32)


# The training speech's quietest peaks are about 0.1 (synthetic speech at -18 dB from a 0.9 peak); real recordings
# can be far quieter (FSDD's speaker theo peaks at 0.02), and their log-mel features then sit near the floor.
QUIET_PEAK, RAISED_PEAK = 0.1, 0.25


def raise_quiet_level(samples: np.ndarray) -> np.ndarray:
    """A recording whose peak is under QUIET_PEAK, scaled to peak at RAISED_PEAK: into the range of levels the
    model heard in training. Louder recordings (all the synthetic sets) are returned as they are."""
    peak = float(np.abs(samples).max(initial=0.0))
    if peak == 0.0 or peak >= QUIET_PEAK:
        return samples
    return (samples * (RAISED_PEAK / peak)).astype(np.float32)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the file header, without decoding the samples."""
    check_regular_file(Path(path), str(path))
    try:
        with quiet_decoder():
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


def _read_file(file, label: str, max_seconds: float) -> tuple[np.ndarray, int, str]:
    """(mono samples, rate, why the file looks truncated or "")."""
    try:
        with quiet_decoder(), soundfile.SoundFile(file) as sound:
            check_declared(label, sound.samplerate, sound.frames, max_seconds)
            samples = sound.read(dtype="float32", always_2d=True)
            rate = sound.samplerate
            truncation = truncation_note(sound, len(samples))
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, OSError, EOFError) as error:
        # libsndfile names an in-memory file by its Python repr ("<_io.BytesIO object at 0x...>"): drop it.
        reason = re.sub(r"Error opening <[^>]*>: ", "", one_line(error, limit=None))[:120]
        raise AudioError(label, f"not a readable audio file ({reason})", "convert it to WAV, FLAC, OGG or MP3") \
            from None
    return _to_mono(samples, label, channels_last=True), rate, truncation


def truncation_note(sound: soundfile.SoundFile, frames_read: int) -> str:
    """Why `sound` looks cut short, or "": fewer frames than its header declared (MP3), a WAV data chunk longer
    than the file (libsndfile then reads what is there), an Ogg stream without its last page."""
    if frames_read < sound.frames:
        return f"truncated: {frames_read / sound.samplerate:.1f} s of the {sound.frames / sound.samplerate:.1f} s " \
               "its header declares could be read"
    header_log = sound.extra_info
    if sound.format in ("WAV", "WAVEX", "RF64") and any(line.startswith("data") and "should be" in line
                                                        for line in header_log.splitlines()):
        return "truncated: its data is shorter than its header declares"
    if sound.format == "OGG" and "lacks an end-of-stream bit" in header_log:
        return "truncated: its last Ogg page is missing"
    return ""


@contextlib.contextmanager
def quiet_decoder():
    """libmpg123 (under libsndfile) prints its own `error:` and `Warning:` lines to the process's stderr, even for
    files it decodes in full: keep them off the user's terminal while a file is opened and read (what matters is
    reported as one line per file)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _to_mono(samples: np.ndarray, label: str, channels_last: bool | None) -> np.ndarray:
    if samples.size == 0:
        raise AudioError(label, "contains no audio samples (zero length)", "check the recording")
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


