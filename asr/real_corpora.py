"""Real recorded speech to train on: speechocean762 and the Free Spoken Digit Dataset -> JSONL manifests.

Each corpus is read from either of two layouts, found by what the folder holds:

    speechocean762, as published (OpenSLR 101):  WAVE/SPEAKERnnnn/<utt>.WAV, train/ and test/ Kaldi files
                                                  (text, wav.scp, utt2spk, spk2age, spk2gender)
    FSDD, as published:                           recordings/<digit>_<speaker>_<n>.wav
    either, as ../shared/data/real-train has it:  audio/<id>.<ext>, transcripts.txt ("<id> TEXT"),
                                                  utterances.tsv (id, speaker, ..., split)

Both are split by speaker into `train` and `dev`. The dev speakers are fixed here, the same in both layouts, so a
model is never trained on the voices it is chosen on: speechocean762's dev is 25 speakers of its official test half
(10 children, 15 adults), FSDD's is the speaker `theo`.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from asr.audio import audio_duration
from asr.data import Utterance
from asr.errors import AsrError
from asr.librispeech import PreparationReport, write_prepared
from asr.text import normalize_text

log = logging.getLogger(__name__)

CORPORA = ("speechocean762", "fsdd")
SPEECHOCEAN762_DEV_SPEAKERS = frozenset(
    "0024 0094 0114 0133 0149 0306 0567 1037 1050 1099 1181 1186 1292 1465 1501 1502 2002 2116 2538 2917 5017 "
    "5029 8068 9601 9629".split())
FSDD_DEV_SPEAKERS = frozenset({"theo"})
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
_DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
AUDIO_SUFFIXES = (".wav", ".WAV", ".flac", ".opus", ".ogg", ".mp3")


@dataclass(frozen=True)
class Download:
    url: str
    archive: str  # file name to save as
    unpacked: str  # folder the archive unpacks to, under the download root
    sha256: str | None  # None: the publisher gives none we could pin; the digest is printed for the user to keep


DOWNLOADS = {
    "speechocean762": Download("https://www.openslr.org/resources/101/speechocean762.tar.gz",
                               "speechocean762.tar.gz", "speechocean762", None),
    # The commit the shared copy was made from; GitHub archives of a fixed commit hold fixed files.
    "fsdd": Download("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/26eb9aaf.zip", "fsdd.zip", "fsdd", None),
}


def prepare(corpus: str, source: str | os.PathLike, output_dir: str | os.PathLike) -> dict[str, PreparationReport]:
    """Write `<output_dir>/<corpus>-train.jsonl` and `<corpus>-dev.jsonl` from either layout of `corpus`."""
    source = Path(source)
    if not source.is_dir():
        raise AsrError(f"{source}: no such folder; give the unpacked {corpus} corpus (or `asr corpus real-train "
                       f"--download`)")
    if (source / "utterances.tsv").is_file():
        rows, report = _read_shared_layout(source)
    elif corpus == "speechocean762":
        rows, report = _read_speechocean762(source)
    elif corpus == "fsdd":
        rows, report = _read_fsdd(source)
    else:
        raise AsrError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    dev_speakers = SPEECHOCEAN762_DEV_SPEAKERS if corpus == "speechocean762" else FSDD_DEV_SPEAKERS
    by_split: dict[str, list[Utterance]] = {"train": [], "dev": []}
    for utterance in rows:
        by_split["dev" if utterance.speaker in dev_speakers else "train"].append(utterance)
    reports = {}
    for split, utterances in by_split.items():
        split_report = PreparationReport(problems=dict(report.problems) if split == "train" else {})
        reports[split] = write_prepared(Path(output_dir) / f"{corpus}-{split}.jsonl", utterances, split_report,
                                        source)
    return reports


def _utterance(report: PreparationReport, utterance_id: str, audio: Path | None, text: str, speaker: str,
               where: str) -> Utterance | None:
    """One checked utterance, or None (counted in `report`) when its audio or text is unusable."""
    text = normalize_text(text)
    if not text:
        report.count("empty transcript", f"{where}: empty text for {utterance_id}; skipped")
        return None
    if audio is None or not audio.is_file():
        report.count("missing audio", f"{where}: no audio file for {utterance_id}; skipped")
        return None
    try:
        duration = audio_duration(audio)
    except AsrError as error:
        report.count("unreadable audio", f"{error}; skipped")
        return None
    if duration <= 0:
        report.count("empty audio", f"{audio}: zero-length audio; skipped")
        return None
    return Utterance(utterance_id, str(audio.resolve()), round(duration, 3), text, speaker)


def _read_id_text(path: Path, report: PreparationReport) -> dict[str, str]:
    """`<id> TEXT` lines (Kaldi `text`, our `transcripts.txt`) -> {id: text}; malformed lines counted."""
    if not path.is_file():
        raise AsrError(f"{path}: missing; the corpus folder is incomplete, unpack it again")
    texts = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AsrError(f"{path}: unreadable ({error}); it should be UTF-8 '<id> TEXT' lines") from None
    for number, line in enumerate(lines, start=1):
        utterance_id, _, text = line.strip().partition(" ")
        if not utterance_id:
            continue
        if not text.strip():
            report.count("malformed transcript line", f"{path}:{number}: expected '<id> TEXT'; skipped")
            continue
        texts[utterance_id] = text
    return texts


def _read_shared_layout(source: Path) -> tuple[list[Utterance], PreparationReport]:
    report = PreparationReport()
    texts = _read_id_text(source / "transcripts.txt", report)
    audio_by_id = {p.stem: p for p in (source / "audio").glob("*") if p.suffix in AUDIO_SUFFIXES}
    utterances = []
    with open(source / "utterances.tsv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            utterance_id, speaker = row.get("id") or "", row.get("speaker") or ""
            if not utterance_id or not speaker:
                report.count("malformed utterances.tsv row", f"{source}/utterances.tsv: row {row} lacks id or "
                             "speaker; skipped")
                continue
            if utterance_id not in texts:
                report.count("missing transcript", f"{source}/transcripts.txt: no line for {utterance_id}; skipped")
                continue
            utterance = _utterance(report, utterance_id, audio_by_id.get(utterance_id), texts[utterance_id],
                                   speaker, str(source / "utterances.tsv"))
            if utterance:
                utterances.append(utterance)
    return utterances, report


def _read_speechocean762(source: Path) -> tuple[list[Utterance], PreparationReport]:
    report = PreparationReport()
    if not (source / "WAVE").is_dir():
        raise AsrError(f"{source}: neither speechocean762's own layout (WAVE/, train/, test/) nor utterances.tsv; "
                       "give the folder the archive unpacked to")
    utterances = []
    for half in ("train", "test"):
        texts = _read_id_text(source / half / "text", report)
        speakers = _read_id_text(source / half / "utt2spk", report)
        for utterance_id, text in sorted(texts.items()):
            speaker = speakers.get(utterance_id, "").strip()
            if not speaker:
                report.count("missing speaker", f"{source}/{half}/utt2spk: no speaker for {utterance_id}; skipped")
                continue
            audio = source / "WAVE" / f"SPEAKER{speaker}" / f"{utterance_id}.WAV"
            utterance = _utterance(report, utterance_id, audio, text, speaker, f"{source}/{half}/text")
            if utterance:
                utterances.append(utterance)
    return utterances, report


def _read_fsdd(source: Path) -> tuple[list[Utterance], PreparationReport]:
    report = PreparationReport()
    recordings = source / "recordings"
    if not recordings.is_dir():
        raise AsrError(f"{source}: neither FSDD's own layout (recordings/<digit>_<speaker>_<n>.wav) nor "
                       "utterances.tsv; give the folder the archive unpacked to")
    utterances = []
    for audio in sorted(recordings.glob("*.wav")):
        match = _FSDD_NAME.match(audio.stem)
        if not match:
            report.count("unexpected file name", f"{audio}: not <digit>_<speaker>_<n>.wav; skipped")
            continue
        digit, speaker, _ = match.groups()
        utterance = _utterance(report, audio.stem, audio, _DIGITS[int(digit)], speaker, str(recordings))
        if utterance:
            utterances.append(utterance)
    return utterances, report


def download(corpus: str, root: str | os.PathLike) -> Path:
    """Fetch and unpack `corpus` under `root` (resuming a partial download) -> the folder to prepare."""
    from asr.fetch import fetch, file_digest

    spec = DOWNLOADS[corpus]
    root = Path(root)
    target = root / spec.unpacked
    if target.is_dir() and (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec.archive
    if not archive.exists():
        fetch(spec.url, archive)
    digest = file_digest(archive)
    if spec.sha256 and digest != spec.sha256:
        raise AsrError(f"{archive}: SHA-256 {digest} differs from the published {spec.sha256}; delete it and rerun")
    if not spec.sha256:
        log.warning("%s: SHA-256 %s (no published digest to check against; keep it to check later copies)",
                    archive, digest)
    unpack_to = root / (spec.unpacked + ".unpacking")
    shutil.rmtree(unpack_to, ignore_errors=True)  # an unpacking that was interrupted starts over
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpack_to)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(unpack_to, filter="data")
    # Archives wrap the corpus in one top folder (speechocean762/, free-spoken-digit-dataset-<commit>/).
    inner = [p for p in unpack_to.iterdir() if p.is_dir()]
    shutil.rmtree(target, ignore_errors=True)
    os.replace(inner[0] if len(inner) == 1 else unpack_to, target)
    shutil.rmtree(unpack_to, ignore_errors=True)
    (target / ".complete").touch()
    return target
