"""Output formats, directories, long files in windows, int8 weights and the bundled-model fallback."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import asr
import asr.audio
from asr.checkpoint import save_model
from asr.cli import main
from asr.features import FeatureConfig
from asr.long_audio import (LongAudioFile, WindowConfig, cut_frame, rerun_on_segments, speech_span,
                             windowed_log_probs)
from asr.model import BiLstmCtc, ModelConfig
from asr.subtitles import cues, to_srt, to_webvtt
from asr.text import Vocabulary
from asr.transcribe import Transcript, Word
from conftest import write_tone


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_model(path, BiLstmCtc(ModelConfig(subsampling=4, conv_channels=4, hidden_size=16, num_layers=2)),
               FeatureConfig(), Vocabulary())
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


WORDS = (Word("HELLO", 0.5, 0.9, 0.9), Word("WORLD", 1.0, 1.42, 0.8), Word("AGAIN", 3.0, 3.5, 0.7))
TRANSCRIPT = Transcript("HELLO WORLD AGAIN", WORDS, 0.8, 4.0)


def test_subtitles_split_cues_at_pauses_and_format_times():
    assert [[w.text for w in cue] for cue in cues(WORDS)] == [["HELLO", "WORLD"], ["AGAIN"]]
    assert to_srt(TRANSCRIPT) == ("1\n00:00:00,500 --> 00:00:01,420\nHELLO WORLD\n\n"
                                  "2\n00:00:03,000 --> 00:00:03,500\nAGAIN\n")
    assert to_webvtt(TRANSCRIPT) == ("WEBVTT\n\n00:00:00.500 --> 00:00:01.420\nHELLO WORLD\n\n"
                                     "00:00:03.000 --> 00:00:03.500\nAGAIN\n")
    long_words = [Word(f"W{i}", i * 0.3, i * 0.3 + 0.2, 1.0) for i in range(40)]
    assert all(len(cue) <= 12 and cue[-1].end - cue[0].start <= 6.0 for cue in cues(long_words))


BLANK = Vocabulary().blank
FRAME = 0.04  # seconds per output frame at subsampling 4: 640 samples


def frames_with_pauses(count, pauses):
    """(count, vocab) log-probs: a letter everywhere but in the [begin, end) runs of `pauses`, which are blank."""
    frames = np.full((count, len(Vocabulary())), -20.0, dtype=np.float32)
    frames[:, 5] = 0.0
    for begin, end in pauses:
        frames[begin:end, 5] = -20.0
        frames[begin:end, BLANK] = 0.0
    return frames


def test_a_window_is_cut_in_the_longest_pause_of_its_last_stretch():
    config = WindowConfig(window_seconds=20.0, search_seconds=8.0, context_seconds=2.0)  # search frames 300-449
    frames = frames_with_pauses(500, [(200, 260), (320, 326), (400, 420), (430, 433), (460, 499)])
    assert cut_frame(frames, BLANK, FRAME, config) == 410  # not the longer pauses before 300 or after 450
    no_pause = frames_with_pauses(500, [])
    no_pause[350, BLANK] = -1.0  # blank likeliest here, though never the likeliest output
    assert cut_frame(no_pause, BLANK, FRAME, config) == 350


@pytest.mark.parametrize("frames_per_step", [1, 2])
def test_seams_fall_in_pauses_and_every_frame_is_kept_once(tmp_path, frames_per_step):
    # Each sample holds the index of its 40 ms frame, and a 20-frame pause comes every 150 frames; the stand-in
    # model reports both, so the joined frames show which stretch of the file each came from.
    total_frames = 2000  # 80 s
    samples = np.repeat(np.arange(total_frames, dtype=np.float32) / 1e4, 640)
    soundfile.write(tmp_path / "long.wav", samples, 16000, subtype="FLOAT")
    pauses = [(p, p + 20) for p in range(101, total_frames, 150)]  # odd cuts, to test the step grid
    starts = []

    def model(window):
        first = int(round(window[0] * 1e4))
        starts.append(first)
        frames = frames_with_pauses(total_frames, pauses)[first:first + len(window) // 640].copy()
        frames[:, 1] = -100.0 - window[::640][:len(frames)] * 1e4  # the frame's own index, never the likeliest
        return torch.from_numpy(frames)

    config = WindowConfig(window_seconds=20.0, search_seconds=8.0, context_seconds=2.0)
    with LongAudioFile(tmp_path / "long.wav") as audio:
        joined = windowed_log_probs(audio, model, BLANK, FRAME, config, frames_per_step)
    assert torch.equal((-100.0 - joined[:, 1]).round(), torch.arange(total_frames, dtype=torch.float32))
    assert len(starts) > 4 and starts[0] == 0
    assert all(start % frames_per_step == 0 for start in starts)  # windows start on the LSTM's step grid
    context = 50  # frames: each window after the first starts 2 s before its seam, which is in a pause
    assert all(any(begin < start + context < end for begin, end in pauses) for start in starts[1:])


def test_segments_between_pauses_are_run_again_on_their_own(tmp_path):
    # The stand-in model marks each frame with the index of the first frame of the audio it was given, so the
    # result shows which frames came from a run on the segment alone.
    samples = np.repeat(np.arange(1000, dtype=np.float32) / 1e4, 640)  # 40 s; each sample holds its frame index
    soundfile.write(tmp_path / "long.wav", samples, 16000, subtype="FLOAT")
    joined = torch.full((1000, 3), -1.0)
    calls = []

    def model(waveforms):
        calls.append(len(waveforms))
        return [torch.full((len(w) // 640, 3), float(round(w[0] * 1e4))) for w in waveforms]

    segments = [(0, 200), (200, 900), (900, 1000)]  # the middle one, 28 s, is longer than a window
    with LongAudioFile(tmp_path / "long.wav") as audio:
        refined = rerun_on_segments(audio, joined, segments, BLANK, model, FRAME, max_seconds=20.0,
                                    batch_size=1)
    assert calls == [1, 1]
    assert (refined[:200] == 0).all() and (refined[900:] == 900).all()
    assert (refined[200:900] == -1).all()  # too long to run alone: the windowed outputs stay


def test_a_segment_is_rerun_on_its_speech_and_a_short_margin():
    spoken = np.zeros(100, dtype=bool)
    spoken[[30, 41, 60]] = True
    assert speech_span(spoken, 500, frame_seconds=0.02, margin_seconds=0.1) == (525, 566)  # 5 frames each side
    assert speech_span(spoken, 500, frame_seconds=0.02, margin_seconds=2.0) == (500, 600)  # never past the segment
    assert speech_span(np.zeros(10, dtype=bool), 7, 0.02, 0.1) == (7, 17)  # no speech: the whole segment


def test_long_audio_file_reads_any_rate_and_channels(tmp_path):
    rate = 8000
    stereo = np.random.default_rng(0).uniform(-0.1, 0.1, size=(rate * 50, 2)).astype(np.float32)
    soundfile.write(tmp_path / "long.flac", stereo, rate)
    with LongAudioFile(tmp_path / "long.flac") as audio:
        assert audio.seconds == pytest.approx(50.0)
        assert len(audio.read(16.0, 20.0)) == 20 * 16000
        assert len(audio.read(32.0, 20.0)) == 18 * 16000


def test_long_file_goes_through_windows_and_times_span_the_file(tmp_path, model_path):
    rng = np.random.default_rng(1)
    soundfile.write(tmp_path / "long.wav", rng.uniform(-0.3, 0.3, 16000 * 70).astype(np.float32), 16000)
    recognizer = asr.load_model(model_path)
    result = recognizer.transcribe(tmp_path / "long.wav")
    assert result.duration == pytest.approx(70.0)
    whole = recognizer.log_probs([soundfile.read(tmp_path / "long.wav", dtype="float32")[0]])[0]
    with LongAudioFile(tmp_path / "long.wav") as audio:
        joined = windowed_log_probs(audio, lambda s: recognizer.log_probs([s])[0], recognizer.vocabulary.blank,
                                    recognizer.frame_seconds, recognizer.window)
    assert abs(len(joined) - len(whole)) <= 2  # no frame of the file lost or doubled
    assert all(0 <= w.start <= w.end <= 70.0 for w in result.words)


def test_directory_input_formats_and_output_dir(tmp_path, model_path, capsys):
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    write_tone(audio / "a.wav", seconds=1.0)
    write_tone(audio / "sub" / "b.flac", seconds=1.5, fmt="FLAC")
    (audio / "notes.txt").write_text("not audio, and not picked up")
    for fmt, suffix in [("srt", ".srt"), ("vtt", ".vtt"), ("json", ".json"), ("text", ".txt")]:
        out_dir = tmp_path / f"out-{fmt}"
        code, _, err = run(["transcribe", audio, "--model", model_path, "--format", fmt, "--output-dir", out_dir,
                            "--no-progress"], capsys)
        assert code == 0, err
        assert sorted(p.name for p in out_dir.iterdir()) == [f"a{suffix}", f"b{suffix}"]
    assert json.loads((tmp_path / "out-json" / "b.json").read_text())["duration"] == pytest.approx(1.5)
    assert (tmp_path / "out-vtt" / "a.vtt").read_text().startswith("WEBVTT")
    code, out, _ = run(["transcribe", audio, "--model", model_path, "--format", "json"], capsys)
    assert code == 0 and len(json.loads(out)) == 2
    code, _, err = run(["transcribe", tmp_path / "out-srt", "--model", model_path], capsys)
    assert code == 2 and "no audio files" in err


def test_int8_weights_are_smaller_and_agree(tmp_path, model_path):
    tone = write_tone(tmp_path / "a.wav", seconds=2.0)
    full = asr.load_model(model_path)
    small = asr.load_model(model_path, int8=True, threads=1)
    assert any("quantized" in type(m).__module__ for m in small.model.modules())
    a, b = full.log_probs([tone])[0], small.log_probs([tone])[0]
    assert a.shape == b.shape
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.99


def test_no_bundled_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import asr.models

    monkeypatch.setattr(asr.models, "DEFAULT_MODEL", tmp_path / "none.pt")
    write_tone(tmp_path / "a.wav")
    code, _, err = run(["transcribe", tmp_path / "a.wav"], capsys)
    assert code == 2 and re.search(r"no bundled default model; pass --model", err)


def test_long_stretches_split_at_pauses():
    from asr.long_audio import pause_segments

    blank = Vocabulary().blank
    frames = np.full((400, len(Vocabulary())), -20.0, dtype=np.float32)
    frames[:, blank] = 0.0
    speech = [(0, 100), (112, 200), (205, 330), (345, 400)]  # blank runs: 100-111 (0.48 s), 200-204, 330-344
    for begin, end in speech:
        frames[begin:end, 5] = 0.0
        frames[begin:end, blank] = -20.0
    # 0.04 s frames: pauses of at least 0.4 s (10 frames) are cut in their middle; runs of 5 frames are not.
    assert pause_segments(frames, blank, 0.04) == [(0, 106), (106, 337), (337, 400)]
    # No cut leaves a segment shorter than the minimum (3 s = 75 frames): the last 63 frames stay attached.
    assert pause_segments(frames, blank, 0.04, min_segment_seconds=3.0) == [(0, 106), (106, 400)]
    assert pause_segments(frames, blank, 0.04, min_segment_seconds=5.0) == [(0, 400)]


def test_lm_search_word_times_are_in_order():
    """Every character of the LM beam search's best path comes after the one before it, so no word ends before it
    starts or overlaps the next (the bundled model once put "AT" at 1.50-1.38 s in examples/speech.flac)."""
    speech = Path(__file__).parent.parent / "examples" / "speech.flac"
    recognizer = asr.load_model(passes=1)
    log_probs = recognizer.log_probs([asr.audio.load_audio(speech)])[0]
    for beam in (8, 64, 256):
        timesteps = recognizer.hypotheses([log_probs], beam_size=beam)[0].timesteps
        assert all(a < b for a, b in zip(timesteps, timesteps[1:]))
    words = recognizer.transcribe(speech).words
    assert all(w.start <= w.end <= later.start for w, later in zip(words, words[1:]))
