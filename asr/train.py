"""Training a BiLSTM-CTC model from a manifest, with checkpoints and exact resume.

Reads top to bottom: `train` sets up (or resumes) and loops over epochs; `train_one_epoch` runs the steps of one
epoch; `train_step` is one optimizer step; `evaluate` measures error rates. Everything that decides what happens
next (step counters, optimizer, scheduler, random generators, and the batch order, which is a function of seed and
epoch) is in the training-state file, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from asr.checkpoint import (TRAINING_STATE_FORMAT, FORMAT_VERSION, atomic_save, load_payload, model_payload,
                            save_model)
from asr.config import ExperimentConfig
from asr.data import Batch, UtteranceDataset, Utterance, collate, frame_budget_batches, read_manifest
from asr.decode import greedy_decode
from asr.errors import ConfigError, ManifestError
from asr.features import FeatureStatistics, spec_augment
from asr.metrics import char_error_rate, word_error_rate
from asr.model import BiLstmCtc, count_parameters, subsampled_lengths
from asr.text import Vocabulary
from asr.transcribe import resolve_device

log = logging.getLogger(__name__)

STATS_UTTERANCES = 2000  # utterances sampled for the normalisation statistics


@dataclass
class Progress:
    """Where training is; saved in every checkpoint."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken (and batches skipped), over all epochs
    step_in_epoch: int = 0  # batches of the current epoch already consumed
    skipped_batches: int = 0  # batches whose loss was not finite
    train_seconds: float = 0.0
    epochs_log: list = field(default_factory=list)


@dataclass
class Trainer:
    """The objects one step needs, bundled so the loop functions take few arguments."""

    config: ExperimentConfig
    model: BiLstmCtc
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    augment_generator: torch.Generator
    device: torch.device
    autocast_dtype: torch.dtype | None


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is written at a clean point.
    A second signal interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested: finishing this step and saving a checkpoint (signal again to abort)")

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class TrainingStopped(Exception):
    """Training stopped early with its state saved; rerunning the same command resumes."""

    def __init__(self, state_path: Path, step: int):
        super().__init__(f"training stopped at step {step}; state saved to {state_path}; run the same command "
                         "again to resume")
        self.state_path = state_path
        self.step = step


