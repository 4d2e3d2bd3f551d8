import pytest
import torch

from asr.model import BiLstmCtc, ModelConfig, fits_ctc, subsampled_lengths


@pytest.mark.parametrize("subsampling, outputs_per_step", [(1, 1), (2, 1), (4, 1), (4, 2)])
def test_padded_batch_equals_each_utterance_alone(subsampling, outputs_per_step):
    torch.manual_seed(0)
    model = BiLstmCtc(ModelConfig(n_mels=20, subsampling=subsampling, conv_channels=4, hidden_size=16,
                                  num_layers=2, dropout=0.3, outputs_per_step=outputs_per_step)).eval()
    model.set_normalization(torch.randn(20), torch.rand(20) + 0.5)
    lengths = [37, 50, 13, 8]
    utterances = [torch.randn(n, 20) for n in lengths]
    batch = torch.zeros(len(lengths), max(lengths), 20)
    for i, u in enumerate(utterances):
        batch[i, :len(u)] = u
        batch[i, len(u):] = 7.0  # padding with garbage must not matter
    with torch.no_grad():
        log_probs, out_lens = model(batch, torch.tensor(lengths))
        for i, u in enumerate(utterances):
            alone, alone_len = model(u[None], torch.tensor([len(u)]))
            expected = subsampled_lengths(torch.tensor(len(u)), subsampling) * outputs_per_step
            assert out_lens[i] == alone_len[0] == expected
            assert torch.allclose(log_probs[i, :out_lens[i]], alone[0, :alone_len[0]], atol=1e-5)


def test_output_is_log_probabilities_at_the_subsampled_rate():
    model = BiLstmCtc(ModelConfig(n_mels=80, subsampling=4, conv_channels=4, hidden_size=8, num_layers=1)).eval()
    log_probs, out_lens = model(torch.randn(2, 100, 80), torch.tensor([100, 61]))
    assert log_probs.shape == (2, 25, 29)
    assert out_lens.tolist() == [25, 16]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 25), atol=1e-5)


def test_two_outputs_per_step_give_ctc_twice_the_frames():
    model = BiLstmCtc(ModelConfig(n_mels=80, subsampling=4, conv_channels=4, hidden_size=8, num_layers=1,
                                  outputs_per_step=2)).eval()
    log_probs, out_lens = model(torch.randn(2, 100, 80), torch.tensor([100, 61]))
    assert log_probs.shape == (2, 50, 29)
    assert out_lens.tolist() == [50, 32]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 50), atol=1e-5)
    assert model.config.input_frames_per_output == 2


def test_fits_ctc_counts_the_frames_ctc_gets():
    labels = [1, 2, 2, 3, 4, 5, 6, 7]  # 8 labels and a repeat: CTC needs 9 frames
    at_40ms, at_20ms = ModelConfig(subsampling=4), ModelConfig(subsampling=4, outputs_per_step=2)
    assert not fits_ctc(20, labels, at_40ms)  # 5 output frames
    assert fits_ctc(20, labels, at_20ms)  # 10 output frames
    assert not fits_ctc(16, labels, at_20ms)  # 8 output frames


def test_rejects_unsupported_subsampling():
    with pytest.raises(ValueError, match="subsampling"):
        ModelConfig(subsampling=3)
    with pytest.raises(ValueError, match="outputs_per_step"):
        ModelConfig(subsampling=1, outputs_per_step=2)
