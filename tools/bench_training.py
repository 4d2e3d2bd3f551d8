"""Training throughput benchmark: frames per second and the share of time spent waiting for data.

Runs real training steps (the `asr.train` code path, shards or a manifest) in a throw-away experiment folder and
prints the figures the training loop measures: feature frames (10 ms each) consumed per second, and the fraction
of wall time the loop waited for the next batch.

    python tools/bench_training.py --train-data data/shards/train --preset small --steps 60
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
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as folder:
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
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"cpu, {torch.get_num_threads()} threads"
    print(f"preset {args.preset} {' '.join(args.set)} on {device}, {config.train.num_workers} loader workers, "
          f"{args.steps} steps ({wall:.0f} s wall, first {args.warmup_steps} not counted)")
    print(f"throughput: {fps:,.0f} frames/s = {fps / 100:,.1f} s of audio per second")
    print(f"data wait:  {100 * wait:.1f}% of step time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
