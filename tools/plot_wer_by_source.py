"""WER on each dev set through a training run: the starting model, then every epoch checkpoint, as a plot and JSON.

    python tools/plot_wer_by_source.py --exp-dir recipes/librispeech/exp/natural \
        --start recipes/librispeech/data/natural/start.pt --output wer_by_source.png \
        --sets real-dev=M/real-dev.jsonl speechocean762-dev=M/speechocean762-dev.jsonl ...

Greedy decoding (no LM), so the curves show what the acoustic model learnt, not the LM. A checkpoint already scored
is read back from the JSON file, so a rerun after another epoch scores only the new one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.checkpoint import load_model_or_checkpoint
from asr.errors import AsrError
from asr.evaluate import evaluate_beams
from asr.transcribe import Recognizer


def checkpoints(exp_dir: Path, start: Path | None) -> list[tuple[int, Path]]:
    """(epoch, file) in order: the start model as epoch 0, then checkpoints/epoch-N.pt."""
    found = [(0, start)] if start else []
    epochs = sorted(exp_dir.glob("checkpoints/epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    return found + [(int(p.stem.split("-")[1]), p) for p in epochs]


def plot(scores: dict[str, dict[str, float]], output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, by_epoch in scores.items():
        epochs = sorted(by_epoch, key=int)
        axis.plot([int(e) for e in epochs], [100 * by_epoch[e] for e in epochs], marker="o", label=name)
    axis.set_xlabel("epoch (0 = the model training started from)")
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
        for epoch, path in checkpoints(Path(args.exp_dir), Path(args.start) if args.start else None):
            recognizer = None
            for name, manifest in sets.items():
                if str(epoch) in scores.get(name, {}):
                    continue
                recognizer = recognizer or Recognizer(load_model_or_checkpoint(path), beam_size=1)
                report = evaluate_beams(recognizer, manifest, [1], show_progress=False)[0]
                scores.setdefault(name, {})[str(epoch)] = round(report.wer.rate, 5)
                print(f"epoch {epoch} {name}: WER {100 * report.wer.rate:.2f}%", flush=True)
                scores_path.write_text(json.dumps(scores, indent=1) + "\n")
    except (AsrError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plot(scores, output, f"WER by dev set through training ({Path(args.exp_dir).name})")
    print(f"{output}, {scores_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
