"""Training curves as a PNG in the experiment folder: loss and learning rate by step, error rates by epoch."""

from __future__ import annotations

import json
from pathlib import Path


def plot_training_curves(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    steps, epochs = {}, {}
    for line in Path(log_path).read_text().splitlines():
        entry = json.loads(line)
        # A resumed run may log a step again; the last record of each wins.
        (steps if entry.get("type") == "step" else epochs)[entry["step"]] = entry
    figure, (loss_axis, error_axis) = plt.subplots(1, 2, figsize=(11, 4))
    if steps:
        ordered = [steps[k] for k in sorted(steps)]
        loss_axis.plot([e["step"] for e in ordered], [e["loss"] for e in ordered], label="train CTC loss")
        loss_axis.set_xlabel("step")
        loss_axis.set_ylabel("loss per character")
        loss_axis.set_yscale("log")
        rate_axis = loss_axis.twinx()
        rate_axis.plot([e["step"] for e in ordered], [e["lr"] for e in ordered], color="grey", alpha=0.5)
        rate_axis.set_ylabel("learning rate", color="grey")
        loss_axis.legend(loc="upper right")
    ordered = [epochs[k] for k in sorted(epochs) if "valid_wer" in epochs[k]]
    if ordered:
        error_axis.plot([e["epoch"] for e in ordered], [100 * e["valid_wer"] for e in ordered], marker="o",
                        label="valid WER")
        error_axis.plot([e["epoch"] for e in ordered], [100 * e["valid_cer"] for e in ordered], marker="o",
                        label="valid CER")
        error_axis.set_xlabel("epoch")
        error_axis.set_ylabel("%")
        error_axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
