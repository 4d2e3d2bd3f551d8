"""LibriSpeech's layout -> JSONL manifests, for the real corpus and for corpora written in its format.

    <root>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   "<speaker>-<chapter>-<utt> TEXT" lines
    <root>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

Missing audio, malformed transcript lines and unreadable files are counted, logged and skipped: one bad file never
fails a whole split, and nothing is dropped without a line in the log and a count in the report.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from asr.audio import audio_duration
from asr.data import Utterance, write_manifest
from asr.errors import AsrError, ManifestError
from asr.text import DEFAULT_TOKENS, normalize_text

log = logging.getLogger(__name__)

SPLITS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
          "test-other")
_LINE = re.compile(r"^(\d+-\d+-\d+)\s+(\S.*)$")
_ALLOWED = set(DEFAULT_TOKENS[1:])


@dataclass
class PreparationReport:
    utterances: int = 0
    hours: float = 0.0
    problems: dict[str, int] = field(default_factory=dict)  # kind -> count

    def count(self, kind: str, message: str) -> None:
        self.problems[kind] = self.problems.get(kind, 0) + 1
        log.warning("%s", message)

    def __str__(self) -> str:
        skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(self.problems.items())) or "none"
        return f"{self.utterances} utterances, {self.hours:.2f} h; skipped: {skipped}"


def prepare_split(split_dir: str | os.PathLike, manifest: str | os.PathLike) -> PreparationReport:
    """Read one split folder and write its manifest (id, audio, duration, text, speaker)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise AsrError(f"{split_dir}: no such split folder; download or generate the corpus first")
    report = PreparationReport()
    utterances = []
    transcripts = sorted(split_dir.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise AsrError(f"{split_dir}: no <speaker>/<chapter>/*.trans.txt files; is this a LibriSpeech split?")
    seen_audio = set()
    for transcript in transcripts:
        try:
            lines = transcript.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            report.count("unreadable transcript", f"{transcript}: unreadable ({error}); skipped")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            match = _LINE.match(line.strip())
            if not match:
                report.count("malformed transcript line",
                             f"{transcript}:{number}: expected '<speaker>-<chapter>-<utt> TEXT'; skipped")
                continue
            utterance_id, text = match.groups()
            if not set(text) <= _ALLOWED:
                text = normalize_text(text)
            if not text:
                report.count("empty transcript", f"{transcript}:{number}: empty text after normalisation; skipped")
                continue
            audio = _find_audio(transcript.parent, utterance_id)
            if audio is None:
                report.count("missing audio", f"{transcript}:{number}: no audio file for {utterance_id}; skipped")
                continue
            seen_audio.add(audio.name)
            try:
                duration = audio_duration(audio)
            except AsrError as error:
                report.count("unreadable audio", f"{error}; skipped")
                continue
            if duration <= 0:
                report.count("empty audio", f"{audio}: zero-length audio; skipped")
                continue
            utterances.append(Utterance(utterance_id, str(audio.resolve()), round(duration, 3), text,
                                        utterance_id.split("-")[0]))
    for audio in split_dir.glob("*/*/*.flac"):
        if audio.name not in seen_audio:
            report.count("audio without transcript", f"{audio}: no transcript line names it; skipped")
    return write_prepared(manifest, utterances, report, split_dir)


def _find_audio(chapter_dir: Path, utterance_id: str) -> Path | None:
    for suffix in (".flac", ".wav"):
        candidate = chapter_dir / f"{utterance_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def prepare_real_dev(root: str | os.PathLike, manifest: str | os.PathLike) -> PreparationReport:
    """The real-speech measuring set (folders with `transcripts.txt` of `<id> TEXT` and `audio/<id>.flac`) ->
    a manifest. It is for measuring only: never train on it."""
    root = Path(root)
    folders = sorted(p.parent for p in root.glob("*/transcripts.txt"))
    if not folders:
        raise AsrError(f"{root}: no <set>/transcripts.txt found; expected e.g. ../shared/data/real-dev")
    report = PreparationReport()
    utterances = []
    for folder in folders:
        for number, line in enumerate((folder / "transcripts.txt").read_text().splitlines(), start=1):
            utterance_id, _, text = line.strip().partition(" ")
            if not utterance_id or not text.strip():
                report.count("malformed transcript line", f"{folder}/transcripts.txt:{number}: skipped")
                continue
            audio = next((p for p in (folder / "audio").glob(f"{utterance_id}.*")), None)
            if audio is None:
                report.count("missing audio", f"{folder}/audio: no file for {utterance_id}; skipped")
                continue
            try:
                duration = audio_duration(audio)
            except AsrError as error:
                report.count("unreadable audio", f"{error}; skipped")
                continue
            utterances.append(Utterance(f"{folder.name}/{utterance_id}", str(audio.resolve()), round(duration, 3),
                                        normalize_text(text), folder.name))
    return write_prepared(manifest, utterances, report, root)


def write_prepared(manifest, utterances: list[Utterance], report: PreparationReport,
                   source: Path) -> PreparationReport:
    """Write the manifest and fill in the report's totals; no usable utterance at all is an error naming `source`."""
    if not utterances:
        raise ManifestError(f"{source}: no usable utterances ({report})")
    write_manifest(manifest, utterances)
    report.utterances = len(utterances)
    report.hours = sum(u.duration for u in utterances) / 3600
    return report
