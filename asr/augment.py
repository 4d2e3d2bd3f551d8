"""Recording conditions for synthetic speech: speed, noise at a signal-to-noise ratio, reverberation, telephone
band, microphone colouring, lossy codecs, gain, background before and after the speech. Each function takes and returns 16 kHz float32 samples and
draws randomness only from the generator it is given, so a corpus is reproducible from its seed.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile
from scipy import signal

from asr.audio import SAMPLE_RATE, background_rms, resample


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (Ko et al., 2015): play `factor` times faster, which also shifts the pitch."""
    if factor == 1.0:
        return samples
    return resample(samples, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)


def coloured_noise(length: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) noise of unit variance."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length)
    frequencies[0] = frequencies[1] if length > 1 else 1.0
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]  # amplitude ~ f^-exponent
    noise = np.fft.irfft(spectrum / frequencies ** exponent, n=length)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix `noise` (looped or cut to length) under `speech` at `snr_db` dB signal-to-noise ratio."""
    if len(noise) < len(speech):
        noise = np.tile(noise, int(np.ceil(len(speech) / len(noise))))
    noise = noise[:len(speech)]
    speech_power = np.mean(speech ** 2) + 1e-12
    noise_power = np.mean(noise ** 2) + 1e-12
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def room_impulse_response(rt60: float, rng: np.random.Generator, direct_to_reverb_db: float = 3.0) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise reaching -60 dB at rt60."""
    length = int(rt60 * SAMPLE_RATE)
    times = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * times / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0  # first reflections arrive a couple of milliseconds late
    tail *= 10 ** (-direct_to_reverb_db / 20) / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(samples: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    wet = signal.fftconvolve(samples, room_impulse_response(rt60, rng))[: len(samples)]
    return (wet * (np.abs(samples).max() / (np.abs(wet).max() + 1e-12))).astype(np.float32)


def telephone(samples: np.ndarray) -> np.ndarray:
    """Narrow-band telephone channel: 300-3400 Hz band-pass and a trip through 8 kHz sampling."""
    sos = signal.butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = signal.sosfilt(sos, samples).astype(np.float32)
    return resample(resample(narrow, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[: len(samples)]


def colour_microphone(samples: np.ndarray, highpass_hz: float, presence_db: float) -> np.ndarray:
    """A cheap microphone's response: bass cut below `highpass_hz` (laptops, phones, headsets) and a peak or dip of
    `presence_db` around 3 kHz (small capsules resonate there)."""
    out = samples.astype(np.float64)
    if highpass_hz > 0:
        out = signal.sosfilt(signal.butter(2, highpass_hz, btype="highpass", fs=SAMPLE_RATE, output="sos"), out)
    if presence_db:
        # Peaking biquad (RBJ audio EQ cookbook), centre 3 kHz, Q 1.
        gain, omega = 10 ** (presence_db / 40), 2 * np.pi * 3000 / SAMPLE_RATE
        alpha = np.sin(omega) / 2
        b = [1 + alpha * gain, -2 * np.cos(omega), 1 - alpha * gain]
        a = [1 + alpha / gain, -2 * np.cos(omega), 1 - alpha / gain]
        out = signal.lfilter(b, a, out)
    return out.astype(np.float32)


# Lossy codecs that real recordings pass through: (container, encoding, sample rate it runs at).
CODECS = {"opus": ("OGG", "OPUS", 16000), "mp3": ("MP3", "MPEG_LAYER_III", 16000),
          "ulaw8k": ("WAV", "ULAW", 8000), "gsm8k": ("WAV", "GSM610", 8000)}


def through_codec(samples: np.ndarray, codec: str, quality: float = 0.5) -> np.ndarray:
    """Encode and decode with `codec` (a key of CODECS); `quality` 0 (best) to 1 (smallest file) for opus and mp3.
    The 8 kHz telephone codecs also narrow the band to 4 kHz, as a phone call does."""
    container, encoding, rate = CODECS[codec]
    audio = resample(samples, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else samples
    buffer = io.BytesIO()
    # libsndfile's MP3 encoder refuses a compression level of exactly 1.0 (0.99 is its smallest file too).
    level = {"compression_level": min(quality, 0.99) if codec == "mp3" else quality} if container != "WAV" else {}
    soundfile.write(buffer, np.clip(audio, -1, 1), rate, format=container, subtype=encoding, **level)
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32")
    if rate != SAMPLE_RATE:
        decoded = resample(decoded, rate, SAMPLE_RATE)
    # Encoders add a little delay or padding; keep the original length so times stay put.
    return np.pad(decoded, (0, max(0, len(samples) - len(decoded))))[: len(samples)].astype(np.float32)


def apply_gain(samples: np.ndarray, gain_db: float) -> tuple[np.ndarray, float]:
    """Scale by `gain_db`, reduced where needed so the peak stays below clipping; returns (samples, gain used)."""
    peak = float(np.abs(samples).max()) + 1e-12
    gain_db = min(gain_db, 20 * np.log10(0.98 / peak))
    return (samples * 10 ** (gain_db / 20)).astype(np.float32), round(float(gain_db), 2)


def pad_with_background(samples: np.ndarray, before_seconds: float, after_seconds: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Add `before_seconds` and `after_seconds` of the recording's own background around it: Gaussian noise at the
    level of its quietest 20 ms, so the added stretch has no edge of digital silence for a model to key on."""
    level = background_rms(samples)
    before, after = int(before_seconds * SAMPLE_RATE), int(after_seconds * SAMPLE_RATE)
    background = (rng.standard_normal(before + after) * level).astype(np.float32)
    return np.concatenate([background[:before], samples.astype(np.float32), background[before:]])