def train(config: ExperimentConfig, train_manifest: str | os.PathLike, exp_dir: str | os.PathLike,
          valid_manifest: str | os.PathLike | None = None, device: str | None = None,
          stop_after_steps: int | None = None, show_progress: bool = True) -> Path:
    """Train (or resume training) into `exp_dir`; returns the path of the final model file, `exp_dir/model.pt`.

    `stop_after_steps` ends this run after that many steps, with a checkpoint (for time-limited jobs); rerun to go
    on. Raises `TrainingStopped` when stopped early, by that limit or a signal.
    """
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    vocabulary = Vocabulary()
    if config.model.vocab_size != len(vocabulary):
        raise ConfigError(f"model.vocab_size is {config.model.vocab_size} but the vocabulary has {len(vocabulary)}")
    _write_or_check_config(exp_dir / "config.json", config)
    device = resolve_device(device)
    train_utts = usable_utterances(read_manifest(train_manifest), config)
    valid_utts = read_manifest(valid_manifest) if valid_manifest else []

    torch.manual_seed(config.train.seed)
    model = BiLstmCtc(config.model)
    mean, std = feature_statistics(train_utts, config, exp_dir / "feature_stats.pt")
    model.set_normalization(mean, std)
    model.to(device)
    frame_counts = [config.features.num_frames(int(u.duration * config.features.sample_rate)) for u in train_utts]
    steps_per_epoch = len(frame_budget_batches(frame_counts, config.train.max_batch_frames, 0, config.train.seed))
    trainer = _make_trainer(config, model, device, total_steps=steps_per_epoch * config.train.epochs)
    progress = Progress()
    state_path = exp_dir / "checkpoints" / "last.pt"
    if state_path.exists():
        progress = _restore(state_path, trainer)
        log.info("resuming from %s: epoch %d, step %d", state_path, progress.epoch, progress.step)
    log.info("model: %s parameters; %d training utterances (%.2f h); device %s",
             f"{count_parameters(model):,}", len(train_utts), sum(u.duration for u in train_utts) / 3600, device)

    dataset = UtteranceDataset(train_utts, vocabulary, config.features)
    steps_this_run = 0
    with StopRequest() as stop:
        while progress.epoch < config.train.epochs:
            batches = frame_budget_batches(frame_counts, config.train.max_batch_frames, progress.epoch,
                                           config.train.seed, config.train.sortagrad)
            limit = None if stop_after_steps is None else stop_after_steps - steps_this_run
            taken, finished = train_one_epoch(trainer, dataset, batches, progress, exp_dir, stop, limit,
                                              show_progress)
            steps_this_run += taken
            if not finished:
                _save_state(state_path, trainer, progress)
                raise TrainingStopped(state_path, progress.step)
            record = {"epoch": progress.epoch + 1, "step": progress.step, "skipped_batches": progress.skipped_batches}
            if valid_utts:
                wer, cer = evaluate(model, valid_utts, config, device)
                record.update(valid_wer=wer.rate, valid_cer=cer.rate)
                log.info("epoch %d: valid WER %s, CER %s", progress.epoch + 1, wer, cer)
            progress.epoch += 1
            progress.step_in_epoch = 0
            progress.epochs_log.append(record)
            _append_log(exp_dir, {"type": "epoch", **record})
            _save_state(exp_dir / "checkpoints" / f"epoch-{progress.epoch}.pt", trainer, progress)
            _save_state(state_path, trainer, progress)
            _prune_checkpoints(exp_dir / "checkpoints", config.train.keep_checkpoints)
            _plot(exp_dir)

    metadata = {
        "epochs": progress.epoch, "steps": progress.step, "skipped_batches": progress.skipped_batches,
        "train_hours": round(sum(u.duration for u in train_utts) / 3600, 3), "train_utterances": len(train_utts),
        "train_seconds": round(progress.train_seconds, 1), "device": _device_name(device),
        "torch": str(torch.__version__), "config": config.to_dict(), "epochs_log": progress.epochs_log,
    }
    model_path = exp_dir / "model.pt"
    save_model(model_path, model, config.features, vocabulary, metadata)
    log.info("saved model to %s", model_path)
    return model_path


def train_one_epoch(trainer: Trainer, dataset: UtteranceDataset, batches: list[list[int]], progress: Progress,
                    exp_dir: Path, stop: StopRequest, step_limit: int | None,
                    show_progress: bool) -> tuple[int, bool]:
    """Run the remaining batches of this epoch. Returns (steps taken, whether the epoch finished)."""
    config = trainer.config.train
    remaining = batches[progress.step_in_epoch:]
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=remaining, collate_fn=collate, num_workers=config.num_workers,
        pin_memory=trainer.device.type == "cuda",
        # Its own generator, so creating the loader draws nothing from the global random state.
        generator=torch.Generator().manual_seed(config.seed + progress.epoch),
    )
    bar = tqdm(loader, total=len(batches), initial=progress.step_in_epoch, disable=not show_progress,
               desc=f"epoch {progress.epoch + 1}/{config.epochs}", unit="batch", dynamic_ncols=True)
    taken = 0
    window_frames, window_start, window_loss, window_steps = 0, time.perf_counter(), 0.0, 0
    for batch in bar:
        if step_limit is not None and taken >= step_limit:
            return taken, False
        started = time.perf_counter()
        loss = train_step(trainer, batch)
        progress.train_seconds += time.perf_counter() - started
        progress.step += 1
        progress.step_in_epoch += 1
        taken += 1
        if loss is None:
            progress.skipped_batches += 1
        else:
            window_loss, window_steps = window_loss + loss, window_steps + 1
        window_frames += int(batch.feature_lengths.sum())
        if progress.step % config.log_every_steps == 0 and window_steps:
            elapsed = time.perf_counter() - window_start
            entry = {"type": "step", "step": progress.step, "epoch": progress.epoch + 1,
                     "loss": window_loss / window_steps, "lr": trainer.scheduler.get_last_lr()[0],
                     "frames_per_second": window_frames / max(elapsed, 1e-9),
                     "skipped_batches": progress.skipped_batches}
            _append_log(exp_dir, entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}", lr=f"{entry['lr']:.2e}",
                            fps=f"{entry['frames_per_second']:.0f}")
            window_frames, window_start, window_loss, window_steps = 0, time.perf_counter(), 0.0, 0
        if config.checkpoint_every_steps and progress.step % config.checkpoint_every_steps == 0:
            _save_state(exp_dir / "checkpoints" / "last.pt", trainer, progress)
        if stop.requested:
            return taken, False
    return taken, True


