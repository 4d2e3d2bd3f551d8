import os
import pickle

import pytest
import torch

from asr.checkpoint import FORMAT_VERSION, load_model_file, model_payload, save_model
from asr.errors import CheckpointError
from asr.features import FeatureConfig
from asr.model import BiLstmCtc, ModelConfig
from asr.text import Vocabulary


def small_model():
    torch.manual_seed(0)
    model = BiLstmCtc(ModelConfig(subsampling=2, conv_channels=4, hidden_size=8, num_layers=1))
    model.set_normalization(torch.full((80,), 2.0), torch.full((80,), 3.0))
    return model


def test_round_trip_keeps_everything(tmp_path):
    model = small_model()
    path = tmp_path / "model.pt"
    save_model(path, model, FeatureConfig(), Vocabulary(), metadata={"steps": 12}, decoding={"beam_size": 4})
    loaded = load_model_file(path)
    assert loaded.model.config == model.config
    assert loaded.feature_config == FeatureConfig()
    assert loaded.vocabulary == Vocabulary()
    assert loaded.metadata == {"steps": 12} and loaded.decoding == {"beam_size": 4}
    assert torch.equal(loaded.model.feature_mean, model.feature_mean)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)
    assert not loaded.model.training
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # atomic write left nothing behind


def test_truncated_file(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, small_model(), FeatureConfig(), Vocabulary())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.pt.*truncated"):
        load_model_file(path)


def test_other_format_version(tmp_path):
    payload = model_payload(small_model(), FeatureConfig(), Vocabulary())
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version"):
        load_model_file(tmp_path / "future.pt")


def test_not_a_model_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        load_model_file(tmp_path / "notes.txt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an asr model file"):
        load_model_file(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such"):
        load_model_file(tmp_path / "absent.pt")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": "asr-model", "payload": RunsCode()}, handle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_model_file(path)


def test_inconsistent_weights(tmp_path):
    payload = model_payload(small_model(), FeatureConfig(), Vocabulary())
    payload["model_config"]["hidden_size"] = 16
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="damaged or inconsistent"):
        load_model_file(tmp_path / "bad.pt")
