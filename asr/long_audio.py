"""Files of any length, in two passes over the audio, holding one window of it at a time.

1. The acoustic model runs on 20 s windows. Each window's outputs are cut at a pause near its end, the next window
   starts 2 s before that cut, and its outputs are kept from the cut on. No seam falls inside a word, so none can
   drop or double one, and the frames on both sides of a seam had context. The pause is found by the model itself
   (the longest run of frames whose likeliest output is blank, in the last stretch of the window), so it works in
   noise too; where speech runs on without a pause, the cut goes where blank is likeliest. Window starts stay on
   the model's frame grid (40 ms at subsampling 4) from the start of the file.
2. The joined outputs are split at pauses (`pause_segments`), and each stretch between pauses short enough is run
   through the model again on its own, as the model was trained: one sentence framed by silence (digital silence
   there is heard as background: `asr.audio.fill_silent_edges`).

Memory holds a window (or a batch of stretches) of audio plus the log-probs (29 floats per output frame: 10 MB an
hour at 40 ms frames, 20 MB at 20 ms).
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile
import torch

from asr.audio import (MAX_SECONDS, SAMPLE_RATE, check_declared, check_regular_file, quiet_decoder, repair_samples,
                       resample, runs_of_true, warn_damaged)
from asr.errors import AudioError


@dataclass(frozen=True)
class WindowConfig:
    window_seconds: float = 20.0
    search_seconds: float = 8.0  # the cut is looked for in this last stretch of each window ...
    context_seconds: float = 2.0  # ... not closer to its end than this; and the next window starts this much earlier

    def __post_init__(self):
        if not (0 < self.context_seconds < self.search_seconds
                and self.search_seconds + self.context_seconds < self.window_seconds):
            raise ValueError("need 0 < context_seconds < search_seconds < window_seconds - context_seconds")


class LongAudioFile:
    """An audio file read a stretch at a time, as 16 kHz mono float32."""

    def __init__(self, path: str | os.PathLike):
        self.label = str(path)
        check_regular_file(Path(path), self.label)
        try:
            with quiet_decoder():
                self.sound = soundfile.SoundFile(str(path))
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioError(self.label, f"not a readable audio file ({str(error).strip()[:120]})",
                             "convert it to WAV, FLAC, OGG or MP3") from None
        self.rate, self.frames = self.sound.samplerate, self.sound.frames
        try:  # the same header checks as a short file's: rate, and the length limit
            check_declared(self.label, self.rate, self.frames, MAX_SECONDS)
        except AudioError:
            self.sound.close()
            raise
        self.damage_reported = False  # one warning per file
        if self.frames <= 0:
            self.sound.close()
            raise AudioError(self.label, "contains no audio samples (zero length)", "check the recording")

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def read(self, start_seconds: float, seconds: float) -> np.ndarray:
        start = int(round(start_seconds * self.rate))
        wanted = max(0, min(int(round(seconds * self.rate)), self.frames - start))
        try:
            with quiet_decoder():
                self.sound.seek(start)
                block = self.sound.read(wanted, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioError(self.label, f"unreadable at {start_seconds:.1f} s ({str(error).strip()[:120]})",
                             "the file is damaged; re-export it") from None
        samples = block.mean(axis=1)
        if not np.isfinite(samples).all():
            raise AudioError(self.label, "contains NaN or infinite samples; the file is corrupt", "re-export it")
        if len(samples) < wanted and not self.damage_reported:  # the header promised more than the file holds
            self.damage_reported = True
            warn_damaged(self.label, f"truncated at {(start + len(samples)) / self.rate:.1f} s of the "
                                     f"{self.seconds:.1f} s its header declares; transcribed what could be read")
        repaired = repair_samples(samples, self.label, reported=self.damage_reported)
        self.damage_reported |= repaired is not samples  # a repair was reported: one line per file
        samples = repaired
        if self.rate != SAMPLE_RATE:
            samples = resample(samples, self.rate, SAMPLE_RATE)
        return np.ascontiguousarray(samples, dtype=np.float32)

    def close(self) -> None:
        self.sound.close()

    def __enter__(self) -> "LongAudioFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def blank_runs(log_probs: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """The [start, end) frames of each run of frames whose likeliest output is blank."""
    return runs_of_true(log_probs.argmax(axis=1) == blank)


def cut_frame(log_probs: np.ndarray, blank: int, frame_seconds: float, config: WindowConfig) -> int:
    """Where to end a window's kept frames: the middle of the longest run of blank frames in its search stretch
    (the first, if several are longest), or the frame where blank is likeliest if there is no such run."""
    last = len(log_probs) - int(round(config.context_seconds / frame_seconds))
    first = max(1, len(log_probs) - int(round(config.search_seconds / frame_seconds)))
    if last <= first:
        return len(log_probs)
    stretch = log_probs[first:last]
    starts, ends = blank_runs(stretch, blank)
    if len(starts):
        longest = int(np.argmax(ends - starts))
        return first + int((starts[longest] + ends[longest]) // 2)
    return first + int(np.argmax(stretch[:, blank]))


def windowed_log_probs(audio: LongAudioFile, log_probs_of: Callable[[np.ndarray], torch.Tensor], blank: int,
                       frame_seconds: float, config: WindowConfig = WindowConfig(),
                       frames_per_step: int = 1) -> torch.Tensor:
    """The (frames, vocab) log-probs of a whole file, computed `config.window_seconds` at a time by `log_probs_of`
    (16 kHz samples -> log-probs). Each window is cut at a pause; the next starts `config.context_seconds` before
    the cut and its frames are kept from the cut on, so the frames on both sides of a seam had context.
    Windows start on a multiple of `frames_per_step` (the model's output frames per LSTM step), so the LSTM steps
    fall where they would in the whole file."""
    context = int(round(config.context_seconds / frame_seconds))
    parts, start_frame, keep_from = [], 0, 0  # counted in frames, so window starts stay on the frame grid
    while True:
        samples = audio.read(start_frame * frame_seconds, config.window_seconds)
        log_probs = log_probs_of(samples)
        if (start_frame * frame_seconds + config.window_seconds >= audio.seconds or len(samples) == 0
                or len(log_probs) <= keep_from):
            parts.append(log_probs[keep_from:])
            return torch.cat(parts)
        cut = max(keep_from + 1, cut_frame(log_probs.numpy(), blank, frame_seconds, config))
        parts.append(log_probs[keep_from:cut])
        next_start = start_frame + cut - context
        next_start -= next_start % frames_per_step
        keep_from = start_frame + cut - next_start  # the cut, counted in the next window's frames
        start_frame = next_start


def pause_segments(log_probs: np.ndarray, blank: int, frame_seconds: float, min_pause_seconds: float = 0.4,
                   min_segment_seconds: float = 1.0) -> list[tuple[int, int]]:
    """Split a long stretch of frames at pauses into [begin, end) segments to decode one by one.

    A cut goes in the middle of every run of blank frames at least `min_pause_seconds` long, unless the segment it
    ends would be shorter than `min_segment_seconds`. The defaults were chosen on dev files of joined sentences
    (tools/tune_long_audio.py): shorter pauses also cut sentences at their commas. Decoding each segment from a
    fresh sentence start is how the acoustic model and the LM were trained (one sentence at a time, which never
    ends in a space, so the model emits none between sentences); decoding it all as one would spell the last word
    of a sentence and the first of the next as one word, and let one sentence's LM context bleed into the next.
    """
    frames = len(log_probs)
    if frames == 0:
        return []
    min_pause = max(1, int(round(min_pause_seconds / frame_seconds)))
    min_segment = int(round(min_segment_seconds / frame_seconds))
    cuts = [(a + b) // 2 for a, b in zip(*blank_runs(log_probs, blank)) if b - a >= min_pause]
    segments, begin = [], 0
    for cut in cuts:
        if cut - begin >= min_segment and frames - cut >= min_segment:
            segments.append((begin, int(cut)))
            begin = int(cut)
    segments.append((begin, frames))
    return segments


def rerun_on_segments(audio: LongAudioFile, joined: torch.Tensor, segments: list[tuple[int, int]], blank: int,
                      log_probs_of: Callable[[list[np.ndarray]], list[torch.Tensor]], frame_seconds: float,
                      max_seconds: float, batch_size: int = 8, margin_seconds: float = 0.3) -> torch.Tensor:
    """`joined` with each segment no longer than `max_seconds` replaced by the model's outputs on that segment's
    audio alone (`log_probs_of`: a batch of 16 kHz waveforms -> their log-probs). A segment runs from pause to
    pause, so alone it is what the model was trained on: one sentence framed by silence, not a stretch of a window
    in which sentences run on. The same sentence then also gets the same outputs wherever it falls in the file.
    Each segment is read from `margin_seconds` before its first non-blank frame to as long after its last: about
    the background that training puts around each utterance (0 to 0.4 s a side), and enough for the sound of a
    first letter, which the model emits a few frames after it starts; 0.04 s cut into it (see
    tools/tune_long_audio.py for the figures)."""
    return_large_blocks_to_the_system()
    refined = joined.clone()
    short = [speech_span(joined[begin:end].argmax(-1).numpy() != blank, begin, frame_seconds, margin_seconds)
             for begin, end in segments if (end - begin) * frame_seconds <= max_seconds]
    short = sorted(short, key=lambda segment: segment[1] - segment[0])  # batches of similar lengths pad less
    for first in range(0, len(short), batch_size):
        batch = short[first:first + batch_size]
        waveforms = [audio.read(begin * frame_seconds, (end - begin) * frame_seconds) for begin, end in batch]
        for (begin, end), log_probs in zip(batch, log_probs_of(waveforms)):
            frames = min(end - begin, len(log_probs))  # a frame more or less at the end, by rounding
            refined[begin:begin + frames] = log_probs[:frames]
    return refined


def speech_span(spoken: np.ndarray, begin: int, frame_seconds: float, margin_seconds: float) -> tuple[int, int]:
    """The [begin, end) frames of a segment from `margin_seconds` before its first spoken frame to as long after
    its last (`spoken`: one bool a frame of the segment, which starts at frame `begin`)."""
    frames = np.flatnonzero(spoken)
    if len(frames) == 0:
        return begin, begin + len(spoken)
    margin = int(round(margin_seconds / frame_seconds))
    return begin + max(0, int(frames[0]) - margin), begin + min(len(spoken), int(frames[-1]) + 1 + margin)


@functools.cache
def return_large_blocks_to_the_system() -> None:
    """Have glibc's malloc serve blocks of 4 MiB and more from their own memory maps, returned to the system when
    freed. By default the threshold rises to the largest block freed so far, after which the model's activations
    for batches of ever-different lengths come from the heap and fragment it: on a 60-minute file the peak
    memory grew to 1.4 GB greedy, against 0.8-0.9 GB with this (same transcript). Elsewhere than glibc: nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(4 << 20))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass

