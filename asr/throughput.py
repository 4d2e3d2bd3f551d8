"""How close training runs to the limit of its architecture: a bare `torch.nn.LSTM` forward and backward on exactly
the packed batches training fed its LSTM (same lengths, sizes, device and precision), in feature frames per second.
Training's frames per second over this is the share of the LSTM's speed that training keeps; the rest goes to
data loading, features, the convolutions, CTC, the optimizer and per-step overhead. Used by
tools/bench_training.py and tools/gpu_check.py."""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence


@contextlib.contextmanager
def recorded_lstm_batches(into: list[torch.Tensor]):
    """While active, append the lengths of every packed batch any `nn.LSTM` runs on (on the CPU) to `into`."""
    def record(module, inputs):
        if isinstance(module, nn.LSTM) and module.training and isinstance(inputs[0], PackedSequence):
            sizes = inputs[0].batch_sizes
            into.append((torch.arange(int(sizes[0]))[:, None] < sizes[None, :]).sum(1))
    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        yield into
    finally:
        handle.remove()


def bare_lstm_frames_per_second(lstm: nn.LSTM, batches: list[torch.Tensor], frames_per_step: int,
                                device: torch.device, dtype: torch.dtype | None, repeats: int = 3) -> float:
    """Feature frames per second of `lstm` (a copy, on `device`) running forward and backward on packed batches of
    the given lengths, under autocast to `dtype` (None: fp32). `frames_per_step`: feature frames per LSTM step
    (the model's subsampling)."""
    lstm = type(lstm)(lstm.input_size, lstm.hidden_size, num_layers=lstm.num_layers, batch_first=True,
                      bidirectional=lstm.bidirectional, dropout=lstm.dropout).to(device).train()
    inputs = [(torch.randn(len(lengths), int(lengths.max()), lstm.input_size, device=device), lengths)
              for lengths in batches]

    def one_pass():
        for padded, lengths in inputs:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
                output, _ = lstm(packed)
            output.data.float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    one_pass()  # warm-up: cuDNN plans, allocator
    started = time.perf_counter()
    for _ in range(repeats):
        one_pass()
    seconds = (time.perf_counter() - started) / repeats
    return sum(int(lengths.sum()) for lengths in batches) * frames_per_step / seconds
