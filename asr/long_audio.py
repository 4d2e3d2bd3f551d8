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


def pause_segments(log_probs: np.ndarray, blank: int, frame_seconds: float, min_pause_seconds: float = 0.3,
                   min_segment_seconds: float = 2.0) -> list[tuple[int, int]]:
    """Split a long stretch of frames at pauses into [begin, end) segments to decode one by one.

    A cut goes in the middle of every run of blank frames at least `min_pause_seconds` long, unless the segment it
    ends would be shorter than `min_segment_seconds`. Decoding each segment from a fresh sentence start is how the
    acoustic model and the LM were trained (one sentence at a time, which never ends in a space, so the model
    emits none between sentences); decoding it all as one would spell the last word of a sentence and the first of
    the next as one word, and let one sentence's LM context bleed into the next.
    """
    frames = len(log_probs)
    if frames == 0:
        return []
    min_pause = max(1, int(round(min_pause_seconds / frame_seconds)))
    min_segment = int(round(min_segment_seconds / frame_seconds))
    is_blank = (log_probs.argmax(axis=1) == blank).astype(np.int8)
    edges = np.diff(np.concatenate([[0], is_blank, [0]]))
    cuts = [(a + b) // 2 for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]) if b - a >= min_pause]
    segments, begin = [], 0
    for cut in cuts:
        if cut - begin >= min_segment and frames - cut >= min_segment:
            segments.append((begin, int(cut)))
            begin = int(cut)
    segments.append((begin, frames))
    return segments


def kept_frames(start_seconds: float, frames: int, frame_seconds: float, config: WindowConfig,
                first: bool, last: bool) -> tuple[int, int]:
    """The frames [begin, end) of a window's output to keep: from the middle of the overlap with the window before
    to the middle of the overlap with the one after (the file's ends for the first and last window)."""
    half = config.overlap_seconds / 2
    begin = 0 if first else int(round(half / frame_seconds))
    end = frames if last else min(frames, int(round((config.window_seconds - half) / frame_seconds)))
    return begin, max(begin, end)
