import pytest
import torch

from asr.model import BiLstmCtc, ModelConfig, subsampled_lengths


@pytest.mark.parametrize("subsampling", [1, 2, 4])
def test_padded_batch_equals_each_utterance_alone(subsampling):
    torch.manual_seed(0)
    model = BiLstmCtc(ModelConfig(n_mels=20, subsampling=subsampling, conv_channels=4, hidden_size=16,
                                  num_layers=2, dropout=0.3)).eval()
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
            assert out_lens[i] == alone_len[0] == subsampled_lengths(torch.tensor(len(u)), subsampling)
            assert torch.allclose(log_probs[i, :out_lens[i]], alone[0, :alone_len[0]], atol=1e-5)


def test_output_is_log_probabilities_at_the_subsampled_rate():
    model = BiLstmCtc(ModelConfig(n_mels=80, subsampling=4, conv_channels=4, hidden_size=8, num_layers=1)).eval()
    log_probs, out_lens = model(torch.randn(2, 100, 80), torch.tensor([100, 61]))
    assert log_probs.shape == (2, 25, 29)
    assert out_lens.tolist() == [25, 16]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 25), atol=1e-5)


def test_rejects_unsupported_subsampling():
    with pytest.raises(ValueError, match="subsampling"):
        ModelConfig(subsampling=3)
