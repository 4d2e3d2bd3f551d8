"""Stage 5: average the weights of the last N epoch checkpoints into one model file."""

import argparse
import json
import os
import sys
from pathlib import Path

from asr.checkpoint import TRAINING_STATE_FORMAT, average_checkpoints, load_model_file, load_payload
from asr.cli import EXIT_BAD_INPUT
from asr.errors import AsrError
from asr.shards import read_index


def stopped_run_metadata(exp: Path, train_data: str | None) -> dict:
    progress = load_payload(exp / "checkpoints" / "last.pt", TRAINING_STATE_FORMAT)["progress"]
    hours = round(read_index(train_data)["hours"], 3) if train_data and Path(train_data).is_dir() else "?"
    config = json.loads((exp / "config.json").read_text())
    return {"epochs": progress["epoch"], "step_in_epoch": progress["step_in_epoch"], "steps": progress["step"],
            "train_hours": hours, "train_seconds": progress["train_seconds"],
            "epochs_log": progress["epochs_log"], "config": config, "device": f"cpu ({os.cpu_count()} cores)",
            "stopped_early": f"after {progress['epoch']} of {config['train']['epochs']} planned epochs and "
                             f"{progress['step_in_epoch']} steps into the next"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp-dir", required=True)
    parser.add_argument("--last", type=int, default=3,
                        help="how many of the last epochs (default: 3; 0: only the --with-checkpoints files, e.g. "
                             "two runs' models interpolated)")
    parser.add_argument("--with-checkpoints", nargs="+", default=[], metavar="FILE",
                        help="more checkpoints or model files of the same model shape to average in first, e.g. the "
                             "last epoch of the run this one was started from (train.init_from)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--train-data", help="the shard folder trained on, for the hours of a run stopped early")
    args = parser.parse_args()
    exp = Path(args.exp_dir)
    epochs = sorted(exp.glob("checkpoints/epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    if (exp / "model.pt").exists():  # training metadata (hours, steps, hardware) comes from the final model
        metadata = load_model_file(exp / "model.pt").metadata
    else:  # training was stopped before its last epoch: say so, with what the last checkpoint knows
        metadata = stopped_run_metadata(exp, args.train_data)
        if metadata["step_in_epoch"]:  # stopped mid-epoch: the newest weights are in last.pt
            epochs.append(exp / "checkpoints" / "last.pt")
    last = epochs[-args.last:] if args.last > 0 else []  # (epochs[-0:] would be all of them)
    epochs = [Path(p) for p in args.with_checkpoints] + last  # metadata and stats: this run's
    try:
        average_checkpoints(epochs, args.output, metadata=metadata)
    except AsrError as error:  # a wrong path or a checkpoint of another shape: one line, not a traceback
        print(f"average.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"averaged {', '.join(map(str, epochs))} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
