"""WebDataset tar shards: writing them from a manifest, and streaming batches from them for training.

Each sample in a shard is `<id>.flac` (the audio, 16 kHz), `<id>.txt` (the transcript) and `<id>.json` (duration,
speaker). Utterances are sorted by duration before they are cut into shards, so each shard holds similar lengths
and batches formed from a stream pad little. `shards.json` beside the shards lists them with their counts.

Streaming splits the shard list across ranks (nodes x GPUs) and then across data-loader workers, shuffles through a
buffer, sorts pools of the shuffled stream by length and cuts them into batches bounded by padded frames, given in
random order. Everything random is seeded by (seed, epoch, rank, worker), so an epoch's stream is reproducible and
a resumed run can skip exactly the batches it had already trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import Batch, Example, Utterance, augment_for_training, collate
from asr.errors import AsrError, ManifestError
from asr.features import FeatureConfig, log_mel
from asr.model import ModelConfig, fits_ctc
from asr.text import Vocabulary

log = logging.getLogger(__name__)

INDEX_NAME = "shards.json"


def write_shards(utterances: Sequence[Utterance], out_dir: str | os.PathLike, max_shard_mb: float = 256,
                 show_progress: bool = True) -> dict:
    """Write utterances (sorted by duration) as FLAC into tar shards of at most `max_shard_mb`; returns the index.

    Unreadable audio is counted and skipped. Idempotent: an existing complete index written from the same
    utterances is returned as is; one written from others (a corpus since grown, say) is replaced.
    """
    import webdataset as wds
    from tqdm import tqdm

    out_dir = Path(out_dir)
    index_path = out_dir / INDEX_NAME
    source = manifest_fingerprint(utterances)
    if index_path.exists():
        try:
            index = read_index(out_dir)
            if index.get("source") == source:
                return index
            log.warning("%s: written from other utterances than these %d; writing the shards again", index_path,
                        len(utterances))
        except ManifestError as error:  # unreadable: the shards it lists cannot be trusted either
            log.warning("%s; writing the shards again", error)
        index_path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("shard-*.tar"):  # from an interrupted run, or from other utterances
        stale.unlink()
    ordered = sorted(utterances, key=lambda u: u.duration)
    skipped = 0
    tally: dict[str, list] = {}  # shard file -> [utterances, seconds], kept while writing
    pattern = str(out_dir / "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxsize=int(max_shard_mb * 1e6), maxcount=1_000_000, verbose=0) as writer:
        for utterance in tqdm(ordered, desc="writing shards", unit="utt", disable=not show_progress):
            try:
                samples = load_audio(utterance.audio)
            except AsrError as error:
                skipped += 1
                log.warning("skipping %s: %s", utterance.id, error)
                continue
            flac = io.BytesIO()
            soundfile.write(flac, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            seconds = len(samples) / SAMPLE_RATE
            writer.write({"__key__": utterance.id.replace(".", "_"), "flac": flac.getvalue(),
                          "txt": utterance.text.encode(), "json": json.dumps(
                              {"id": utterance.id, "duration": seconds, "speaker": utterance.speaker}).encode()})
            counts = tally.setdefault(Path(writer.fname).name, [0, 0.0])  # the shard this sample went into
            counts[0] += 1
            counts[1] += seconds
    shards = [{"file": name, "utterances": n, "seconds": round(seconds, 3)}
              for name, (n, seconds) in sorted(tally.items())]
    index = {"shards": shards, "utterances": sum(s["utterances"] for s in shards),
             "hours": sum(s["seconds"] for s in shards) / 3600, "skipped": skipped, "source": source}
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, index_path)
    index["dir"] = str(out_dir)  # as read_index gives it, so both paths return the same
    return index


def manifest_fingerprint(utterances: Sequence[Utterance]) -> str:
    """A digest of the ids, audio paths and transcripts, in any order: what decides the shards' content."""
    digest = hashlib.sha256()
    for utterance in sorted(utterances, key=lambda u: u.id):
        digest.update(f"{utterance.id}\t{utterance.audio}\t{utterance.text}\n".encode())
    return digest.hexdigest()


def read_index(shard_dir: str | os.PathLike) -> dict:
    path = Path(shard_dir) / INDEX_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: no shard index; write the shards first (recipe stage 3, or asr.shards)")
    try:
        index = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: not a readable shard index ({error}); write the shards again (recipe stage 3: "
                            "remove data/.done/stage3)") from None
    if not isinstance(index, dict) or not isinstance(index.get("shards"), list):
        raise ManifestError(f"{path}: no list of shards in it; write the shards again (recipe stage 3)")
    index["dir"] = str(Path(shard_dir))
    return index


