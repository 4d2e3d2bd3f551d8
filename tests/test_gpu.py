"""The CUDA path against the CPU: run by `pytest -m gpu` on a machine with a GPU (tools/gpu_check.sh does); every
test here is skipped where CUDA is not available, as in CI.

Tolerances: fp32 on the GPU (cuDNN's LSTM, TF32 off) agrees with the CPU to 1e-3 in log-probability; bf16 autocast
keeps 8 bits of mantissa, so its log-probs are held to 0.15 absolute where the model is confident (log-prob above
-3) and its greedy transcript to the CPU's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr.model import BiLstmCtc, ModelConfig

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (tools/gpu_check.sh)")]


@pytest.fixture(autouse=True)
def exact_fp32():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def model_and_batch(seed: int = 0, lengths=(230, 400, 57, 311)):
    torch.manual_seed(seed)
    model = BiLstmCtc(ModelConfig(subsampling=4, conv_channels=32, hidden_size=256, num_layers=3, dropout=0.0,
                                  outputs_per_step=2)).eval()
    model.set_normalization(torch.randn(80), torch.rand(80) + 0.5)
    utterances = [torch.randn(n, 80) for n in lengths]
    batch = torch.zeros(len(lengths), max(lengths), 80)
    for i, u in enumerate(utterances):
        batch[i, :len(u)] = u
        batch[i, len(u):] = 5.0  # padding with garbage must not matter
    return model, utterances, batch, torch.tensor(lengths)


@torch.no_grad()
def test_padded_batch_on_the_gpu_equals_each_utterance_alone():
    model, utterances, batch, lengths = model_and_batch()
    model = model.cuda()
    log_probs, out_lens = model(batch.cuda(), lengths.cuda())
    for i, u in enumerate(utterances):
        alone, alone_len = model(u[None].cuda(), torch.tensor([len(u)]).cuda())
        assert out_lens[i] == alone_len[0]
        assert torch.allclose(log_probs[i, :out_lens[i]], alone[0, :alone_len[0]], atol=1e-4)


@torch.no_grad()
def test_gpu_fp32_and_bf16_log_probs_agree_with_the_cpu():
    model, _, batch, lengths = model_and_batch()
    cpu, cpu_lens = model(batch, lengths)
    model = model.cuda()
    gpu, gpu_lens = model(batch.cuda(), lengths.cuda())
    assert torch.equal(cpu_lens, gpu_lens.cpu())
    valid = torch.arange(cpu.shape[1])[None, :] < cpu_lens[:, None]
    assert (cpu - gpu.cpu()).abs()[valid].max() < 1e-3
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half, _ = model(batch.cuda(), lengths.cuda())
    confident = valid[..., None] & (cpu > -3)
    assert (cpu - half.float().cpu()).abs()[confident].max() < 0.15
    changed = (cpu.argmax(-1)[valid] != half.float().cpu().argmax(-1)[valid]).float().mean()
    assert changed < 0.01  # the likeliest character of under 1% of frames differs


def test_ctc_loss_and_gradients_agree_between_cpu_and_gpu():
    torch.manual_seed(1)
    frames, batch, vocab = 120, 6, 29
    logits = torch.randn(frames, batch, vocab, dtype=torch.float64)
    labels = torch.randint(1, vocab, (batch, 40))
    label_lengths = torch.tensor([40, 12, 33, 1, 25, 38])
    input_lengths = torch.tensor([120, 100, 90, 20, 120, 110])

    def loss_and_grad(device):
        x = logits.clone().to(device).float().requires_grad_()
        loss = F.ctc_loss(x.log_softmax(-1), labels.to(device), input_lengths.to(device), label_lengths.to(device),
                          blank=0, reduction="sum")
        loss.backward()
        return loss.item(), x.grad.cpu()

    cpu_loss, cpu_grad = loss_and_grad("cpu")
    gpu_loss, gpu_grad = loss_and_grad("cuda")
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    assert (cpu_grad - gpu_grad).abs().max() < 1e-4
