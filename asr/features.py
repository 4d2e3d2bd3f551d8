"""Log-mel filterbank features, their global normalisation statistics, and SpecAugment.

Features are computed one utterance at a time (so padding never leaks into a frame) and are (frames, n_mels),
10 ms apart. torchaudio computes them (loaded by `asr.torchaudio_backend`); this module is the only place that
knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from asr.audio import SAMPLE_RATE
from asr.torchaudio_backend import torchaudio


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    win_length: int = 400  # samples: 25 ms at 16 kHz
    hop_length: int = 160  # samples: 10 ms at 16 kHz, so 100 frames per second
    n_fft: int = 512
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-6  # added to the mel power before the log, so silence stays finite

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames `log_mel` returns for `num_samples` samples (centred frames)."""
        return 1 + num_samples // self.hop_length


@lru_cache(maxsize=4)
def _mel_transform(config: FeatureConfig):
    # Slaney mel scale and area normalisation: the same filterbank librosa uses by default.
    return torchaudio().transforms.MelSpectrogram(
        sample_rate=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
        hop_length=config.hop_length, f_min=config.f_min, f_max=config.f_max, n_mels=config.n_mels,
        power=2.0, norm="slaney", mel_scale="slaney", center=True,
    )


def mel_filterbank(config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """The (n_fft // 2 + 1, n_mels) filterbank matrix used by `log_mel`."""
    return _mel_transform(config).mel_scale.fb


def log_mel(samples: np.ndarray | torch.Tensor, config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Natural-log mel power of one utterance: samples (N,) -> features (config.num_frames(N), n_mels), float32."""
    waveform = torch.as_tensor(samples, dtype=torch.float32)
    with torch.no_grad():
        mel = _mel_transform(config)(waveform)  # (n_mels, frames)
    return torch.log(mel + config.log_floor).transpose(0, 1).contiguous()  # (frames, n_mels)


class FeatureStatistics:
    """Running mean and variance of feature frames (float64), for global normalisation."""

    def __init__(self, n_mels: int):
        self.count = 0
        self.total = torch.zeros(n_mels, dtype=torch.float64)
        self.total_squares = torch.zeros(n_mels, dtype=torch.float64)

    def add(self, features: torch.Tensor) -> None:
        """Accumulate one utterance's (frames, n_mels) features."""
        frames = features.to(torch.float64)
        self.count += frames.shape[0]
        self.total += frames.sum(0)
        self.total_squares += (frames * frames).sum(0)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ValueError("no feature frames were added; the training data is empty")
        mean = self.total / self.count
        variance = (self.total_squares / self.count - mean * mean).clamp_min(1e-8)
        return mean.float(), variance.sqrt().float()


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 27  # mel bins, at most
    time_masks: int = 2
    time_width: float = 0.05  # at most this fraction of each utterance's frames per mask


def spec_augment(features: torch.Tensor, lengths: torch.Tensor, config: SpecAugmentConfig,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Frequency and time masking (Park et al., 2019) for training: (batch, frames, n_mels) -> same, new tensor.

    Masks are drawn per utterance within its own length, so padding never receives a mask and a short utterance is
    not masked more than a long one. Masked values become 0 (the mean, after normalisation).
    """
    batch, max_frames, n_mels = features.shape
    keep = torch.ones(features.shape, dtype=torch.bool)  # built on the CPU, where the generator lives
    frame_index = torch.arange(max_frames)
    bin_index = torch.arange(n_mels)
    for i in range(batch):
        length = int(lengths[i])
        for _ in range(config.freq_masks):
            width = int(torch.randint(0, config.freq_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, n_mels - width), (1,), generator=generator))
            keep[i, :, (bin_index >= start) & (bin_index < start + width)] = False
        max_width = int(config.time_width * length)
        for _ in range(config.time_masks):
            width = int(torch.randint(0, max_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, length - width), (1,), generator=generator))
            keep[i, (frame_index >= start) & (frame_index < start + width), :] = False
    return features * keep.to(features.device)
