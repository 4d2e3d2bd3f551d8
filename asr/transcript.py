"""What a transcription returns: the text, and each word with its times and confidence."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float  # seconds
    confidence: float  # mean probability of the word's characters, 0..1 (voted: times the share that agreed)


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]
    confidence: float  # mean probability of the emitted characters, 0..1
    duration: float  # seconds of audio
    source: str = ""  # the path, or "" for arrays and bytes


def shifted(transcript: Transcript, seconds: float, duration: float) -> Transcript:
    """The transcript of audio that started `seconds` earlier (its words' times minus `seconds`, kept within
    0..`duration`), now `duration` seconds long."""
    def moved(t: float) -> float:
        return round(min(duration, max(0.0, t - seconds)), 3)
    words = tuple(replace(w, start=moved(w.start), end=moved(w.end)) for w in transcript.words)
    return replace(transcript, words=words, duration=round(duration, 3))
