"""The acoustic model: log-mel frames -> per-frame character log-probabilities, trained with CTC.

An optional convolutional front end cuts the frame rate by 2 or 4 (the main speed lever: the LSTMs then see half
or a quarter of the frames), then a deep bidirectional LSTM and a linear layer emit the characters. The output
layer may emit two CTC frames per LSTM step, so CTC keeps a fine frame grid while the LSTMs run on a coarse one.
Global feature normalisation lives in the model as buffers, so a saved model needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80
    vocab_size: int = 29
    subsampling: int = 2  # 1, 2 or 4: frames per model output step
    conv_channels: int = 32
    hidden_size: int = 256  # per direction
    num_layers: int = 3
    dropout: float = 0.1
    # CTC frames the output layer emits per LSTM step. Characters come at about 15 a second, so at subsampling 4
    # (25 frames a second) CTC has barely more frames than letters, and spaces and doubled letters get dropped;
    # 2 gives CTC 20 ms frames at almost no cost, since the LSTMs still run at 40 ms.
    outputs_per_step: int = 1

    def __post_init__(self):
        if self.subsampling not in (1, 2, 4):
            raise ValueError(f"subsampling must be 1, 2 or 4, not {self.subsampling}")
        if self.outputs_per_step not in (1, 2) or self.outputs_per_step > self.subsampling:
            raise ValueError(f"outputs_per_step must be 1, or 2 with subsampling 2 or 4, not {self.outputs_per_step}")

    @property
    def input_frames_per_output(self) -> int:
        """Feature frames per CTC output frame."""
        return self.subsampling // self.outputs_per_step


def mask_padding(tensor: torch.Tensor, lengths: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Zero every step at or past each item's length along `time_dim` (batch is dim 0)."""
    steps = torch.arange(tensor.shape[time_dim], device=tensor.device)
    valid = steps[None, :] < lengths[:, None].to(tensor.device)  # (batch, time)
    shape = [1] * tensor.dim()
    shape[0], shape[time_dim] = valid.shape
    return tensor * valid.view(shape).to(tensor.dtype)


def subsampled_lengths(feat_lens: torch.Tensor, subsampling: int) -> torch.Tensor:
    """Output frames of the front end for `feat_lens` input frames: each stride-2 stage maps L to (L - 1) // 2 + 1."""
    lengths = feat_lens
    for _ in range(subsampling.bit_length() - 1):
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
    return lengths


def output_lengths(feat_lens: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """CTC output frames of the model for `feat_lens` input frames."""
    return subsampled_lengths(feat_lens, config.subsampling) * config.outputs_per_step


def fits_ctc(frames: int, labels, config: ModelConfig) -> bool:
    """Whether `frames` input frames leave CTC a frame per label plus one between repeated labels."""
    needed = len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))
    return int(output_lengths(torch.tensor(frames), config)) >= max(needed, 1)


class ConvSubsampling(nn.Module):
    """Stride-2 2-D convolutions over (time, mel): (B, T, n_mels) -> (B, T / factor, channels * n_mels / factor)."""

    def __init__(self, n_mels: int, channels: int, factor: int):
        super().__init__()
        self.stages = nn.ModuleList()
        in_channels = 1
        for _ in range(factor.bit_length() - 1):  # log2(factor) stages
            self.stages.append(nn.Conv2d(in_channels, channels, kernel_size=3, stride=2, padding=1))
            in_channels = channels
            n_mels = (n_mels - 1) // 2 + 1
        self.output_size = channels * n_mels

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = feats.unsqueeze(1)  # (B, 1, T, n_mels)
        for conv in self.stages:
            x = torch.relu(conv(x))  # (B, C, T', n_mels')
            lengths = subsampled_lengths(lengths, 2)
            # Zero the padded steps, so the next stage sees the same zeros an unpadded utterance gets from padding=1.
            x = mask_padding(x, lengths, time_dim=2)
        batch, channels, frames, bins = x.shape
        return x.permute(0, 2, 1, 3).reshape(batch, frames, channels * bins), lengths  # (B, T', C * n_mels')


class BiLstmCtc(nn.Module):
    """Deep bidirectional LSTM acoustic model with a CTC output layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_mels))
        self.register_buffer("feature_std", torch.ones(config.n_mels))
        if config.subsampling > 1:
            self.frontend = ConvSubsampling(config.n_mels, config.conv_channels, config.subsampling)
            lstm_input = self.frontend.output_size
        else:
            self.frontend = None
            lstm_input = config.n_mels
        self.lstm = nn.LSTM(lstm_input, config.hidden_size, num_layers=config.num_layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size * config.outputs_per_step)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training data's per-bin feature mean and standard deviation."""
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor,
                normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels) log-mel, feat_lens (B,) -> log_probs (B, T', vocab), out_lens (B,).

        Padding past each length never changes that utterance's output. Pass `normalized=True` for features that
        were already normalised (training applies SpecAugment after normalisation).
        """
        if not normalized:
            feats = self.normalize(feats, feat_lens)
        if self.frontend is not None:
            x, out_lens = self.frontend(feats, feat_lens)
        else:
            x, out_lens = feats, feat_lens
        packed = pack_padded_sequence(x, out_lens.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, _ = self.lstm(packed)
        x, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])  # (B, T', 2H)
        logits = self.output(self.dropout(x))  # (B, T', outputs_per_step * vocab)
        steps = self.config.outputs_per_step
        if steps > 1:  # each step's row holds `steps` consecutive frames' logits
            logits = logits.reshape(logits.shape[0], logits.shape[1] * steps, self.config.vocab_size)
            out_lens = out_lens * steps
        return torch.log_softmax(logits.float(), dim=-1), out_lens

    def normalize(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> torch.Tensor:
        """Global mean/variance normalisation, padding set to 0: (B, T, n_mels) -> same."""
        return mask_padding((feats - self.feature_mean) / self.feature_std, feat_lens, time_dim=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
