"""Choosing the LM weight and word bonus: a grid search of dev-set WER, reusing one pass of the acoustic model.

The acoustic model runs once per utterance; each (weight, bonus) pair only re-runs the beam search, on every core.
The best pair is stored in the model file, with the LM's path, so `asr transcribe` uses both by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from asr.checkpoint import load_model_file, save_model
from asr.evaluate import ModelOutputs, score_outputs
from asr.transcribe import Recognizer

DEFAULT_LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
DEFAULT_WORD_BONUSES = (-1.0, 0.0, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class TuningResult:
    lm_weights: tuple[float, ...]
    word_bonuses: tuple[float, ...]
    wer: np.ndarray  # (weights, bonuses), fraction
    best_lm_weight: float
    best_word_bonus: float
    best_wer: float
    no_lm_wer: float  # the same beam search without the LM, for comparison


def tune_weights(recognizer: Recognizer, outputs: ModelOutputs, lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS,
                 word_bonuses: Sequence[float] = DEFAULT_WORD_BONUSES, show_progress: bool = True) -> TuningResult:
    """WER of every (LM weight, word bonus) pair on `outputs`; ties go to the smaller weight and bonus."""
    decoder = recognizer.lm_decoder
    if decoder is None:
        raise ValueError("tuning needs a Recognizer with a language model")
    wer = np.zeros((len(lm_weights), len(word_bonuses)))
    with tqdm(total=wer.size, desc="tuning", unit="setting", disable=not show_progress) as bar:
        for i, weight in enumerate(lm_weights):
            for j, bonus in enumerate(word_bonuses):
                setting = decoder.with_options(lm_weight=weight, word_bonus=bonus)
                wer[i, j] = score_outputs(recognizer, outputs, decoder.options.beam_size, decoder=setting).wer.rate
                bar.set_postfix(weight=weight, bonus=bonus, wer=f"{100 * wer[i, j]:.2f}")
                bar.update()
    no_lm = decoder.with_options(lm_weight=0.0, word_bonus=0.0, unk_penalty=0.0)
    no_lm_wer = score_outputs(recognizer, outputs, decoder.options.beam_size, decoder=no_lm).wer.rate
    i, j = np.unravel_index(int(np.argmin(wer)), wer.shape)
    return TuningResult(tuple(lm_weights), tuple(word_bonuses), wer, float(lm_weights[i]), float(word_bonuses[j]),
                        float(wer[i, j]), float(no_lm_wer))


def store_weights(model_path: str | os.PathLike, output: str | os.PathLike, lm_path: str | os.PathLike,
                  result: TuningResult, beam_size: int) -> None:
    """Write the model again (to `output`, which may be the same file) with the tuned decoding options."""
    model_file = load_model_file(model_path)
    decoding = dict(model_file.decoding)
    decoding.update(lm=os.path.relpath(Path(lm_path).resolve(), Path(output).resolve().parent),
                    lm_weight=result.best_lm_weight, word_bonus=result.best_word_bonus, lm_beam_size=beam_size,
                    tuned_wer=round(result.best_wer, 5))
    save_model(output, model_file.model, model_file.feature_config, model_file.vocabulary, model_file.metadata,
               decoding)


def plot_grid(result: TuningResult, path: str | os.PathLike, title: str = "") -> None:
    """A heat map of WER over the grid, the best cell marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1.2 * len(result.word_bonuses) + 2, 0.6 * len(result.lm_weights) + 1.5))
    image = axes.imshow(100 * result.wer, cmap="viridis_r", aspect="auto")
    axes.set_xticks(range(len(result.word_bonuses)), [f"{b:g}" for b in result.word_bonuses])
    axes.set_yticks(range(len(result.lm_weights)), [f"{w:g}" for w in result.lm_weights])
    axes.set_xlabel("word bonus")
    axes.set_ylabel("LM weight")
    for i in range(len(result.lm_weights)):
        for j in range(len(result.word_bonuses)):
            best = result.lm_weights[i] == result.best_lm_weight and result.word_bonuses[j] == result.best_word_bonus
            axes.text(j, i, f"{100 * result.wer[i, j]:.1f}", ha="center", va="center", fontsize=8,
                      color="red" if best else "white", fontweight="bold" if best else "normal")
    figure.colorbar(image, label="WER %")
    axes.set_title(title or f"dev WER (no LM: {100 * result.no_lm_wer:.1f}%)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
