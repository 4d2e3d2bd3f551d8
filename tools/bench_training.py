"""Training throughput benchmark: frames per second, the share of time spent waiting for data, and how close the
training step comes to the bare LSTM it is built around.

Runs real training steps (the `asr.train` code path, shards or a manifest) in a throw-away experiment folder and
prints the figures the training loop measures: feature frames (10 ms each) consumed per second, and the fraction of
wall time the loop waited for the next batch. Then a bare `torch.nn.LSTM` of the same size runs forward and backward
on exactly the packed batches training gave its LSTM (same device and precision, `asr.throughput`): training's
frames per second over the bare LSTM's is the share of the architecture's speed that training keeps.

    python tools/bench_training.py --train-data recipes/librispeech/data/manifests/train.jsonl --preset base \\
        --set model.hidden_size=384 --set model.outputs_per_step=2 --steps 40
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from asr.config import apply_overrides, preset
from asr.model import BiLstmCtc
from asr.throughput import bare_lstm_frames_per_second, recorded_lstm_batches
from asr.train import TrainingStopped, train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", required=True, help="shard folder or manifest")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the figures")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    config = apply_overrides(preset(args.preset), args.set + ["train.log_every_steps=5", "train.sortagrad=false"])
    batches: list[torch.Tensor] = []
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as folder, recorded_lstm_batches(batches):
        started = time.perf_counter()
        try:
            train(config, args.train_data, folder, device=args.device, stop_after_steps=args.steps,
                  show_progress=False)
        except TrainingStopped:
            pass
        wall = time.perf_counter() - started
        entries = [json.loads(line) for line in (Path(folder) / "train_log.jsonl").read_text().splitlines()]
    windows = [e for e in entries if e["type"] == "step" and e["step"] > args.warmup_steps]
    if not windows:
        print("too few steps for a measurement; raise --steps", file=sys.stderr)
        return 2
    fps = statistics.median(e["frames_per_second"] for e in windows)
    wait = statistics.mean(e["data_wait_fraction"] for e in windows)
    use_cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device("cuda" if use_cuda else "cpu")
    precision = config.train.precision if config.train.precision != "auto" else ("bf16" if use_cuda else "fp32")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    name = torch.cuda.get_device_name() if use_cuda else f"cpu, {torch.get_num_threads()} threads"
    measured = batches[args.warmup_steps:] or batches
    real = sum(int(lengths.sum()) for lengths in measured)
    padded = sum(len(lengths) * int(lengths.max()) for lengths in measured)
    bare = bare_lstm_frames_per_second(BiLstmCtc(config.model).lstm, measured[:10], config.model.subsampling,
                                       device, dtype)
    print(f"preset {args.preset} {' '.join(args.set)} on {name}, {precision}, {config.train.num_workers} loader "
          f"workers, {args.steps} steps ({wall:.0f} s wall, first {args.warmup_steps} not counted)")
    print(f"throughput:     {fps:,.0f} frames/s = {fps / 100:,.1f} s of audio per second")
    print(f"data wait:      {100 * wait:.1f}% of step time")
    print(f"padding:        {100 * (1 - real / padded):.1f}% of the LSTM's padded batch is padding (packed away)")
    print(f"bare LSTM:      {bare:,.0f} frames/s forward+backward on the same packed batches")
    print(f"training/bare:  {fps / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