def train_step(trainer: Trainer, batch: Batch) -> float | None:
    """One optimizer step on `batch`; returns its loss, or None when the loss was not finite (no update)."""
    model, config = trainer.model, trainer.config
    model.train()
    trainer.optimizer.zero_grad(set_to_none=True)
    if len(batch) == 0:
        return None
    feats = batch.features.to(trainer.device, non_blocking=True)
    feat_lens = batch.feature_lengths.to(trainer.device)
    feats = model.normalize(feats, feat_lens)
    if config.train.spec_augment:
        feats = spec_augment(feats, batch.feature_lengths, config.spec_augment, trainer.augment_generator)
    with torch.autocast(trainer.device.type, dtype=trainer.autocast_dtype or torch.float32,
                        enabled=trainer.autocast_dtype is not None):
        log_probs, out_lens = model(feats, feat_lens, normalized=True)  # (B, T', V) float32
    losses = F.ctc_loss(log_probs.transpose(0, 1), batch.labels.to(trainer.device), out_lens,  # (T', B, V)
                        batch.label_lengths.to(trainer.device), blank=0, reduction="none")
    # Per-utterance loss over its transcript length, so long and short utterances weigh alike.
    loss = (losses / batch.label_lengths.to(trainer.device).clamp_min(1)).mean()
    if not torch.isfinite(loss):
        log.warning("skipping a batch with non-finite loss (%s)", loss.item())
        trainer.scheduler.step()  # keep the schedule in step with the batch count
        return None
    trainer.scaler.scale(loss).backward()
    trainer.scaler.unscale_(trainer.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
    if not torch.isfinite(grad_norm):
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scaler.update()
        trainer.scheduler.step()
        return None
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.scheduler.step()
    return loss.item()


@torch.inference_mode()
def evaluate(model: BiLstmCtc, utterances: Sequence[Utterance], config: ExperimentConfig, device: torch.device):
    """Greedy-decoding WER and CER of `model` on `utterances` -> (word ErrorRate, char ErrorRate)."""
    vocabulary = Vocabulary()
    dataset = UtteranceDataset(utterances, vocabulary, config.features)
    frame_counts = [config.features.num_frames(int(u.duration * config.features.sample_rate)) for u in utterances]
    batches = frame_budget_batches(frame_counts, config.train.max_batch_frames, 0, 0, sorted_first_epoch=True)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                                         num_workers=min(config.train.num_workers, 2))
    was_training = model.training
    model.eval()
    references, hypotheses = [], []
    for batch in loader:
        if not len(batch):
            continue
        log_probs, out_lens = model(batch.features.to(device), batch.feature_lengths.to(device))
        for row, length, index in zip(log_probs, out_lens.tolist(), batch.indices):
            references.append(utterances[index].text)
            hypotheses.append(vocabulary.decode(greedy_decode(row[:length]).tokens))
    model.train(was_training)
    return word_error_rate(references, hypotheses), char_error_rate(references, hypotheses)


