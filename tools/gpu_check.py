"""The GPU path in one run: prints one line per check, PASS or FAIL with its figure, and a table for BENCHMARKS.md.

    bash tools/gpu_check.sh                       # on a machine with one CUDA GPU (installs carried wheels first)
    python tools/gpu_check.py --device cpu --quick   # the same checks, tiny, on the CPU: the script's own test

Checks, in order (about 5 minutes on one H100):
  gpu-tests   pytest -m gpu: padded batch = each utterance alone, CPU/GPU fp32 and bf16 log-probs, CTC loss and grads
  training    the `medium` preset in bf16 for --steps steps on generated data (noise and tones with random
              transcripts, made here: the machine has no network): loss falls, no batch skipped
  resume      stopped half way and resumed, the run logs the same losses as the straight one
  throughput  training frames/s over a bare nn.LSTM's forward+backward on the same packed batches and precision;
              peak GPU memory
  large-batch the largest batch, in feature frames, one training step of the `large` preset fits in
  torchrun    torchrun --nproc-per-node 1 (NCCL, DistributedDataParallel) logs the same losses as the plain process
  transcribe  asr transcribe --device cuda on a 2-minute file: real-time factor, and the same transcript as the CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.config import apply_overrides, preset  # noqa: E402
from asr.model import BiLstmCtc  # noqa: E402
from asr.throughput import bare_lstm_frames_per_second, recorded_lstm_batches  # noqa: E402
from asr.train import TrainingStopped, train  # noqa: E402

results: list[tuple[str, str, str]] = []


def report(name: str, ok: bool | None, figure: str) -> None:
    """One line: PASS, FAIL, or SKIP (ok None) with the check's figure."""
    status = "SKIP" if ok is None else "PASS" if ok else "FAIL"
    results.append((name, status, figure))
    print(f"{status} {name}: {figure}", flush=True)


