"""WER on each dev set through a training run, as a plot and JSON: the model it started from, then every checkpoint
kept (epoch checkpoints, and snapshots of `checkpoints/last.pt` copied into `EXP/snapshots/` while it ran), then the
final model.

    python tools/plot_wer_by_source.py --exp-dir recipes/librispeech/exp/natural \
        --start recipes/librispeech/data/natural/start-bef74fc.pt --output wer_by_source.png \
        --sets real-dev=M/real-dev.jsonl speechocean762-dev=M/speechocean762-dev.jsonl ...

Greedy decoding (no LM), so the curves show what the acoustic model learnt, not the LM. A checkpoint already scored
is read back from the JSON file, so a rerun scores only the new ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.checkpoint import MODEL_FORMAT, TRAINING_STATE_FORMAT, load_model_or_checkpoint, load_payload
from asr.errors import AsrError
from asr.evaluate import evaluate_beams
from asr.transcribe import Recognizer


def training_step(path: Path) -> int:
    """The training step a file holds: a checkpoint's progress, a final model's step count, 0 for a start model."""
    payload = load_payload(path, (MODEL_FORMAT, TRAINING_STATE_FORMAT))
    if payload["format"] == TRAINING_STATE_FORMAT:
        return int(payload["progress"]["step"])
    return int(payload.get("metadata", {}).get("steps", 0)) if path.name == "model.pt" else 0


def checkpoints(exp_dir: Path, start: Path | None) -> list[tuple[int, Path]]:
    """(step, file) in order: the start model (step 0), epoch checkpoints, snapshots of last.pt taken during the
    run (`exp/snapshots/*.pt`), and the final model; one file per step."""
    files = ([start] if start else []) + sorted(exp_dir.glob("checkpoints/epoch-*.pt")) + \
        sorted(exp_dir.glob("snapshots/*.pt")) + ([exp_dir / "model.pt"] if (exp_dir / "model.pt").exists() else [])
    by_step = {}
    for path in files:
        by_step.setdefault(training_step(path), path)
    return sorted(by_step.items())


def plot(scores: dict[str, dict[str, float]], output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, by_step in scores.items():
        steps = sorted(by_step, key=int)
        axis.plot([int(e) for e in steps], [100 * by_step[e] for e in steps], marker="o", label=name)
    axis.set_xlabel("training step (0 = the model training started from)")
    axis.set_ylabel("WER % (greedy, no LM)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", required=True, help="experiment folder with checkpoints/epoch-N.pt")
    parser.add_argument("--start", help="the model file training started from (train.init_from), shown as epoch 0")
    parser.add_argument("--sets", nargs="+", required=True, metavar="NAME=MANIFEST")
    parser.add_argument("--output", required=True, help="PNG to write; the scores go beside it as .json")
    args = parser.parse_args()
    output = Path(args.output)
    scores_path = output.with_suffix(".json")
    scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
    try:
        sets = dict(spec.split("=", 1) for spec in args.sets)
        for step, path in checkpoints(Path(args.exp_dir), Path(args.start) if args.start else None):
            recognizer = None
            for name, manifest in sets.items():
                if str(step) in scores.get(name, {}):
                    continue
                recognizer = recognizer or Recognizer(load_model_or_checkpoint(path), beam_size=1)
                report = evaluate_beams(recognizer, manifest, [1], show_progress=False)[0]
                scores.setdefault(name, {})[str(step)] = round(report.wer.rate, 5)
                print(f"step {step} ({path.name}) {name}: WER {100 * report.wer.rate:.2f}%", flush=True)
                scores_path.write_text(json.dumps(scores, indent=1) + "\n")
    except (AsrError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plot(scores, output, f"WER by dev set through training ({Path(args.exp_dir).name})")
    print(f"{output}, {scores_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