def usable_utterances(utterances: Sequence[Utterance], config: ExperimentConfig) -> list[Utterance]:
    """Drop utterances too short for their transcript (CTC needs a frame per label, plus one between repeats)."""
    kept = []
    for utterance in utterances:
        frames = config.features.num_frames(int(utterance.duration * config.features.sample_rate))
        needed = len(utterance.text) + sum(a == b for a, b in zip(utterance.text, utterance.text[1:]))
        if int(subsampled_lengths(torch.tensor(frames), config.model.subsampling)) >= max(needed, 1):
            kept.append(utterance)
    if len(kept) < len(utterances):
        log.warning("skipping %d of %d utterances: too short for their transcripts at subsampling %d",
                    len(utterances) - len(kept), len(utterances), config.model.subsampling)
    if not kept:
        raise ManifestError("no usable training utterances: every one is too short for its transcript")
    return kept


def feature_statistics(utterances: Sequence[Utterance], config: ExperimentConfig,
                       cache: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std of log-mel features over (a sample of) the training set, cached in the experiment."""
    if cache.exists():
        payload = torch.load(cache, map_location="cpu", weights_only=True)
        return payload["mean"], payload["std"]
    step = max(1, len(utterances) // STATS_UTTERANCES)
    dataset = UtteranceDataset(utterances[::step], Vocabulary(), config.features)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=config.train.num_workers)
    statistics = FeatureStatistics(config.features.n_mels)
    for example in tqdm(loader, desc="feature statistics", unit="utt", disable=len(dataset) < 200):
        if example is not None:
            statistics.add(example.features)
    mean, std = statistics.mean_std()
    atomic_save({"mean": mean, "std": std}, cache)
    return mean, std


def _make_trainer(config: ExperimentConfig, model: BiLstmCtc, device: torch.device, total_steps: int) -> Trainer:
    train_config = config.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.learning_rate,
                                  weight_decay=train_config.weight_decay)

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to final_lr_fraction
        if step < train_config.warmup_steps:
            return (step + 1) / train_config.warmup_steps
        progress = min(1.0, (step - train_config.warmup_steps) / max(1, total_steps - train_config.warmup_steps))
        floor = train_config.final_lr_fraction
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    precision = train_config.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    generator = torch.Generator().manual_seed(train_config.seed)
    return Trainer(config, model, optimizer, scheduler, scaler, generator, device, autocast_dtype)


def _save_state(path: Path, trainer: Trainer, progress: Progress) -> None:
    payload = {
        "format": TRAINING_STATE_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_payload(trainer.model, trainer.config.features, Vocabulary()),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "progress": {"epoch": progress.epoch, "step": progress.step, "step_in_epoch": progress.step_in_epoch,
                     "skipped_batches": progress.skipped_batches, "train_seconds": progress.train_seconds,
                     "epochs_log": progress.epochs_log},
        "rng": {"torch": torch.get_rng_state(), "augment": trainer.augment_generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }
    atomic_save(payload, path)


def _restore(path: Path, trainer: Trainer) -> Progress:
    payload = load_payload(path, TRAINING_STATE_FORMAT)
    trainer.model.load_state_dict(payload["model"]["state_dict"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    trainer.scheduler.load_state_dict(payload["scheduler"])
    trainer.scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng"]["torch"])
    trainer.augment_generator.set_state(payload["rng"]["augment"])
    if payload["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    return Progress(**payload["progress"])


def _write_or_check_config(path: Path, config: ExperimentConfig) -> None:
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != json.loads(config.to_json()):
            raise ConfigError(f"{path.parent} was started with a different configuration (see {path}); use a new "
                              "--exp-dir, or the same preset and --set values to resume")
        return
    path.write_text(config.to_json() + "\n")


def _append_log(exp_dir: Path, entry: dict) -> None:
    with open(exp_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _prune_checkpoints(folder: Path, keep: int) -> None:
    epochs = sorted(folder.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in epochs[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def _plot(exp_dir: Path) -> None:
    from asr.plots import plot_training_curves

    with contextlib.suppress(Exception):  # a plot must never stop training
        plot_training_curves(exp_dir / "train_log.jsonl", exp_dir / "training_curves.png")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores)"
