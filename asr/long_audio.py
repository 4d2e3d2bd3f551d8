"""Files of any length: the audio is read one overlapping window at a time, and the acoustic model's log-probs of
the windows are joined at the middle of each overlap before a single decoding pass.

Joining frames rather than words means no seam can drop or double a word: every stretch of audio is decoded once,
from the window in which it sits furthest from an edge (where the bidirectional LSTM sees context on both sides).
Memory holds one window of audio at a time plus the log-probs (29 floats per 40 ms of audio, 10 MB an hour).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, resample
from asr.errors import AudioError


@dataclass(frozen=True)
class WindowConfig:
    window_seconds: float = 20.0
    overlap_seconds: float = 4.0  # each side keeps half of it

    def __post_init__(self):
        if not 0 <= 2 * self.overlap_seconds < self.window_seconds:
            raise ValueError("overlap must be less than half the window")

    @property
    def hop_seconds(self) -> float:
        return self.window_seconds - self.overlap_seconds


def read_windows(path: str | os.PathLike,
                 config: WindowConfig = WindowConfig()) -> Iterator[tuple[float, np.ndarray, bool]]:
    """Yield (start second, 16 kHz mono float32 samples, whether it is the last) for each window of the file,
    reading only that window."""
    label = str(path)
    try:
        sound = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(label, f"not a readable audio file ({str(error).strip()[:120]})",
                         "convert it to WAV, FLAC, OGG or MP3") from None
    with sound:
        rate, total = sound.samplerate, sound.frames
        if total <= 0:
            raise AudioError(label, "contains no audio samples (zero length)", "check the recording")
        window = int(round(config.window_seconds * rate))
        hop = int(round(config.hop_seconds * rate))
        start = 0
        while True:
            try:
                sound.seek(start)
                block = sound.read(min(window, total - start), dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
                raise AudioError(label, f"unreadable at {start / rate:.1f} s ({str(error).strip()[:120]})",
                                 "the file is damaged; re-export it") from None
            samples = block.mean(axis=1)
            if not np.isfinite(samples).all():
                raise AudioError(label, "contains NaN or infinite samples; the file is corrupt", "re-export it")
            if rate != SAMPLE_RATE:
                samples = resample(samples, rate, SAMPLE_RATE)
            last = start + window >= total or len(block) == 0
            yield start / rate, np.ascontiguousarray(samples, dtype=np.float32), last
            if last:
                return
            start += hop


def mark_pauses(log_probs: np.ndarray, blank: int, space: int, frame_seconds: float,
                min_pause_seconds: float = 0.3) -> np.ndarray:
    """Let the decoder end a word at every pause: in each run of blank frames at least `min_pause_seconds` long,
    the middle frame gets an even chance of a space. The acoustic model was trained on single sentences, which never
    begin or end with a space, so it emits none between sentences; without this, the last word of one sentence
    and the first of the next would be spelt as one."""
    if space < 0 or len(log_probs) == 0:
        return log_probs
    min_frames = max(1, int(round(min_pause_seconds / frame_seconds)))
    is_blank = log_probs.argmax(axis=1) == blank
    marked = log_probs.copy()
    edges = np.diff(np.concatenate([[0], is_blank.astype(np.int8), [0]]))
    for start, end in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        if end - start >= min_frames:
            middle = (start + end) // 2
            marked[middle, :] = -30.0
            marked[middle, blank] = marked[middle, space] = np.log(0.5)
    return marked


def kept_frames(start_seconds: float, frames: int, frame_seconds: float, config: WindowConfig,
                first: bool, last: bool) -> tuple[int, int]:
    """The frames [begin, end) of a window's output to keep: from the middle of the overlap with the window before
    to the middle of the overlap with the one after (the file's ends for the first and last window)."""
    half = config.overlap_seconds / 2
    begin = 0 if first else int(round(half / frame_seconds))
    end = frames if last else min(frames, int(round((config.window_seconds - half) / frame_seconds)))
    return begin, max(begin, end)
