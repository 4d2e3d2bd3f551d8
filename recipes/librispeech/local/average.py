"""Stage 5: average the weights of the last N epoch checkpoints into one model file."""

import argparse
import sys
from pathlib import Path

from asr.checkpoint import average_checkpoints, load_model_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp-dir", required=True)
    parser.add_argument("--last", type=int, default=3, help="how many of the last epochs (default: 3)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    exp = Path(args.exp_dir)
    epochs = sorted(exp.glob("checkpoints/epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[-args.last:]
    final = load_model_file(exp / "model.pt")  # training metadata (hours, steps, hardware) comes from here
    average_checkpoints(epochs, args.output, metadata=final.metadata)
    print(f"averaged {', '.join(p.name for p in epochs)} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
