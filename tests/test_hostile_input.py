"""The bad-input classes a hostile-input sweep found (one test each): every bad input ends with one line naming the
file, exit status 2, never a traceback, and the good files beside it are still transcribed."""

import os
import struct

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import MAX_SAMPLE_RATE, load_audio
from asr.cli import main
from asr.errors import AudioError
from conftest import write_tone


def transcribe(argv, capsys):
    code = main(["transcribe", *map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("asr: error:")]


def test_very_short_audio_is_one_line_and_the_good_file_is_still_transcribed(tmp_path, model_path, capsys):
    soundfile.write(tmp_path / "click.wav", np.full(256, 0.1, np.float32), 16000)  # 16 ms
    write_tone(tmp_path / "good.wav", seconds=0.5)
    code, out, err = transcribe([tmp_path / "click.wav", tmp_path / "good.wav", "--model", model_path], capsys)
    assert code == 2 and "good.wav" in out
    assert _errors(err) == [f"asr: error: {tmp_path / 'click.wav'}: is only 16.0 ms long, too short to transcribe "
                            "(25 ms or more); check the recording"]
    with pytest.raises(AudioError, match="too short"):
        load_audio(np.zeros(100, np.float32), 16000)


def _wav_header(rate: int, data_bytes: int) -> bytes:
    """A 16-bit mono WAV header declaring `rate` and `data_bytes` of samples."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_bytes))


@pytest.mark.parametrize("rate, problem", [(1, "declares a sample rate of 1 Hz"),
                                           (2_147_483_647, "declares a sample rate of 2147483647 Hz")])
def test_absurd_header_rates_are_refused_before_reading(tmp_path, model_path, capsys, rate, problem):
    path = tmp_path / "lying.wav"
    path.write_bytes(_wav_header(rate, 160_000) + b"\0" * 160_000)  # 80,000 samples: 22 h at 1 Hz
    code, _, err = transcribe([path, "--model", model_path], capsys)
    assert code == 2 and len(_errors(err)) == 1 and problem in err


def test_the_length_limit_guards_the_long_path_too(tmp_path, model_path, capsys):
    """Over 20 s a file is read in windows; its header's length is checked first, as for a short file."""
    path = tmp_path / "long.wav"
    hours = 3.5
    frames = int(hours * 3600 * 8000)
    with open(path, "wb") as handle:  # a sparse file: the header and a little data, the rest never written
        handle.write(_wav_header(8000, frames * 2))
        handle.truncate(44 + frames * 2)
    code, _, err = transcribe([path, "--model", model_path], capsys)
    assert code == 2 and "3.5 h long, over the 3.0 h limit" in err and len(_errors(err)) == 1


@pytest.mark.parametrize("suffix, fmt, subtype", [(".wav", "WAV", "PCM_16"), (".mp3", "MP3", None),
                                                  (".ogg", "OGG", "OPUS")])
def test_truncated_files_are_transcribed_in_part_and_said_so(tmp_path, model_path, capsys, suffix, fmt, subtype):
    if fmt not in soundfile.available_formats():
        pytest.skip(f"this libsndfile has no {fmt}")
    full = tmp_path / f"full{suffix}"
    soundfile.write(full, (0.1 * np.sin(np.arange(48000) * 0.05)).astype(np.float32), 16000, format=fmt,
                    subtype=subtype)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, out, err = transcribe([cut, full, "--model", model_path], capsys)
    assert code == 2 and str(full) in out and str(cut) in out  # what could be read is transcribed
    assert _errors(err) == [line for line in _errors(err) if "truncated" in line] and len(_errors(err)) == 1
    assert "Warning" not in err and "error: " not in err.replace("asr: error: ", "")  # no decoder chatter


def test_huge_finite_samples_do_not_erase_the_rest(tmp_path):
    rng = np.random.default_rng(0)
    speech = (0.2 * rng.standard_normal(32000)).astype(np.float32)
    spiked = speech.copy()
    spiked[16000:17000] = 1e30
    soundfile.write(tmp_path / "spiked.wav", spiked, 16000, subtype="FLOAT")
    samples = load_audio(tmp_path / "spiked.wav")
    assert np.abs(samples).max() < 2 and np.allclose(samples[:16000], speech[:16000], atol=1e-6)


def test_integer_arrays_are_scaled_like_files():
    pcm = (np.sin(np.arange(8000) * 0.05) * 16000).astype(np.int16)
    samples = load_audio(pcm, 16000)
    assert abs(float(np.abs(samples).max()) - 16000 / 32768) < 1e-3
    with pytest.raises(AudioError, match="outside"):
        load_audio(pcm, MAX_SAMPLE_RATE * 10)


def test_same_stem_outputs_do_not_overwrite_each_other(tmp_path, model_path, capsys):
    write_tone(tmp_path / "talk.wav", seconds=0.5)
    write_tone(tmp_path / "talk.flac", seconds=0.5, fmt="FLAC")
    code, _, err = transcribe([tmp_path / "talk.wav", tmp_path / "talk.flac", "--model", model_path,
                               "--output-dir", tmp_path / "out"], capsys)
    assert code == 0 and "wrote 2" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["talk.flac.txt", "talk.wav.txt"]


def test_an_output_dir_that_cannot_be_written_is_refused_before_any_work(tmp_path, model_path, capsys):
    write_tone(tmp_path / "a.wav", seconds=0.5)
    (tmp_path / "file").write_text("x")
    code, out, err = transcribe([tmp_path / "a.wav", "--model", model_path, "--output-dir", tmp_path / "file"],
                                capsys)
    assert code == 2 and out == "" and _errors(err) == [f"asr: error: {tmp_path / 'file'}: exists and is not a "
                                                        "directory; give --output-dir a folder"]


def test_errors_file_that_is_a_folder_is_refused_before_decoding(tmp_path, model_path, capsys):
    write_tone(tmp_path / "a.wav", seconds=0.5)
    (tmp_path / "m.jsonl").write_text('{"id": "a", "audio": "a.wav", "duration": 0.5, "text": "A"}\n')
    code = main(["evaluate", "--model", str(model_path), "--manifest", str(tmp_path / "m.jsonl"),
                 "--errors-file", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "is a directory; give --errors-file a file name" in err and "Traceback" not in err


def test_a_fifo_is_refused_not_waited_on(tmp_path, model_path, capsys):
    os.mkfifo(tmp_path / "pipe.wav")
    write_tone(tmp_path / "good.wav", seconds=0.5)
    code, out, err = transcribe([tmp_path / "pipe.wav", tmp_path / "good.wav", "--model", model_path], capsys)
    assert code == 2 and "good.wav" in out and "is not a regular file" in err and len(_errors(err)) == 1


def test_an_unreadable_folder_is_one_line_and_the_rest_is_transcribed(tmp_path, model_path, capsys, monkeypatch):
    (tmp_path / "closed").mkdir()
    write_tone(tmp_path / "closed" / "a.wav", seconds=0.5)
    write_tone(tmp_path / "b.wav", seconds=0.5)
    real_scandir = os.scandir

    def scandir(path="."):  # as for a folder without the read bit (root, as in CI, reads every folder)
        if str(path).endswith("closed"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = transcribe([tmp_path, "--model", model_path], capsys)
    assert code == 2 and len(out.splitlines()) == 1  # b.wav, the one file found, is transcribed
    assert _errors(err) == [f"asr: error: {tmp_path / 'closed'}: cannot be listed (permission denied); its files "
                            "were skipped"]
    (tmp_path / "empty").mkdir()  # a folder listed fine but holding no audio is still its own error
    code, out, err = transcribe([tmp_path / "closed", tmp_path / "empty", "--model", model_path], capsys)
    assert code == 2 and out == "" and "empty: no audio files" in err


def test_evaluate_with_a_missing_audio_file_exits_2(tmp_path, model_path, capsys):
    write_tone(tmp_path / "a.wav", seconds=0.5)
    (tmp_path / "m.jsonl").write_text('{"id": "a", "audio": "a.wav", "duration": 0.5, "text": "A"}\n'
                                      '{"id": "b", "audio": "gone.wav", "duration": 0.5, "text": "B"}\n')
    code = main(["evaluate", "--model", str(model_path), "--manifest", str(tmp_path / "m.jsonl"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out.startswith("WER") and "1 unreadable utterance" in captured.err


def _flip_bytes_in_weights(path, count=8):
    """Damage `path` the way a bad disk or download would: `count` bytes in the middle of its largest tensor."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(count):
        data[middle + i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_model_file_is_one_clear_line(model_path, tmp_path, capsys):
    from asr.checkpoint import load_model_file
    from asr.errors import CheckpointError

    load_model_file(model_path)  # loads before the damage
    _flip_bytes_in_weights(model_path)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_model_file(model_path)
    write_tone(tmp_path / "a.wav", seconds=0.5)
    code, out, err = transcribe([tmp_path / "a.wav", "--model", model_path], capsys)
    assert code == 2 and out == "" and len(_errors(err)) == 1 and "checksum" in err


def test_model_files_from_before_checksums_still_load(model_path):
    from asr.checkpoint import load_model_file

    payload = torch.load(model_path, weights_only=True)
    del payload["tensor_sha256"]
    torch.save(payload, model_path)
    assert load_model_file(model_path).model is not None


@pytest.mark.parametrize("section, field, value", [
    ("feature_config", "sample_rate", 0), ("feature_config", "hop_length", 0), ("model_config", "hidden_size", 10**6),
    ("model_config", "num_layers", "3"), ("decoding", "lm_beam_size", "wide"), ("decoding", "lm_weight", float("nan")),
])
def test_malformed_model_file_fields_are_refused_before_anything_is_built(model_path, section, field, value):
    """A few-kB file declaring a million LSTM units is refused before it allocates gigabytes."""
    from asr.checkpoint import atomic_save, load_model_file
    from asr.errors import CheckpointError

    payload = torch.load(model_path, weights_only=True)
    payload.setdefault(section, {})[field] = value
    payload.pop("tensor_sha256")
    atomic_save(payload, model_path)
    with pytest.raises(CheckpointError, match=f"{field}"):
        load_model_file(model_path)


def test_training_survives_a_kill_between_checkpoints(noise_manifest, tmp_path):
    """What a SIGKILL leaves (a half-written checkpoint's temporary file, log rows of steps after the last
    checkpoint) is cleaned up on resume: every step and epoch is logged once."""
    import json

    from asr.config import apply_overrides, preset
    from asr.train import TrainingStopped, train

    config = apply_overrides(preset("tiny"), ["train.epochs=2", "train.max_batch_frames=160", "model.hidden_size=16",
                                              "train.log_every_steps=1"])
    exp = tmp_path / "exp"
    with pytest.raises(TrainingStopped):
        train(config, noise_manifest, exp, show_progress=False, stop_after_steps=3)
    # As if killed later: rows for steps 4-5 written, then a checkpoint write cut off.
    with open(exp / "train_log.jsonl", "a") as log:
        for step in (4, 5):
            log.write(json.dumps({"type": "step", "step": step, "epoch": 1, "loss": 1.0, "lr": 0.1}) + "\n")
        log.write('{"type": "step", "st')
    (exp / "checkpoints" / "last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    train(config, noise_manifest, exp, show_progress=False)
    rows = [json.loads(line) for line in (exp / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["type"] == "step"]
    epochs = [r["epoch"] for r in rows if r["type"] == "epoch"]
    assert steps == sorted(set(steps)) and epochs == [1, 2]
    assert not list((exp / "checkpoints").glob("*.tmp"))


def test_training_config_errors_are_one_line(noise_manifest, tmp_path, capsys):
    argv = ["train", "--train-data", str(noise_manifest), "--exp-dir", str(tmp_path / "exp"), "--preset", "tiny",
            "--no-progress"]
    assert main(argv + ["--set", "train.learning_rate=nan"]) == 2
    assert "train.learning_rate must be a finite number" in capsys.readouterr().err
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.json").write_bytes(b"\x00garbage{")
    assert main(argv + ["--set", "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "config.json: damaged" in err and "Traceback" not in err


def test_manifests_with_duplicate_ids_or_binary_content_are_refused(tmp_path, capsys, model_path):
    (tmp_path / "dup.jsonl").write_text('{"id": "a", "audio": "x.wav", "duration": 1, "text": "A"}\n'
                                        '{"id": "a", "audio": "y.wav", "duration": 1, "text": "B"}\n')
    (tmp_path / "bin.jsonl").write_bytes(bytes(range(256)))
    for name, problem in (("dup.jsonl", "dup.jsonl:2: utterance id 'a' is already used on line 1"),
                          ("bin.jsonl", "bin.jsonl: not UTF-8 text")):
        assert main(["evaluate", "--model", str(model_path), "--manifest", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert problem in err and len(err.strip().splitlines()) == 1


def test_a_tiny_file_declaring_a_huge_model_is_refused_without_allocating_it(model_path):
    import resource

    from asr.checkpoint import atomic_save, load_model_file
    from asr.errors import CheckpointError

    payload = torch.load(model_path, weights_only=True)
    payload["model_config"].update(hidden_size=4096, num_layers=16)  # within the field bounds: 25 GB of LSTM
    payload.pop("tensor_sha256")
    atomic_save(payload, model_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="do not fit its model config"):
        load_model_file(model_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB: nothing near 25 GB
