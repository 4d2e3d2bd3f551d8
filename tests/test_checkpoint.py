import os
import pickle

import pytest
import torch

from asr.checkpoint import READABLE_VERSIONS, initialize_from, load_model_file, model_payload, save_model
from asr.decode import greedy_decode
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
    payload["format_version"] = max(READABLE_VERSIONS) + 1
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


def test_a_model_widened_to_two_outputs_per_step_starts_with_the_same_transcripts(tmp_path):
    source_model = BiLstmCtc(ModelConfig(subsampling=4, conv_channels=4, hidden_size=8, num_layers=1))
    torch.manual_seed(1)
    for parameter in source_model.parameters():  # large random weights, so the greedy path has many characters
        parameter.data.normal_(0, 2.0)
    path = tmp_path / "source.pt"
    save_model(path, source_model, FeatureConfig(), Vocabulary())
    source = load_model_file(path)
    widened = BiLstmCtc(ModelConfig(subsampling=4, conv_channels=4, hidden_size=8, num_layers=1,
                                    outputs_per_step=2)).eval()
    initialize_from(widened, source, FeatureConfig(), path)
    feats = torch.randn(1, 300, 80)
    with torch.no_grad():
        before, _ = source.model(feats, torch.tensor([300]))
        after, after_lens = widened(feats, torch.tensor([300]))
    assert after_lens.item() == 2 * before.shape[1]
    assert torch.equal(after[0, 0::2], before[0]) and torch.equal(after[0, 1::2], before[0])
    tokens = greedy_decode(before[0]).tokens
    assert len(tokens) > 5 and greedy_decode(after[0]).tokens == tokens


def test_initializing_from_a_model_of_another_size_is_refused(tmp_path):
    path = tmp_path / "source.pt"
    save_model(path, small_model(), FeatureConfig(), Vocabulary())
    for other in (ModelConfig(subsampling=2, conv_channels=4, hidden_size=8, num_layers=2),
                  ModelConfig(subsampling=2, conv_channels=4, hidden_size=4, num_layers=1)):  # deeper; narrower
        with pytest.raises(CheckpointError, match="source.pt.*does not match"):
            initialize_from(BiLstmCtc(other), load_model_file(path), FeatureConfig(), path)
    with pytest.raises(CheckpointError, match="features"):
        initialize_from(small_model(), load_model_file(path), FeatureConfig(n_mels=40), path)


def test_a_model_given_more_lstm_units_starts_with_the_same_outputs_and_can_learn(tmp_path):
    torch.manual_seed(2)
    source_model = BiLstmCtc(ModelConfig(subsampling=4, conv_channels=4, hidden_size=8, num_layers=3,
                                         outputs_per_step=2)).eval()
    path = tmp_path / "source.pt"
    save_model(path, source_model, FeatureConfig(), Vocabulary())
    wider = BiLstmCtc(ModelConfig(subsampling=4, conv_channels=4, hidden_size=12, num_layers=3, outputs_per_step=2))
    initialize_from(wider, load_model_file(path), FeatureConfig(), path)
    feats, lengths = torch.randn(2, 200, 80), torch.tensor([200, 150])
    wider.eval()
    with torch.no_grad():
        before, _ = source_model(feats, lengths)
        after, _ = wider(feats, lengths)
    assert torch.allclose(after, before, atol=1e-5)
    # The added units' outgoing weights start at zero but get gradients, so training puts them to use.
    wider.train()
    log_probs, _ = wider(feats, lengths)
    log_probs[..., 0].sum().backward()
    assert wider.output.weight.grad[:, 8:12].abs().sum() > 0
    assert wider.lstm.weight_ih_l1.grad[:, 8:12].abs().sum() > 0
