"""Transcripts as subtitles (SRT, WebVTT) and JSON: words grouped into cues by length, duration and pauses."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Sequence

from asr.transcript import Transcript, Word

MAX_CUE_WORDS = 12
MAX_CUE_SECONDS = 6.0
PAUSE_SECONDS = 0.8  # a silence this long starts a new cue


def cues(words: Sequence[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if (current is None or len(current) >= MAX_CUE_WORDS or word.end - current[0].start > MAX_CUE_SECONDS
                or word.start - current[-1].end >= PAUSE_SECONDS):
            groups.append([word])
        else:
            current.append(word)
    return groups


def _timestamp(seconds: float, separator: str) -> str:
    milliseconds = int(round(max(0.0, seconds) * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(transcript: Transcript) -> str:
    blocks = []
    for number, group in enumerate(cues(transcript.words), start=1):
        blocks.append(f"{number}\n{_timestamp(group[0].start, ',')} --> {_timestamp(group[-1].end, ',')}\n"
                      f"{' '.join(w.text for w in group)}\n")
    return "\n".join(blocks)


def to_webvtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for group in cues(transcript.words):
        blocks.append(f"{_timestamp(group[0].start, '.')} --> {_timestamp(group[-1].end, '.')}\n"
                      f"{' '.join(w.text for w in group)}\n")
    return "\n".join(blocks)


def to_json(transcript: Transcript) -> str:
    return json.dumps(asdict(transcript), indent=2)


FORMATS = {"text": (lambda t: t.text + "\n", ".txt"), "json": (to_json, ".json"), "srt": (to_srt, ".srt"),
           "vtt": (to_webvtt, ".vtt")}