@dataclass(frozen=True)
class StreamConfig:
    max_batch_frames: int
    seed: int
    epoch: int
    sorted_epoch: bool  # SortaGrad: shards in length order, no shuffling
    rank: int = 0
    world_size: int = 1
    shuffle_buffer: int = 500  # utterances
    length_pool: int = 250  # utterances sorted together before batching, so shuffled batches pad little
    model: ModelConfig = ModelConfig(subsampling=1)  # the model's frame rate drops utterances too short for their text
    speed_perturbation: bool = False
    pad_seconds: float = 0.0  # see `asr.data.augment_for_training`


def shards_for(index: dict, config: StreamConfig) -> list[str]:
    """This rank's shard paths for the epoch: shuffled by (seed, epoch) unless sorted, then every world_size-th."""
    files = [str(Path(index["dir"]) / s["file"]) for s in index["shards"]]
    if not config.sorted_epoch:
        files = [files[i] for i in np.random.default_rng([config.seed, config.epoch]).permutation(len(files))]
    return files[config.rank::config.world_size]


class ShardStream(torch.utils.data.IterableDataset):
    """Yields collated `Batch`es bounded by padded frames from this rank's shards (one stream per worker)."""

    def __init__(self, index: dict, config: StreamConfig, vocabulary: Vocabulary, feature_config: FeatureConfig):
        super().__init__()
        self.index = index
        self.config = config
        self.vocabulary = vocabulary
        self.feature_config = feature_config

    def __iter__(self) -> Iterator[Batch]:
        import webdataset as wds

        worker = torch.utils.data.get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        files = shards_for(self.index, self.config)[worker_id::workers]
        if not files:
            return
        rng = np.random.default_rng([self.config.seed, self.config.epoch, self.config.rank, worker_id])
        samples = wds.WebDataset(files, shardshuffle=False, nodesplitter=_all, workersplitter=_all,
                                 empty_check=False)
        examples = (self._example(sample, rng) for sample in samples)
        if self.config.sorted_epoch:
            yield from _frame_bounded_batches(examples, self.config.max_batch_frames)
            return
        examples = _shuffled(examples, self.config.shuffle_buffer, rng)
        yield from _length_pooled_batches(examples, self.config.max_batch_frames, self.config.length_pool, rng)

    def _example(self, sample: dict, rng: np.random.Generator | None = None) -> Example | None:
        """The sample's features and labels, augmented as configured with `rng` (None: as recorded)."""
        try:
            samples, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32")
            labels = self.vocabulary.encode(sample["txt"].decode())
        except Exception as error:  # a damaged sample is skipped like unreadable audio in a manifest
            log.warning("skipping sample %s: %s", sample.get("__key__"), error)
            return None
        if rng is not None:
            samples = augment_for_training(samples, rng, self.config.speed_perturbation, self.config.pad_seconds)
        features = log_mel(samples, self.feature_config)
        if not fits_ctc(features.shape[0], labels, self.config.model):
            return None  # too short for its transcript: CTC has no alignment for it
        return Example(features, torch.tensor(labels, dtype=torch.long), -1)


def _all(urls):
    return urls


def _shuffled(items, buffer_size: int, rng: np.random.Generator):
    buffer = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        slot = int(rng.integers(len(buffer)))
        buffer[slot], item = item, buffer[slot]
        yield item
    rng.shuffle(buffer)
    yield from buffer


def _length_pooled_batches(examples, max_frames: int, pool_size: int, rng: np.random.Generator) -> Iterator[Batch]:
    """Batches cut from pools of `pool_size` shuffled examples sorted by length, in random order within a pool.

    Cutting the shuffled stream directly put long and short utterances side by side: batches were half padding and
    an epoch took 1.8 times the steps of a sorted one.
    """
    def flush(pool):
        pool.sort(key=lambda example: example.features.shape[0])
        batches = list(_frame_bounded_batches(pool, max_frames))
        for i in rng.permutation(len(batches)):
            yield batches[i]

    pool = []
    for example in examples:
        if example is None:
            continue
        pool.append(example)
        if len(pool) == pool_size:
            yield from flush(pool)
            pool = []
    yield from flush(pool)


def _frame_bounded_batches(examples, max_frames: int) -> Iterator[Batch]:
    batch, longest = [], 0
    for example in examples:
        if example is None:
            continue
        frames = example.features.shape[0]
        if batch and max(longest, frames) * (len(batch) + 1) > max_frames:
            yield collate(batch)
            batch, longest = [], 0
        batch.append(example)
        longest = max(longest, frames)
    if batch:
        yield collate(batch)
