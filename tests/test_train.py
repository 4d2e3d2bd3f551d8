import json

import numpy as np
import pytest
import torch

from asr.augment import pad_with_background
from asr.checkpoint import load_model_file
from asr.config import apply_overrides, preset
from asr.data import UtteranceDataset, frame_budget_batches, read_manifest
from asr.errors import ConfigError, ManifestError
from asr.text import Vocabulary
from asr.train import TrainingStopped, train

# Dropout, SpecAugment, speed perturbation and padding on, so the random state has to be restored for an exact
# resume.
OVERRIDES = ["train.epochs=3", "train.max_batch_frames=160", "train.spec_augment=true", "model.dropout=0.2",
             "train.speed_perturbation=true", "train.pad_seconds=0.2",
             "model.hidden_size=16", "train.warmup_steps=2", "spec_augment.freq_width=5"]


def test_interrupted_and_resumed_run_ends_with_the_same_weights(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES)
    straight = load_model_file(train(config, noise_manifest, tmp_path / "straight", show_progress=False))

    resumed_dir = tmp_path / "resumed"
    with pytest.raises(TrainingStopped):
        train(config, noise_manifest, resumed_dir, show_progress=False, stop_after_steps=4)  # mid-epoch
    with pytest.raises(TrainingStopped):
        train(config, noise_manifest, resumed_dir, show_progress=False, stop_after_steps=3)
    resumed = load_model_file(train(config, noise_manifest, resumed_dir, show_progress=False))

    assert straight.metadata["steps"] == resumed.metadata["steps"] > 7
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_resume_refuses_a_changed_config(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES)
    with pytest.raises(TrainingStopped):
        train(config, noise_manifest, tmp_path / "exp", show_progress=False, stop_after_steps=1)
    with pytest.raises(ConfigError, match="different configuration"):
        train(apply_overrides(config, ["train.learning_rate=0.01"]), noise_manifest, tmp_path / "exp",
              show_progress=False)


def test_a_finished_run_trains_further_when_given_more_epochs(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES)
    first = load_model_file(train(config, noise_manifest, tmp_path / "exp", show_progress=False))
    longer = apply_overrides(config, ["train.epochs=5"])
    further = load_model_file(train(longer, noise_manifest, tmp_path / "exp", show_progress=False))
    assert further.metadata["epochs"] == 5
    assert further.metadata["steps"] > first.metadata["steps"]
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["train"]["epochs"] == 5


def test_a_run_started_before_a_setting_existed_still_resumes(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES)
    with pytest.raises(TrainingStopped):
        train(config, noise_manifest, tmp_path / "exp", show_progress=False, stop_after_steps=1)
    saved_path = tmp_path / "exp" / "config.json"
    saved = json.loads(saved_path.read_text())
    del saved["train"]["init_from"], saved["model"]["outputs_per_step"]  # as an older asr wrote it
    saved_path.write_text(json.dumps(saved))
    assert load_model_file(train(config, noise_manifest, tmp_path / "exp", show_progress=False)).metadata["epochs"] == 3


def test_a_run_starts_from_a_trained_model_with_a_wider_output_layer(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES)
    source = load_model_file(train(config, noise_manifest, tmp_path / "source", show_progress=False))
    # A learning rate of 0 leaves the weights where initialisation put them.
    widened = apply_overrides(config, ["model.outputs_per_step=2", f"train.init_from={tmp_path / 'source/model.pt'}",
                                       "train.learning_rate=0"])
    result = load_model_file(train(widened, noise_manifest, tmp_path / "widened", show_progress=False))
    assert result.model.config.outputs_per_step == 2
    for name, tensor in source.model.state_dict().items():
        expected = tensor.repeat(2, *([1] * (tensor.dim() - 1))) if name.startswith("output.") else tensor
        assert torch.equal(result.model.state_dict()[name], expected), name


def test_training_writes_logs_curves_and_checkpoints(noise_manifest, tmp_path):
    config = apply_overrides(preset("tiny"), OVERRIDES + ["train.log_every_steps=1", "train.keep_checkpoints=2"])
    train(config, noise_manifest, tmp_path / "exp", valid_manifest=noise_manifest, show_progress=False)
    entries = [json.loads(line) for line in (tmp_path / "exp" / "train_log.jsonl").read_text().splitlines()]
    assert any(e["type"] == "step" and e["loss"] > 0 for e in entries)
    assert [e["epoch"] for e in entries if e["type"] == "epoch"] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "exp" / "checkpoints").iterdir()) == ["epoch-2.pt", "epoch-3.pt",
                                                                                       "last.pt"]
    assert (tmp_path / "exp" / "training_curves.png").stat().st_size > 1000


def test_unreadable_audio_is_skipped_not_fatal(noise_manifest, tmp_path):
    (noise_manifest.parent / "n2.wav").write_text("corrupt")
    config = apply_overrides(preset("tiny"), OVERRIDES + ["train.epochs=1"])
    assert train(config, noise_manifest, tmp_path / "exp", show_progress=False).exists()


