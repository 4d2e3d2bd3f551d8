"""WER on each dev set of every bundled default model in turn, as `asr transcribe` runs it (its own LM and tuned
decoding), as a plot and JSON: how the shipped model got to where it is, one point per commit that changed it.

    python tools/plot_model_lineage.py --output lineage.png \
        --models synthetic-only=0cc2a80 natural2=880414c natural3=a45850f ... \
        --sets real-dev=M/real-dev.jsonl speechocean762-dev=M/speechocean762-dev.jsonl ...

Each model is read from git (`asr/models/default.pt` and the LM it names, as committed), into --work-dir. A score
already in the JSON file is read back, so a rerun scores only what is new. `--goal NAME=WER` draws a target line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from asr.errors import AsrError
from asr.evaluate import evaluate_beams
from asr.transcribe import load_model

BUNDLED_FILES = ("default-lm.bin.words", "default-lm.bin", "default.pt")  # in the order they are extracted


def model_at(commit: str, work_dir: Path) -> Path:
    """The default model as committed at `commit`, with its LM, extracted once into work_dir/<commit>/."""
    folder = work_dir / commit
    model = folder / "default.pt"
    if model.is_file():
        return model
    folder.mkdir(parents=True, exist_ok=True)
    # The model is written last: a folder with default.pt in it is complete, so an interrupted one is redone rather
    # than scored without its LM.
    for name in BUNDLED_FILES:
        shown = subprocess.run(["git", "show", f"{commit}:asr/models/{name}"], capture_output=True)
        if shown.returncode != 0:
            if name == "default.pt":
                raise AsrError(f"commit {commit} has no asr/models/default.pt: {shown.stderr.decode().strip()}")
            continue  # a model with no LM beside it
        partial = folder / f"{name}.partial"
        partial.write_bytes(shown.stdout)
        partial.rename(folder / name)
    return model


def plot(scores: dict[str, dict[str, float]], models: list[str], goals: dict[str, float], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.4))
    positions = range(len(models))
    for name, by_model in scores.items():
        line = axis.plot(positions, [100 * by_model[m] if m in by_model else float("nan") for m in models],
                         marker="o", label=name)
        if name in goals:
            axis.axhline(goals[name], color=line[0].get_color(), linestyle=":", linewidth=1.2,
                         label=f"{name} goal ({goals[name]:g})")
    axis.set_xticks(list(positions), models, rotation=30, ha="right")
    axis.set_ylabel("WER % (as asr transcribe runs it, with its LM)")
    axis.set_ylim(bottom=0)
    axis.set_title("WER by dev set of each bundled default model")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=110)


def pairs(specs: list[str], option: str) -> dict[str, str]:
    if any("=" not in spec for spec in specs):
        raise ValueError(f"{option} takes NAME=VALUE pairs, got {' '.join(specs)}")
    return dict(spec.split("=", 1) for spec in specs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME=COMMIT",
                        help="the bundled models to score, oldest first, each a name and a commit that holds it")
    parser.add_argument("--sets", nargs="+", required=True, metavar="NAME=MANIFEST")
    parser.add_argument("--goal", nargs="*", default=[], metavar="NAME=WER", help="a target WER % to draw for a set")
    parser.add_argument("--output", required=True, help="PNG to write; the scores go beside it as .json")
    parser.add_argument("--work-dir", default="model-lineage", help="where the models are extracted (default: %(default)s)")
    args = parser.parse_args()
    output = Path(args.output)
    scores_path = output.with_suffix(".json")
    try:
        models, sets = pairs(args.models, "--models"), pairs(args.sets, "--sets")
        goals = {name: float(value) for name, value in pairs(args.goal, "--goal").items()}
        scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
        for name, commit in models.items():
            recognizer = None  # loaded (with its LM) once for all the sets it has not been scored on
            for set_name, manifest in sets.items():
                if name in scores.get(set_name, {}):
                    continue
                recognizer = recognizer or load_model(model_at(commit, Path(args.work_dir)))
                report = evaluate_beams(recognizer, manifest, [recognizer.beam_size], show_progress=False)[0]
                scores.setdefault(set_name, {})[name] = round(report.wer.rate, 5)
                print(f"{name} ({commit}) {set_name}: WER {100 * report.wer.rate:.2f}%", flush=True)
                scores_path.write_text(json.dumps(scores, indent=1) + "\n")
    except (AsrError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plot(scores, list(models), goals, output)
    print(f"{output}, {scores_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
