"""Training a BiLSTM-CTC model, on one process or many (torchrun), with checkpoints and exact resume.

Reads top to bottom: `train` sets up (or resumes) and loops over epochs; `train_one_epoch` runs the steps of one
epoch; `train_step` is one optimizer step; `evaluate` measures error rates. Everything that decides what happens
next (step counters, optimizer, scheduler, random generators, and the batch order, which is a function of seed and
epoch) is in the training-state file, so a resumed run ends with the same weights as an uninterrupted one.

Training data is a JSONL manifest or a folder of WebDataset shards (`asr.shards`). Under torchrun (RANK and
WORLD_SIZE set), each process trains on its share of the batches and DistributedDataParallel averages gradients.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from asr.checkpoint import (FORMAT_VERSION, TRAINING_STATE_FORMAT, atomic_save, initialize_from, load_model_file,
                            load_payload, model_payload, save_model)
from asr.config import ExperimentConfig
from asr.data import (Batch, Example, UtteranceDataset, Utterance, collate, frame_budget_batches, read_manifest,
                      write_text_atomically)
from asr.decode import greedy_decode
from asr.errors import CheckpointError, ConfigError, ManifestError, one_line
from asr.features import FeatureStatistics, spec_augment
from asr.metrics import char_error_rate, word_error_rate
from asr.model import BiLstmCtc, count_parameters, fits_ctc
from asr.shards import ShardStream, StreamConfig, read_index
from asr.text import Vocabulary
from asr.transcribe import resolve_device

log = logging.getLogger(__name__)

STATS_UTTERANCES = 2000  # utterances sampled for the normalisation statistics


@dataclass
class Progress:
    """Where training is; saved in every checkpoint."""

    epoch: int = 0  # epochs finished
    step: int = 0  # batches consumed (optimizer steps plus skipped batches), over all epochs
    step_in_epoch: int = 0  # batches of the current epoch already consumed
    skipped_batches: int = 0  # batches whose loss was not finite
    train_seconds: float = 0.0
    epochs_log: list = field(default_factory=list)


@dataclass
class Trainer:
    """The objects one step needs, bundled so the loop functions take few arguments."""

    config: ExperimentConfig
    model: BiLstmCtc  # the bare model (normalisation, saving)
    forward_model: torch.nn.Module  # what computes the loss: the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    augment_generator: torch.Generator
    device: torch.device
    autocast_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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


def ignore_stop_signals(worker_id: int) -> None:
    """Data-loader workers leave SIGINT/SIGTERM to the main process, which stops at a clean point and shuts
    them down; Ctrl-C reaches the whole process group, and a worker dying of it would abort training mid-step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stop_loader_workers(timeout: float = 5.0) -> None:
    """End any data-loader worker still running when training stops. Workers ignore SIGTERM (above), so the
    terminate() of the usual shutdown cannot end one stuck mid-shard, and the process would hang at exit waiting
    for it; after `timeout` seconds it is killed."""
    for child in multiprocessing.active_children():
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()


class TrainingStopped(Exception):
    """Training stopped early with its state saved; rerunning the same command resumes."""

    def __init__(self, state_path: Path, step: int):
        super().__init__(f"training stopped at step {step}; state saved to {state_path}; run the same command "
                         "again to resume")
        self.state_path = state_path
        self.step = step


