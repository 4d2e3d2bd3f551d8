import json

import numpy as np

import pytest
import torch

from asr.config import apply_overrides, preset
from asr.checkpoint import load_model_file
from asr.data import read_manifest
from asr.features import FeatureConfig
from asr.data import Example
from asr.errors import ManifestError
from asr.shards import ShardStream, StreamConfig, _length_pooled_batches, read_index, write_shards
from asr.text import Vocabulary
from asr.train import TrainingStopped, train


@pytest.fixture
def shard_dir(noise_manifest, tmp_path):
    write_shards(read_manifest(noise_manifest), tmp_path / "shards", max_shard_mb=0.03, show_progress=False)
    return tmp_path / "shards"


def stream_texts(shard_dir, **overrides):
    settings = dict(max_batch_frames=200, seed=0, epoch=1, sorted_epoch=False)
    settings.update(overrides)
    workers = settings.pop("workers", 0)
    stream = ShardStream(read_index(shard_dir), StreamConfig(**settings), Vocabulary(), FeatureConfig())
    batches = list(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers))
    vocabulary = Vocabulary()
    return [[vocabulary.decode(row[:n].tolist()) for row, n in zip(b.labels, b.label_lengths)] for b in batches]


def test_index_lists_every_utterance_in_duration_order(noise_manifest, shard_dir):
    index = read_index(shard_dir)
    assert len(index["shards"]) > 1 and index["utterances"] == 6 and index["skipped"] == 0
    assert json.loads((shard_dir / "shards.json").read_text())["hours"] == pytest.approx(index["hours"])


def test_shards_are_reused_for_the_same_manifest_and_rewritten_for_a_grown_one(noise_manifest, shard_dir):
    utterances = read_manifest(noise_manifest)
    written = {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("shard-*.tar")}
    again = write_shards(list(reversed(utterances)), shard_dir, max_shard_mb=0.03, show_progress=False)
    assert again["utterances"] == 6
    assert {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("shard-*.tar")} == written

    fewer = write_shards(utterances[:4], shard_dir, max_shard_mb=0.03, show_progress=False)  # then grown back
    assert fewer["utterances"] == 4 and fewer == read_index(shard_dir)  # a fresh index reads as a reused one
    assert write_shards(utterances, shard_dir, max_shard_mb=0.03, show_progress=False)["utterances"] == 6
    streamed = sorted(text for batch in stream_texts(shard_dir) for text in batch)
    assert streamed == sorted(u.text for u in utterances)


def test_a_corrupt_index_is_written_again(noise_manifest, shard_dir):
    (shard_dir / "shards.json").write_text('{"shards": [')
    with pytest.raises(ManifestError, match="shards.json: not a readable shard index"):
        read_index(shard_dir)
    index = write_shards(read_manifest(noise_manifest), shard_dir, max_shard_mb=0.03, show_progress=False)
    assert index["utterances"] == 6 and read_index(shard_dir)["utterances"] == 6


def test_ranks_and_workers_share_the_data_exactly_once(noise_manifest, shard_dir):
    expected = sorted(u.text for u in read_manifest(noise_manifest))
    seen = []
    for rank in range(2):
        for batch in stream_texts(shard_dir, rank=rank, world_size=2, workers=2):
            seen.extend(batch)
    assert sorted(seen) == expected


def test_stream_is_reproducible_and_bounded(shard_dir):
    first = stream_texts(shard_dir, epoch=3)
    assert first == stream_texts(shard_dir, epoch=3)
    assert sorted(sum(first, [])) == sorted(sum(stream_texts(shard_dir, epoch=4), []))


def test_sorted_epoch_runs_shortest_first(noise_manifest, shard_dir):
    durations = {u.text: u.duration for u in read_manifest(noise_manifest)}
    order = [durations[t] for batch in stream_texts(shard_dir, sorted_epoch=True) for t in batch]
    assert order == sorted(order)


def test_shuffled_batches_are_cut_from_length_sorted_pools():
    lengths = np.random.default_rng(0).integers(50, 1000, size=400)
    examples = [Example(torch.zeros(int(n), 2), torch.ones(1, dtype=torch.long), i) for i, n in enumerate(lengths)]
    batches = list(_length_pooled_batches(iter(examples), 4000, 100, np.random.default_rng(1)))
    assert sorted(i for b in batches for i in b.indices) == list(range(400))
    padded = sum(b.features.shape[0] * b.features.shape[1] for b in batches)
    assert padded <= 4000 * len(batches)
    assert lengths.sum() / padded > 0.85  # unsorted, these lengths fill about half of each batch
    first_pool_widths = [b.features.shape[1] for b in batches if max(b.indices) < 100]
    assert len(first_pool_widths) > 3 and first_pool_widths != sorted(first_pool_widths)  # given in random order


def test_training_from_shards_resumes_exactly(shard_dir, tmp_path):
    config = apply_overrides(preset("tiny"), ["train.epochs=2", "train.max_batch_frames=200", "model.dropout=0.1",
                                              "train.spec_augment=true", "model.hidden_size=16",
                                              "train.speed_perturbation=true", "train.pad_seconds=0.2"])
    straight = load_model_file(train(config, shard_dir, tmp_path / "a", show_progress=False))
    with pytest.raises(TrainingStopped):
        train(config, shard_dir, tmp_path / "b", show_progress=False, stop_after_steps=3)
    resumed = load_model_file(train(config, shard_dir, tmp_path / "b", show_progress=False))
    assert straight.metadata["steps"] == resumed.metadata["steps"] > 3
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
