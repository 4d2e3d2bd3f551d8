"""Training data: JSONL manifests, a dataset of (features, labels), and batches bounded by padded frames.

A manifest line is one utterance: {"id": ..., "audio": path, "duration": seconds, "text": normalised transcript,
"speaker": ...}; a relative audio path is relative to the manifest's folder.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from asr.audio import load_audio
from asr.errors import AsrError, ManifestError
from asr.features import FeatureConfig, log_mel
from asr.text import Vocabulary

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "audio", "duration", "text")


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str  # absolute path
    duration: float  # seconds
    text: str  # normalised transcript
    speaker: str = ""


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read a JSONL manifest; raises `ManifestError` naming the line of the first malformed entry."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file" + ("; it is a directory" if path.is_dir() else
                                                                 "; run data preparation first"))
    utterances, first_line_of = [], {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not UTF-8 text (byte {error.start}); a manifest is JSON lines, one utterance "
                            "each") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot be read ({error.strerror or error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{where}: not valid JSON ({error.msg}); fix or remove the line") from None
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: expected a JSON object per line")
        missing = [name for name in REQUIRED_FIELDS if name not in entry]
        if missing:
            raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
        try:
            duration = float(entry["duration"])
        except (TypeError, ValueError):
            raise ManifestError(f"{where}: duration {entry['duration']!r} is not a number") from None
        if not duration > 0 or not np.isfinite(duration):
            raise ManifestError(f"{where}: duration must be a positive number of seconds, not {duration}")
        if not isinstance(entry["text"], str):
            raise ManifestError(f"{where}: text must be a string")
        audio = Path(str(entry["audio"]))
        audio = audio if audio.is_absolute() else (path.parent / audio)
        utterance_id = str(entry["id"])
        if utterance_id in first_line_of:  # scores would be matched to the wrong hypotheses
            raise ManifestError(f"{where}: utterance id {utterance_id!r} is already used on line "
                                f"{first_line_of[utterance_id]}; ids must be unique")
        first_line_of[utterance_id] = number
        utterances.append(Utterance(utterance_id, str(audio), duration, entry["text"],
                                    str(entry.get("speaker", ""))))
    if not utterances:
        raise ManifestError(f"{path}: the manifest has no utterances")
    return utterances


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` through a temporary file beside `path`, so an interrupted run leaves the old file or the whole
    new one, never half of it."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`write_bytes_atomically` for text, as UTF-8."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> None:
    """Write a JSONL manifest atomically; audio paths are stored relative to the manifest when they lie below it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent.resolve()
    lines = []
    for utterance in utterances:
        entry = asdict(utterance)
        try:
            entry["audio"] = str(Path(utterance.audio).resolve().relative_to(folder))
        except ValueError:
            pass  # audio outside the manifest's folder keeps its absolute path
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    write_text_atomically(path, "".join(lines))


@dataclass
class Example:
    features: torch.Tensor  # (frames, n_mels), not normalised
    labels: torch.Tensor  # (label_length,) int64
    index: int  # position in the dataset


@dataclass
class Batch:
    features: torch.Tensor  # (batch, max_frames, n_mels), zero-padded
    feature_lengths: torch.Tensor  # (batch,)
    labels: torch.Tensor  # (batch, max_label_length), zero-padded
    label_lengths: torch.Tensor  # (batch,)
    indices: list[int]

    def __len__(self) -> int:
        return len(self.indices)


SPEED_FACTORS = (0.9, 1.0, 1.1)


def perturb_speed(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed perturbation for training: one of SPEED_FACTORS, drawn from `rng`."""
    from asr.augment import change_speed

    return change_speed(samples, float(rng.choice(SPEED_FACTORS)))


def pad_at_random(samples: np.ndarray, max_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Training augmentation: background of up to `max_seconds` (uniform) before and after the speech. Synthetic
    utterances all start after the same short pause; without this, a model learns to expect speech there."""
    from asr.augment import pad_with_background

    before, after = rng.uniform(0.0, max_seconds, size=2)
    return pad_with_background(samples, before, after, rng)


def augment_for_training(samples: np.ndarray, rng: np.random.Generator, speed_perturbation: bool,
                         pad_seconds: float) -> np.ndarray:
    """The audio augmentations of `TrainConfig`, in one fixed order, so manifests and shards draw alike."""
    if speed_perturbation:
        samples = perturb_speed(samples, rng)
    if pad_seconds > 0:
        samples = pad_at_random(samples, pad_seconds, rng)
    return samples


class UtteranceDataset(torch.utils.data.Dataset):
    """Reads audio and computes log-mel features; an unreadable file yields None (logged and skipped by collate).

    Augmentation draws from (augment_seed, epoch, index), so an epoch is reproducible; set `epoch` before each
    epoch's loader is made. `speed_perturbation` and `pad_seconds`: see `augment_for_training`.
    """

    def __init__(self, utterances: Sequence[Utterance], vocabulary: Vocabulary, feature_config: FeatureConfig,
                 augment_seed: int = 0, speed_perturbation: bool = False, pad_seconds: float = 0.0):
        self.utterances = list(utterances)
        self.vocabulary = vocabulary
        self.feature_config = feature_config
        self.augment_seed = augment_seed
        self.speed_perturbation = speed_perturbation
        self.pad_seconds = pad_seconds
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> Example | None:
        utterance = self.utterances[index]
        try:
            samples = load_audio(utterance.audio)
            labels = self.vocabulary.encode(utterance.text)
        except (AsrError, ValueError) as error:
            log.warning("skipping utterance %s: %s", utterance.id, error)
            return None
        rng = np.random.default_rng([self.augment_seed, self.epoch, index])
        samples = augment_for_training(samples, rng, self.speed_perturbation, self.pad_seconds)
        return Example(log_mel(samples, self.feature_config), torch.tensor(labels, dtype=torch.long), index)


def collate(examples: Sequence[Example | None]) -> Batch:
    examples = [example for example in examples if example is not None]
    if not examples:
        return Batch(torch.zeros(0, 0, 0), torch.zeros(0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.long),
                     torch.zeros(0, dtype=torch.long), [])
    return Batch(
        features=pad_sequence([e.features for e in examples], batch_first=True),
        feature_lengths=torch.tensor([e.features.shape[0] for e in examples]),
        labels=pad_sequence([e.labels for e in examples], batch_first=True),
        label_lengths=torch.tensor([len(e.labels) for e in examples]),
        indices=[e.index for e in examples],
    )


def frame_budget_batches(frame_counts: Sequence[int], max_frames: int, epoch: int, seed: int,
                         sorted_first_epoch: bool = True) -> list[list[int]]:
    """Group utterance indices into batches whose padded size (longest x count) stays within `max_frames`.

    Utterances of similar length are grouped so little compute goes to padding. In epoch 0 with
    `sorted_first_epoch` (SortaGrad, Amodei et al. 2016) batches run shortest first; otherwise the grouping is
    jittered and the batch order shuffled, both determined by (seed, epoch) so a resumed run sees the same batches.
    """
    rng = np.random.default_rng([seed, epoch])
    counts = np.asarray(frame_counts, dtype=np.float64)
    sortagrad = sorted_first_epoch and epoch == 0
    keys = counts if sortagrad else counts * rng.uniform(0.9, 1.1, size=len(counts))
    batches, current, longest = [], [], 0
    for index in np.argsort(keys, kind="stable").tolist():
        longest_if_added = max(longest, frame_counts[index])
        if current and longest_if_added * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest_if_added = [], frame_counts[index]
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    if not sortagrad:
        rng.shuffle(batches)
    return batches