def make_data(folder: Path, utterances: int, seed: int = 0) -> Path:
    """Noise with tones, 1.5-6 s each, and random letter transcripts: enough for CTC's loss to fall."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    lines = []
    for i in range(utterances):
        seconds = rng.uniform(1.5, 6.0)
        t = np.arange(int(seconds * 16000)) / 16000
        audio = 0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        soundfile.write(folder / f"u{i}.wav", audio.astype(np.float32), 16000)
        words = [''.join(rng.choice(letters, rng.integers(2, 7))) for _ in range(int(seconds * 1.5))]
        lines.append(json.dumps({"id": f"u{i}", "audio": f"u{i}.wav", "duration": len(t) / 16000,
                                 "text": " ".join(words)}))
    manifest = folder / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def step_rows(exp_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (exp_dir / "train_log.jsonl").read_text().splitlines()]
    return [row for row in rows if row["type"] == "step"]


def losses(exp_dir: Path) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in step_rows(exp_dir)}


def loss_gap(run: dict[int, float], reference: dict[int, float], steps) -> float:
    """The largest relative difference of `run`'s logged losses from `reference`'s at `steps` (inf if one is
    missing or there are none)."""
    return max((abs(run.get(s, np.inf) - reference[s]) / abs(reference[s]) for s in steps), default=np.inf)


def same_losses_tolerance(device: str) -> float:
    # On the CPU two runs of the same steps are bitwise equal; cuDNN and CUDA's CTC backward add in varying order.
    return 1e-6 if device == "cpu" else 2e-2


def run_training(config, manifest: Path, exp_dir: Path, device: str, steps: int) -> None:
    try:
        train(config, manifest, exp_dir, device=device, stop_after_steps=steps, show_progress=False)
    except TrainingStopped:
        pass


def check_training(args, manifest: Path, work: Path, config) -> dict[int, float]:
    """The training, resume and throughput checks; returns the straight run's losses by step."""
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches: list[torch.Tensor] = []
    started = time.perf_counter()
    with recorded_lstm_batches(batches):
        run_training(config, manifest, work / "straight", args.device, args.steps)
    wall = time.perf_counter() - started
    steps = step_rows(work / "straight")
    straight = {row["step"]: row["loss"] for row in steps}
    tenth = max(1, len(steps) // 10)
    first, last = np.mean([r["loss"] for r in steps[:tenth]]), np.mean([r["loss"] for r in steps[-tenth:]])
    skipped = max((r.get("skipped_batches", 0) for r in steps), default=0)
    finite = all(np.isfinite(r["loss"]) for r in steps)
    report("training", bool(last < first and skipped == 0 and finite),
           f"{args.steps} steps of {args.preset} in {args.precision} ({wall:.0f} s); loss {first:.3f} -> {last:.3f}; "
           f"skipped batches {skipped}")

    run_training(config, manifest, work / "resumed", args.device, args.steps // 2)
    run_training(config, manifest, work / "resumed", args.device, args.steps - args.steps // 2)
    gap = loss_gap(losses(work / "resumed"), straight, [step for step in straight if step > args.steps // 2])
    tolerance = same_losses_tolerance(device.type)
    report("resume", bool(gap <= tolerance), f"stopped at step {args.steps // 2}, resumed to {args.steps}: losses "
                                             f"within {gap:.2e} relative of the straight run (tolerance {tolerance:g})")

    fps = float(np.median([r["frames_per_second"] for r in steps[len(steps) // 4:]]))
    wait = float(np.mean([r["data_wait_fraction"] for r in steps[len(steps) // 4:]]))
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]
    measured = batches[len(batches) // 4:][:10]
    bare = bare_lstm_frames_per_second(BiLstmCtc(config.model).lstm, measured, config.model.subsampling, device,
                                       dtype)
    memory = f"; peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" \
        if device.type == "cuda" else ""
    report("throughput", True, f"training {fps:,.0f} frames/s, bare LSTM {bare:,.0f} frames/s: ratio {fps / bare:.2f}; "
                               f"data wait {100 * wait:.1f}%{memory}")
    return straight


def check_large_batch(args) -> None:
    """Doubling, then halving the gap: the most 15 s utterances one `large` training step fits."""
    if not args.device.startswith("cuda"):
        report("large-batch", None, "needs a GPU")
        return
    import torch.nn.functional as F

    device = torch.device(args.device)
    model = BiLstmCtc(preset("large").model).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters())
    frames = 1500

    def fits(utterances: int) -> bool:
        try:
            feats = torch.randn(utterances, frames, 80, device=device)
            lengths = torch.full((utterances,), frames, device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                log_probs, out_lens = model(feats, lengths)
            labels = torch.randint(1, 29, (utterances, 200), device=device)
            loss = F.ctc_loss(log_probs.transpose(0, 1), labels, out_lens, torch.full_like(out_lens, 200))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize(device)
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            torch.cuda.empty_cache()

    low, high = 0, 16
    while fits(high) and high < 65536:
        low, high = high, high * 2
    while high - low > max(1, low // 32):
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    report("large-batch", low > 0, f"{low * frames:,} feature frames ({low} utterances of 15 s) fit one bf16 step of "
                                   f"`large` on {torch.cuda.get_device_name(device)}")


def check_torchrun(args, manifest: Path, work: Path, straight: dict[int, float], overrides: list[str]) -> None:
    steps = min(args.steps, 20)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1", "-m", "asr",
               "train", "--train-data", str(manifest), "--exp-dir", str(work / "torchrun"), "--preset", args.preset,
               "--device", args.device, "--no-progress", "--stop-after-steps", str(steps)]
    for override in overrides:
        command += ["--set", override]
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if run.returncode not in (0, 130) or not (work / "torchrun" / "train_log.jsonl").exists():
        report("torchrun", False, f"exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
        return
    distributed = losses(work / "torchrun")
    backend = "NCCL" if args.device.startswith("cuda") else "gloo"
    common = [s for s in distributed if s in straight and s <= steps]
    gap = loss_gap(distributed, straight, common)
    tolerance = same_losses_tolerance(torch.device(args.device).type)
    report("torchrun", bool(common and gap <= tolerance),
           f"--nproc-per-node 1 ({backend}, DistributedDataParallel), {steps} steps: losses within {gap:.2e} relative "
           f"of the plain process (tolerance {tolerance:g})")


def check_transcribe(args, work: Path) -> None:
    speech, rate = soundfile.read(ROOT / "examples" / "speech.flac", dtype="float32")
    repeats = 2 if args.quick else 24
    long = np.concatenate([np.concatenate([speech, np.zeros(rate // 2, np.float32)])] * repeats)
    path = work / "long.flac"
    soundfile.write(path, long, rate)
    seconds = len(long) / rate
    try:
        import kenlm  # noqa: F401
        lm = []
    except ImportError:  # no kenlm wheel carried: the acoustic model and beam search alone
        lm = ["--no-lm", "--beam-size", "32"]
    texts = {}
    for device in ("cpu", args.device):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "asr", "transcribe", str(path), "--device", device, *lm],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        rtf = (time.perf_counter() - started) / seconds
        texts[device] = run.stdout.strip() if run.returncode == 0 else f"exit {run.returncode}: {run.stderr[-200:]}"
    same = texts["cpu"] == texts[args.device] and texts["cpu"].count("ARRANGED") >= repeats - 1
    report("transcribe", same, f"--device {args.device} on {seconds:.0f} s of audio{' without the LM' if lm else ''}:"
                               f" real-time factor {rtf:.4f} (process start and model load included); transcript "
                               f"{'equals' if same else 'differs from'} the CPU's")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a test of this script on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 200; --quick 12)")
    parser.add_argument("--output", help="also write the results as a markdown table here")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("FAIL cuda: torch sees no CUDA GPU here")
        return 1
    args.steps = args.steps or (12 if args.quick else 200)
    args.preset = "tiny" if args.quick else "medium"
    args.precision = "bf16" if args.device.startswith("cuda") else "fp32"
    overrides = ["train.log_every_steps=1", "train.checkpoint_every_steps=5", "train.epochs=1000",
                 f"train.precision={args.precision}", "train.seed=0"]
    if args.quick:
        overrides += ["train.max_batch_frames=3000", "train.num_workers=0"]
    config = apply_overrides(preset(args.preset), overrides)
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {os.cpu_count()} cores"
    print(f"gpu_check on {machine}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}", flush=True)

    if args.device.startswith("cuda"):
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", str(ROOT / "tests" / "test_gpu.py"),
                                "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=ROOT)
        report("gpu-tests", tests.returncode == 0, tests.stdout.strip().splitlines()[-1] if tests.stdout else
               tests.stderr[-200:])
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        work = Path(folder)
        (work / "data").mkdir()
        manifest = make_data(work / "data", 40 if args.quick else 1200)
        straight = check_training(args, manifest, work, config)
        check_large_batch(args)
        check_torchrun(args, manifest, work, straight, overrides)
        check_transcribe(args, work)
    table = ["| check | result | figure |", "| --- | --- | --- |"]
    table += [f"| {name} | {status} | {figure} |" for name, status, figure in results]
    print("\n" + "\n".join(table))
    if args.output:
        Path(args.output).write_text(f"{machine}\n\n" + "\n".join(table) + "\n")
    return 0 if all(status != "FAIL" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