class TrainingData:
    """The training set as a manifest (random access) or shards (a stream); gives each epoch's batches."""

    def __init__(self, source: str | os.PathLike, config: ExperimentConfig, rank: int, world_size: int):
        self.config, self.rank, self.world_size = config, rank, world_size
        self.vocabulary = Vocabulary()
        path = Path(source)
        if path.is_dir():
            self.index = read_index(path)
            self.utterances = None
            self.hours = self.index["hours"]
            self.count = self.index["utterances"]
            total_frames = self.index["hours"] * 3600 * config.features.frames_per_second
            # Shards hold similar lengths, so batches fill most of their frame budget.
            self.steps_per_epoch = max(1, int(total_frames / (0.85 * config.train.max_batch_frames) / world_size))
        else:
            self.index = None
            self.utterances = usable_utterances(read_manifest(path), config)
            self.hours = sum(u.duration for u in self.utterances) / 3600
            self.count = len(self.utterances)
            self.frame_counts = [config.features.num_frames(int(u.duration * config.features.sample_rate))
                                 for u in self.utterances]
            self.steps_per_epoch = len(self._manifest_batches(0)) // world_size

    def _manifest_batches(self, epoch: int) -> list[list[int]]:
        train = self.config.train
        return frame_budget_batches(self.frame_counts, train.max_batch_frames, epoch, train.seed, train.sortagrad)

    def epoch_batches(self, epoch: int, skip: int) -> Iterable[Batch]:
        """This rank's batches of `epoch`, less the first `skip` (already trained on before a resume)."""
        train = self.config.train
        generator = torch.Generator().manual_seed(train.seed + epoch)  # so the loader draws no global randomness
        if self.index is None:
            mine = self._manifest_batches(epoch)[self.rank::self.world_size]
            dataset = UtteranceDataset(self.utterances, self.vocabulary, self.config.features, augment_seed=train.seed,
                                       speed_perturbation=train.speed_perturbation, pad_seconds=train.pad_seconds)
            dataset.epoch = epoch
            return torch.utils.data.DataLoader(dataset, batch_sampler=mine[skip:], collate_fn=collate,
                                               num_workers=train.num_workers, generator=generator,
                                               pin_memory=torch.cuda.is_available(),
                                               worker_init_fn=ignore_stop_signals)
        stream = ShardStream(self.index, StreamConfig(
            max_batch_frames=train.max_batch_frames, seed=train.seed, epoch=epoch,
            sorted_epoch=train.sortagrad and epoch == 0, rank=self.rank, world_size=self.world_size,
            model=self.config.model, speed_perturbation=train.speed_perturbation, pad_seconds=train.pad_seconds),
            self.vocabulary, self.config.features)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=train.num_workers,
                                             generator=generator, pin_memory=torch.cuda.is_available(),
                                             worker_init_fn=ignore_stop_signals)
        return itertools.islice(loader, skip, None)

    def sample_utterance_features(self) -> Iterable:
        """Feature matrices of up to STATS_UTTERANCES utterances spread over the training set."""
        if self.index is None:
            step = max(1, len(self.utterances) // STATS_UTTERANCES)
            dataset = UtteranceDataset(self.utterances[::step], self.vocabulary, self.config.features)
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=self.config.train.num_workers)
            return (example.features for example in loader if example is not None)
        per_shard = max(1, STATS_UTTERANCES // len(self.index["shards"]))
        stream = ShardStream(self.index, StreamConfig(10 ** 9, 0, 0, sorted_epoch=True), self.vocabulary,
                             self.config.features)
        return _first_of_each_shard(stream, self.index, per_shard)


def _first_of_each_shard(stream: ShardStream, index: dict, per_shard: int):
    import webdataset as wds

    for shard in index["shards"]:
        path = str(Path(index["dir"]) / shard["file"])
        samples = wds.WebDataset([path], shardshuffle=False, nodesplitter=lambda u: u, workersplitter=lambda u: u,
                                 empty_check=False)
        for sample in itertools.islice(samples, per_shard):
            example = stream._example(sample)
            if example is not None:
                yield example.features


def train(config: ExperimentConfig, train_data: str | os.PathLike, exp_dir: str | os.PathLike,
          valid_manifest: str | os.PathLike | None = None, device: str | None = None,
          stop_after_steps: int | None = None, show_progress: bool = True) -> Path:
    """Train (or resume training) into `exp_dir`; returns the path of the final model file, `exp_dir/model.pt`.

    `train_data` is a manifest or a shard folder. `stop_after_steps` ends this run after that many steps, with a
    checkpoint (for time-limited jobs); rerun to go on. Raises `TrainingStopped` when stopped early.
    """
    exp_dir = Path(exp_dir)
    rank, world_size, device = _init_distributed(device)
    vocabulary = Vocabulary()
    if config.model.vocab_size != len(vocabulary):
        raise ConfigError(f"model.vocab_size is {config.model.vocab_size} but the vocabulary has {len(vocabulary)}")
    if rank == 0:
        exp_dir.mkdir(parents=True, exist_ok=True)
        _write_or_check_config(exp_dir / "config.json", config)
    data = TrainingData(train_data, config, rank, world_size)
    valid_utts = read_manifest(valid_manifest) if valid_manifest else []

    torch.manual_seed(config.train.seed)
    model = BiLstmCtc(config.model)
    model.set_normalization(*feature_statistics(data, config, exp_dir / "feature_stats.pt", rank, show_progress))
    model.to(device)
    trainer = _make_trainer(config, model, device, data.steps_per_epoch * config.train.epochs, rank, world_size)
    progress = Progress()
    state_path = exp_dir / "checkpoints" / "last.pt"
    if config.train.init_from and not state_path.exists():
        initialize_from(model, load_model_file(config.train.init_from), config.features, config.train.init_from)
        log.info("initialised from %s", config.train.init_from)
    if rank == 0:
        _remove_interrupted_writes(exp_dir / "checkpoints")
    if state_path.exists():
        progress = _restore(state_path, trainer)
        log.info("resuming from %s: epoch %d, step %d", state_path, progress.epoch, progress.step)
        if rank == 0:
            _truncate_log(exp_dir / "train_log.jsonl", progress.step)
    log.info("model: %s parameters; %d training utterances (%.2f h); device %s; %d process(es)",
             f"{count_parameters(model):,}", data.count, data.hours, device, world_size)

    board = _tensorboard(exp_dir) if rank == 0 else None
    steps_this_run = 0
    try:
        with StopRequest() as stop:
            while progress.epoch < config.train.epochs:
                limit = None if stop_after_steps is None else stop_after_steps - steps_this_run
                batches = data.epoch_batches(progress.epoch, skip=progress.step_in_epoch)
                taken, finished = train_one_epoch(trainer, batches, data.steps_per_epoch, progress, exp_dir, stop,
                                                  limit, show_progress and rank == 0, board)
                steps_this_run += taken
                if not finished:
                    if rank == 0:
                        _save_state(state_path, trainer, progress)
                    raise TrainingStopped(state_path, progress.step)
                record = {"epoch": progress.epoch + 1, "step": progress.step,
                          "skipped_batches": progress.skipped_batches}
                if valid_utts and rank == 0:
                    wer, cer = evaluate(model, valid_utts, config, device)
                    record.update(valid_wer=wer.rate, valid_cer=cer.rate)
                    log.info("epoch %d: valid WER %s, CER %s", progress.epoch + 1, wer, cer)
                    board.add_scalar("valid/wer", wer.rate, progress.step)
                    board.add_scalar("valid/cer", cer.rate, progress.step)
                progress.epoch += 1
                progress.step_in_epoch = 0
                progress.epochs_log.append(record)
                if rank == 0:
                    _append_log(exp_dir, {"type": "epoch", **record})
                    _save_state(exp_dir / "checkpoints" / f"epoch-{progress.epoch}.pt", trainer, progress)
                    _save_state(state_path, trainer, progress)
                    _prune_checkpoints(exp_dir / "checkpoints", config.train.keep_checkpoints)
                    _plot(exp_dir, final=progress.epoch == config.train.epochs)
                _barrier(world_size)
    finally:
        if board is not None:
            board.close()
        if _distributed():
            dist.destroy_process_group()
        stop_loader_workers()

    model_path = exp_dir / "model.pt"
    if rank == 0:
        metadata = {
            "epochs": progress.epoch, "steps": progress.step, "skipped_batches": progress.skipped_batches,
            "train_hours": round(data.hours, 3), "train_utterances": data.count,
            "train_seconds": round(progress.train_seconds, 1), "device": _device_name(device),
            "processes": world_size, "torch": str(torch.__version__), "config": config.to_dict(),
            "epochs_log": progress.epochs_log,
        }
        save_model(model_path, model, config.features, vocabulary, metadata)
        log.info("saved model to %s", model_path)
    return model_path


def train_one_epoch(trainer: Trainer, batches: Iterable[Batch], steps_per_epoch: int, progress: Progress,
                    exp_dir: Path, stop: StopRequest, step_limit: int | None, show_progress: bool,
                    board=None) -> tuple[int, bool]:
    """Run the remaining batches of this epoch. Returns (steps taken, whether the epoch finished).

    With several processes, all agree before each step whether every one still has a batch and none was asked
    to stop, so none waits forever on a gradient exchange the others will not join.
    """
    config = trainer.config.train
    bar = tqdm(total=steps_per_epoch, initial=progress.step_in_epoch, disable=not show_progress,
               desc=f"epoch {progress.epoch + 1}/{config.epochs}", unit="batch", dynamic_ncols=True)
    iterator = iter(batches)
    taken = 0
    window = {"frames": 0, "loss": 0.0, "steps": 0, "wait": 0.0, "start": time.perf_counter()}
    try:
        while True:
            if step_limit is not None and taken >= step_limit:
                return taken, False
            waited = time.perf_counter()
            batch = next(iterator, None)
            window["wait"] += time.perf_counter() - waited
            has_batch, stopping = _agree(batch is not None, stop.requested, trainer)
            if stopping:
                return taken, False
            if not has_batch:
                return taken, True
            started = time.perf_counter()
            loss = train_step(trainer, batch)
            progress.train_seconds += time.perf_counter() - started
            progress.step += 1
            progress.step_in_epoch += 1
            taken += 1
            bar.update(1)
            if loss is None:
                progress.skipped_batches += 1
            else:
                window["loss"] += loss
                window["steps"] += 1
            window["frames"] += int(batch.feature_lengths.sum()) * trainer.world_size
            if progress.step % config.log_every_steps == 0 and window["steps"] and trainer.is_main:
                _log_window(window, trainer, progress, exp_dir, bar, board)
            if config.checkpoint_every_steps and progress.step % config.checkpoint_every_steps == 0 \
                    and trainer.is_main:
                _save_state(exp_dir / "checkpoints" / "last.pt", trainer, progress)
    finally:
        bar.close()


def _log_window(window: dict, trainer: Trainer, progress: Progress, exp_dir: Path, bar, board) -> None:
    elapsed = max(time.perf_counter() - window["start"], 1e-9)
    entry = {"type": "step", "step": progress.step, "epoch": progress.epoch + 1,
             "loss": window["loss"] / window["steps"], "lr": trainer.scheduler.get_last_lr()[0],
             "frames_per_second": window["frames"] / elapsed, "data_wait_fraction": window["wait"] / elapsed,
             "skipped_batches": progress.skipped_batches}
    _append_log(exp_dir, entry)
    bar.set_postfix(loss=f"{entry['loss']:.3f}", lr=f"{entry['lr']:.2e}", fps=f"{entry['frames_per_second']:.0f}",
                    wait=f"{100 * entry['data_wait_fraction']:.0f}%")
    if board is not None:
        for name in ("loss", "lr", "frames_per_second", "data_wait_fraction"):
            board.add_scalar(f"train/{name}", entry[name], progress.step)
    window.update(frames=0, loss=0.0, steps=0, wait=0.0, start=time.perf_counter())


def train_step(trainer: Trainer, batch: Batch) -> float | None:
    """One optimizer step on `batch`; returns its loss, or None when the loss was not finite (no update)."""
    model, config = trainer.model, trainer.config
    trainer.forward_model.train()
    trainer.optimizer.zero_grad(set_to_none=True)
    empty = len(batch) == 0  # every utterance in it was unreadable
    if empty:  # still take part in the step (other processes wait for our gradients), then skip it
        batch = collate([Example(torch.zeros(8, config.model.n_mels), torch.ones(1, dtype=torch.long), -1)])
    feats = batch.features.to(trainer.device, non_blocking=True)
    feat_lens = batch.feature_lengths.to(trainer.device)
    feats = model.normalize(feats, feat_lens)
    if config.train.spec_augment:
        feats = spec_augment(feats, batch.feature_lengths, config.spec_augment, trainer.augment_generator)
    with torch.autocast(trainer.device.type, dtype=trainer.autocast_dtype or torch.float32,
                        enabled=trainer.autocast_dtype is not None):
        log_probs, out_lens = trainer.forward_model(feats, feat_lens, normalized=True)  # (B, T', V) float32
    losses = F.ctc_loss(log_probs.transpose(0, 1), batch.labels.to(trainer.device), out_lens,  # (T', B, V)
                        batch.label_lengths.to(trainer.device), blank=0, reduction="none")
    # Per-utterance loss over its transcript length, so long and short utterances weigh alike.
    loss = (losses / batch.label_lengths.to(trainer.device).clamp_min(1)).mean()
    # Every process must take part in the gradient exchange, so a non-finite loss still runs backward (on a zero)
    # and the step is skipped everywhere together.
    finite = _all_finite(loss, trainer, force_false=empty)
    trainer.scaler.scale(loss if finite else loss.nan_to_num(0.0) * 0.0).backward()
    if not finite:
        log.warning("skipping a batch: %s", "no readable utterance" if empty else f"loss {loss.item()}")
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scheduler.step()  # keep the schedule in step with the batch count
        return None
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
    kept = [u for u in utterances
            if fits_ctc(config.features.num_frames(int(u.duration * config.features.sample_rate)), u.text,
                        config.model)]
    if len(kept) < len(utterances):
        log.warning("skipping %d of %d utterances: too short for their transcripts at %d feature frames per CTC "
                    "frame", len(utterances) - len(kept), len(utterances), config.model.input_frames_per_output)
    if not kept:
        raise ManifestError("no usable training utterances: every one is too short for its transcript")
    return kept


def feature_statistics(data: TrainingData, config: ExperimentConfig, cache: Path,
                       rank: int = 0, show_progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std of log-mel features over a sample of the training set, cached in the experiment.
    Every process computes the same sample, so none has to wait for another to write the cache."""
    if cache.exists():
        payload = torch.load(cache, map_location="cpu", weights_only=True)
        return payload["mean"], payload["std"]
    statistics = FeatureStatistics(config.features.n_mels)
    for features in tqdm(data.sample_utterance_features(), desc="feature statistics", unit="utt",
                         disable=not show_progress or rank != 0 or data.count < 200):
        statistics.add(features)
    mean, std = statistics.mean_std()
    if rank == 0:
        atomic_save({"mean": mean, "std": std}, cache)
    return mean, std


def _init_distributed(device: str | None) -> tuple[int, int, torch.device]:
    """(rank, world size, device): several processes when launched by torchrun (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and "LOCAL_RANK" not in os.environ:  # a plain process (torchrun with one process still
        return 0, 1, resolve_device(device)                  # runs the distributed path: NCCL, DDP)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device not in ("cpu",)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return dist.get_rank(), world_size, torch.device("cuda", local_rank)
    return dist.get_rank(), world_size, torch.device("cpu")


def _agree(has_batch: bool, stop_requested: bool, trainer: Trainer) -> tuple[bool, bool]:
    if not _distributed():
        return has_batch, stop_requested
    flags = torch.tensor([float(has_batch), float(not stop_requested)], device=trainer.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MIN)
    return bool(flags[0]), not bool(flags[1])


def _all_finite(loss: torch.Tensor, trainer: Trainer, force_false: bool = False) -> bool:
    finite = torch.isfinite(loss.detach()).float() * (0.0 if force_false else 1.0)
    if _distributed():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite)


def _distributed() -> bool:
    """Whether this process is one of a torchrun group (even a group of one)."""
    return dist.is_available() and dist.is_initialized()


def _barrier(world_size: int) -> None:
    if _distributed():
        dist.barrier()


def _make_trainer(config: ExperimentConfig, model: BiLstmCtc, device: torch.device, total_steps: int,
                  rank: int = 0, world_size: int = 1) -> Trainer:
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
    generator = torch.Generator().manual_seed(train_config.seed + rank)  # masks differ across processes
    forward_model: torch.nn.Module = model
    if _distributed():
        forward_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return Trainer(config, model, forward_model, optimizer, scheduler, scaler, generator, device, autocast_dtype,
                   rank, world_size)


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
    try:
        trainer.model.load_state_dict(payload["model"]["state_dict"])
    except RuntimeError:
        raise CheckpointError(f"{path}: holds a model of another shape than this experiment's config; it belongs "
                              "to another run: move it away, or use a new --exp-dir") from None
    trainer.optimizer.load_state_dict(payload["optimizer"])
    trainer.scheduler.load_state_dict(payload["scheduler"])
    trainer.scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng"]["torch"])
    if trainer.rank == 0:  # other processes' mask generators restart from their seeds
        trainer.augment_generator.set_state(payload["rng"]["augment"])
    if payload["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    return Progress(**payload["progress"])


def _write_or_check_config(path: Path, config: ExperimentConfig) -> None:
    """Write the run's config, or check that a resumed run has the same one. Only `train.epochs` may change on
    resume: raising it trains a finished run further (the learning rate's cosine decay is stretched over the new
    length, so it rises again and decays to its floor at the new end)."""
    wanted = json.loads(config.to_json())
    if path.exists():
        # Through the dataclasses, so a setting added since the run began reads as its default.
        try:
            saved = json.loads(ExperimentConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))).to_json())
        except (ValueError, TypeError, AttributeError) as error:  # not JSON, not UTF-8, or not a config
            raise ConfigError(f"{path}: damaged ({one_line(error, limit=100)}); delete it to resume with this "
                              "command's settings (the checkpoints are untouched), or use a new --exp-dir") from None
        if _without_epochs(saved) != _without_epochs(wanted):
            raise ConfigError(f"{path.parent} was started with a different configuration (see {path}); use a new "
                              "--exp-dir, or the same preset and --set values to resume")
        if saved == wanted:
            return
        log.info("%s: planned epochs changed from %s to %s", path.parent, saved["train"]["epochs"],
                 wanted["train"]["epochs"])
    write_text_atomically(path, config.to_json() + "\n")


