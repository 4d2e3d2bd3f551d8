import numpy as np
import pytest
import soundfile
import torch

from asr.audio import SAMPLE_RATE, audio_duration, background_rms, fill_silent_edges, load_audio
from asr.errors import AudioError
from conftest import write_tone


@pytest.mark.parametrize("suffix,fmt", [(".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG")])
def test_reads_common_formats_at_16k(tmp_path, suffix, fmt):
    path = tmp_path / f"tone{suffix}"
    write_tone(path, seconds=0.5, rate=16000, fmt=fmt)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 8000) <= 1
    assert 0.3 < np.abs(samples).max() < 0.6


def test_mp3_when_libsndfile_supports_it(tmp_path):
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    path = tmp_path / "tone.mp3"
    write_tone(path, seconds=0.5, fmt="MP3")
    assert abs(len(load_audio(path)) / SAMPLE_RATE - 0.5) < 0.1


def test_resamples_and_mixes_to_mono(tmp_path):
    path = tmp_path / "stereo44k.wav"
    write_tone(path, seconds=1.0, rate=44100, channels=2, frequency=300)
    samples = load_audio(path)
    assert abs(len(samples) - SAMPLE_RATE) <= 2
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(samples) - 300) < 3  # the tone survives resampling


def test_bytes_and_arrays(tmp_path):
    path = tmp_path / "a.wav"
    mono = write_tone(path, seconds=0.25)
    assert np.allclose(load_audio(path.read_bytes()), load_audio(path))
    assert np.allclose(load_audio(mono, sample_rate=16000), mono)
    assert np.allclose(load_audio(torch.from_numpy(mono), sample_rate=16000), mono)
    channels_first = np.stack([mono, mono])  # (2, samples)
    assert np.allclose(load_audio(channels_first, sample_rate=16000), mono, atol=1e-6)
    assert len(load_audio(mono, sample_rate=8000)) == 2 * len(mono)


@pytest.mark.parametrize("make,problem", [
    (lambda d: d / "missing.wav", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "text.wav").write_text("not audio at all") and d / "text.wav", "not a readable audio file"),
    (lambda d: soundfile.write(d / "empty.wav", np.zeros(0, np.float32), 16000) or d / "empty.wav", "no audio"),
    (lambda d: soundfile.write(d / "nan.wav", np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
     or d / "nan.wav", "NaN or infinite"),
])
def test_bad_files_name_the_file_and_problem(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.flac"
    write_tone(path, seconds=2.0, fmt="FLAC")
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(AudioError, match="cut.flac"):
        load_audio(path)


def test_too_long_audio_is_refused_before_reading(tmp_path):
    path = tmp_path / "long.wav"
    write_tone(path, seconds=3.0)
    with pytest.raises(AudioError, match="over the"):
        load_audio(path, max_seconds=2.0)


def test_array_without_rate_and_infinite_values():
    with pytest.raises(AudioError, match="sample rate"):
        load_audio(np.zeros(10, np.float32))
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(np.array([0.0, np.inf], np.float32), sample_rate=16000)


def test_duration_from_header(tmp_path):
    path = tmp_path / "d.flac"
    write_tone(path, seconds=1.5, fmt="FLAC")
    assert audio_duration(path) == pytest.approx(1.5)


def test_silence_around_a_recording_is_filled_with_its_background():
    rng = np.random.default_rng(1)
    background = 0.01 * rng.standard_normal(8000)
    tone = 0.5 * np.sin(np.arange(1, 8001) / 5.0)
    recording = np.concatenate([background, tone]).astype(np.float32)
    samples = np.concatenate([np.zeros(4000), recording, np.zeros(2000)]).astype(np.float32)
    filled = fill_silent_edges(samples)
    added = np.concatenate([filled[:4000], filled[-2000:]])
    assert 0.8 < added.std() / background.std() < 1.2  # at the level of the quietest 20 ms of the recording
    np.testing.assert_array_equal(filled[4000:-2000], recording)  # which is untouched
    np.testing.assert_array_equal(fill_silent_edges(samples), filled)  # the same noise every time
    assert samples[:4000].max() == 0  # the input is not changed in place
    only_after = np.concatenate([recording, np.zeros(2000)]).astype(np.float32)
    np.testing.assert_array_equal(fill_silent_edges(only_after)[:-2000], recording)
    assert fill_silent_edges(only_after)[-2000:].std() > 0


def test_silence_inside_a_recording_or_too_short_to_be_digital_is_left():
    tone = 0.5 * np.sin(np.arange(1, 8001) / 5.0)
    silent_between_words = np.concatenate([np.zeros(1000), tone, np.zeros(1000), tone, np.zeros(1000)])
    silent_between_words = silent_between_words.astype(np.float32)
    assert fill_silent_edges(silent_between_words) is silent_between_words  # as training left such recordings
    brief = np.concatenate([np.zeros(100), tone]).astype(np.float32)  # under 20 ms: a quiet moment, not an edit
    assert fill_silent_edges(brief) is brief
    all_zero = np.zeros(16000, dtype=np.float32)
    assert fill_silent_edges(all_zero) is all_zero


def test_background_level_is_the_quietest_whole_20_ms():
    samples = np.concatenate([np.full(320, 0.5), np.full(320, 0.1), np.full(100, 0.0)]).astype(np.float32)
    assert background_rms(samples) == pytest.approx(0.1)  # the 100 samples at the end are not a whole 20 ms
    assert background_rms(samples[:100]) == 0.0