def test_padding_adds_the_recordings_own_background_around_it():
    rng = np.random.default_rng(0)
    quiet = 0.01 * rng.standard_normal(1600)  # 0.1 s of background before a tone
    speech = np.concatenate([quiet, 0.5 * np.sin(np.arange(16000) / 5.0)]).astype(np.float32)
    padded = pad_with_background(speech, 0.25, 0.5, rng)
    assert len(padded) == 4000 + len(speech) + 8000
    np.testing.assert_array_equal(padded[4000:4000 + len(speech)], speech)
    added = np.concatenate([padded[:4000], padded[-8000:]])
    assert 0.5 < added.std() / quiet.std() < 1.5  # at the level of the quiet stretch, far below the tone


def test_padded_utterances_vary_by_epoch_and_repeat_within_one(noise_manifest):
    utterances = read_manifest(noise_manifest)
    config = preset("tiny").features

    def frames(pad_seconds, epoch):
        dataset = UtteranceDataset(utterances, Vocabulary(), config, augment_seed=0, pad_seconds=pad_seconds)
        dataset.epoch = epoch
        return [dataset[i].features.shape[0] for i in range(len(dataset))]

    plain = frames(0.0, 0)
    assert all(p > n for p, n in zip(frames(0.3, 0), plain))  # two draws of up to 0.3 s: never both zero
    assert frames(0.3, 0) == frames(0.3, 0) != frames(0.3, 1)
    assert max(p - n for p, n in zip(frames(0.3, 0), plain)) <= 61  # at most 0.6 s at 100 frames a second


def test_frame_budget_batches():
    counts = [100, 20, 35, 90, 50, 10, 60]
    for epoch in range(3):
        batches = frame_budget_batches(counts, max_frames=120, epoch=epoch, seed=1)
        assert sorted(i for b in batches for i in b) == list(range(len(counts)))
        for batch in batches:
            assert len(batch) == 1 or max(counts[i] for i in batch) * len(batch) <= 120
    first = frame_budget_batches(counts, 120, epoch=0, seed=1)
    longest = [max(counts[i] for i in batch) for batch in first]
    assert longest == sorted(longest)  # SortaGrad: shortest first in epoch 0
    assert frame_budget_batches(counts, 120, 2, 1) == frame_budget_batches(counts, 120, 2, 1)


def test_malformed_manifest_names_the_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a", "audio": "a.wav", "duration": 1.0, "text": "A"}\n{"id": "b", "audio": "b.wav"}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:2: missing field\(s\) duration, text"):
        read_manifest(path)
    path.write_text("not json\n")
    with pytest.raises(ManifestError, match="m.jsonl:1: not valid JSON"):
        read_manifest(path)
    path.write_text('{"id": "a", "audio": "a.wav", "duration": -1, "text": "A"}\n')
    with pytest.raises(ManifestError, match="positive"):
        read_manifest(path)


def test_mixed_precision_path_trains(noise_manifest, tmp_path):
    # bf16 autocast is what a GPU run uses; the CPU runs the same code path.
    config = apply_overrides(preset("tiny"), OVERRIDES + ["train.precision=bf16", "train.epochs=2",
                                                          "train.spec_augment=false"])
    model = load_model_file(train(config, noise_manifest, tmp_path / "exp", show_progress=False))
    assert model.metadata["skipped_batches"] == 0
    assert all(torch.isfinite(t).all() for t in model.model.state_dict().values())


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_rerun_finishes(noise_manifest, tmp_path):
    # Ctrl-C signals the whole process group, data-loader workers included; nothing may be lost.
    import os
    import signal
    import subprocess
    import sys
    import time

    exp = tmp_path / "exp"
    command = [sys.executable, "-m", "asr", "train", "--train-data", str(noise_manifest), "--exp-dir", str(exp),
               "--preset", "tiny", "--device", "cpu", "--no-progress", "--set", "train.num_workers=1",
               "--set", "train.max_batch_frames=120", "--set", "train.epochs=200"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 120
    while not (exp / "checkpoints" / "epoch-2.pt").exists():  # well into training, loader workers running
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "state saved to" in stderr and "Traceback" not in stderr, stderr
    stopped = torch.load(exp / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]
    assert stopped > 0
    rerun = subprocess.run(command + ["--set", "train.learning_rate=0.01"], capture_output=True, text=True)
    assert rerun.returncode == 2 and "different configuration" in rerun.stderr  # resuming needs the same config
    finish = subprocess.run(command + ["--stop-after-steps", "3"], capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0 and f"stopped at step {stopped + 3}" in finish.stderr, finish.stderr


def _ignore_term_and_sleep(ready):
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


def test_stopped_training_does_not_wait_forever_for_a_worker():
    import multiprocessing

    from asr.train import stop_loader_workers

    context = multiprocessing.get_context("fork")
    ready = context.Event()
    worker = context.Process(target=_ignore_term_and_sleep, args=(ready,), daemon=True)
    worker.start()
    assert ready.wait(10)
    worker.terminate()  # what the usual shutdown does; the worker ignores it, as data-loader workers do
    worker.join(0.5)
    assert worker.is_alive()
    stop_loader_workers(timeout=0.5)
    assert not worker.is_alive()