def _remove_interrupted_writes(folder: Path) -> None:
    """Delete the temporary files of checkpoint writes that a killed run left (`atomic_save` names them
    `NAME.*.tmp`); the checkpoint they were to replace is still whole."""
    for stale in folder.glob("*.pt.*.tmp"):
        log.info("removing %s, left by an interrupted checkpoint write", stale)
        stale.unlink(missing_ok=True)


def _truncate_log(path: Path, step: int) -> None:
    """Drop the log rows written after the checkpoint being resumed from (a killed run logs steps and epochs it
    then does again), so every step and epoch appears once."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a row cut off by the kill
        if isinstance(entry, dict) and entry.get("step", 0) <= step:
            kept.append(line)
    write_text_atomically(path, "".join(row + "\n" for row in kept))


def _without_epochs(config: dict) -> dict:
    return {**config, "train": {k: v for k, v in config["train"].items() if k != "epochs"}}


def _append_log(exp_dir: Path, entry: dict) -> None:
    with open(exp_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _prune_checkpoints(folder: Path, keep: int) -> None:
    epochs = sorted(folder.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in epochs[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def _tensorboard(exp_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(exp_dir / "tensorboard"))


PLOT_EVERY_SECONDS = 60  # redrawing takes about half a second; a run of many short epochs must not pay it each one


def _plot(exp_dir: Path, final: bool = False) -> None:
    from asr.plots import plot_training_curves

    png = exp_dir / "training_curves.png"
    if not final and png.exists() and time.time() - png.stat().st_mtime < PLOT_EVERY_SECONDS:
        return
    try:
        plot_training_curves(exp_dir / "train_log.jsonl", png)
    except Exception as error:  # a plot must never stop training
        log.warning("could not draw the training curves: %s", error)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores)"
