import librosa
import numpy as np
import torch

from asr.features import FeatureConfig, FeatureStatistics, SpecAugmentConfig, log_mel, mel_filterbank, spec_augment


def test_mel_filterbank_matches_librosa():
    config = FeatureConfig()
    ours = mel_filterbank(config).numpy().T  # (n_mels, n_fft // 2 + 1)
    theirs = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                 fmin=config.f_min, fmax=config.f_max, htk=False, norm="slaney")
    assert ours.shape == theirs.shape
    assert np.allclose(ours, theirs, atol=1e-6, rtol=1e-4)


def test_log_mel_matches_librosa_on_a_signal():
    config = FeatureConfig()
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(16000)).astype(np.float32)
    ours = log_mel(samples, config).numpy()
    theirs = librosa.feature.melspectrogram(
        y=samples, sr=16000, n_fft=config.n_fft, win_length=config.win_length, hop_length=config.hop_length,
        n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max, power=2.0, center=True, pad_mode="reflect",
        htk=False, norm="slaney")
    theirs = np.log(theirs + config.log_floor).T
    assert ours.shape == theirs.shape == (config.num_frames(16000), 80)
    assert np.abs(ours - theirs).max() < 1e-2


def test_statistics_normalise_to_zero_mean_unit_variance():
    rng = np.random.default_rng(2)
    statistics = FeatureStatistics(4)
    chunks = [torch.from_numpy(rng.normal(3.0, 2.0, size=(n, 4))).float() for n in (50, 70, 90)]
    for chunk in chunks:
        statistics.add(chunk)
    mean, std = statistics.mean_std()
    everything = torch.cat(chunks)
    assert torch.allclose(mean, everything.mean(0), atol=1e-4)
    assert torch.allclose(std, everything.std(0, unbiased=False), atol=1e-4)


def test_spec_augment_masks_only_inside_each_length():
    features = torch.ones(3, 100, 80)
    lengths = torch.tensor([100, 60, 30])
    generator = torch.Generator().manual_seed(0)
    config = SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=0.2)
    out = spec_augment(features, lengths, config, generator)
    assert out.shape == features.shape
    assert (out == 0).any()  # something was masked
    for i, length in enumerate(lengths.tolist()):
        time_masked = (out[i] == 0).all(dim=1)  # frames zero in every bin: only a time mask does that
        assert not time_masked[length:].any()  # no time mask in the padding
        assert time_masked[:length].sum().item() <= 2 * int(0.2 * length)
    again = spec_augment(features, lengths, config, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # reproducible from the generator
