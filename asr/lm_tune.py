"""Choosing the LM weight, word bonus, unknown-word penalty and blank penalty: a grid search of dev-set WER, reusing
one pass of the acoustic model.

The acoustic model runs once per utterance; each setting only re-runs the beam search, on every core. The best
setting is stored in the model file, with the LM's path, so `asr transcribe` uses it by default. With several beam
sizes, the best setting is then decoded at each, and the smallest beam within 0.1 WER points of the best is stored:
the default beam is where more beam stops paying on dev, not a habit. With numbers of voted passes to try
(`asr.voting`), passes and beam are chosen together: the fastest pair within 0.1 WER points of the best.

The unknown-word penalty is searched with the other two because they trade against each other: the higher the LM
weight, the more a rare known word costs, and a fixed penalty then makes misspelt "unknown" words the cheaper
choice (at weight 0.8 and penalty -10 our default model's dev WER was 26%, at penalty -20 it was 14%). The blank
penalty is searched with them because it trades against the word bonus: both make the search emit more.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from asr.checkpoint import update_decoding
from asr.evaluate import ModelOutputs, outputs_by_delay, score_outputs
from asr.transcribe import Recognizer

DEFAULT_LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
DEFAULT_WORD_BONUSES = (-1.0, 0.0, 1.0, 2.0, 3.0)
# -10 lets a clear unknown word through; -20 is more than any known word costs at the usual weights, so the
# search then spells almost only the LM's words.
DEFAULT_UNK_PENALTIES = (-10.0, -20.0)
DEFAULT_BLANK_PENALTIES = (0.0, 1.0)


@dataclass(frozen=True)
class TuningResult:
    lm_weights: tuple[float, ...]
    word_bonuses: tuple[float, ...]
    unk_penalties: tuple[float, ...]
    blank_penalties: tuple[float, ...]
    wer: np.ndarray  # (blank penalties, unknown-word penalties, weights, bonuses), fraction
    best_lm_weight: float
    best_word_bonus: float
    best_unk_penalty: float
    best_blank_penalty: float
    best_wer: float
    no_lm_wer: float  # the same beam search without the LM, for comparison


def best_cell(wer: np.ndarray) -> tuple[int, ...]:
    """Index of the lowest WER in the grid; the first one on a tie, so the first penalties and smaller values win."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmin(wer)), wer.shape))


def tune_weights(recognizer: Recognizer, outputs: ModelOutputs, lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS,
                 word_bonuses: Sequence[float] = DEFAULT_WORD_BONUSES,
                 unk_penalties: Sequence[float] = DEFAULT_UNK_PENALTIES,
                 blank_penalties: Sequence[float] = DEFAULT_BLANK_PENALTIES,
                 show_progress: bool = True) -> TuningResult:
    """WER of every (blank penalty, unknown-word penalty, LM weight, word bonus) setting on `outputs`. Ties go to
    the first penalties given, then the smaller weight and bonus."""
    decoder = recognizer.lm_decoder
    if decoder is None:
        raise ValueError("tuning needs a Recognizer with a language model")
    # DecoderOptions refuses a bad penalty: find out now, not after minutes of grid.
    for unk_penalty, blank_penalty in itertools.product(unk_penalties, blank_penalties):
        decoder.with_options(unk_penalty=unk_penalty, blank_penalty=blank_penalty)
    wer = np.zeros((len(blank_penalties), len(unk_penalties), len(lm_weights), len(word_bonuses)))
    with tqdm(total=wer.size, desc="tuning", unit="setting", disable=not show_progress) as bar:
        for cell in np.ndindex(wer.shape):
            b, k, i, j = cell
            setting = decoder.with_options(lm_weight=lm_weights[i], word_bonus=word_bonuses[j],
                                           unk_penalty=unk_penalties[k], blank_penalty=blank_penalties[b])
            wer[cell] = score_outputs(recognizer, outputs, decoder.options.beam_size, decoder=setting).wer.rate
            bar.set_postfix(blank=blank_penalties[b], unk=unk_penalties[k], weight=lm_weights[i],
                            bonus=word_bonuses[j], wer=f"{100 * wer[cell]:.2f}")
            bar.update()
    no_lm = decoder.with_options(lm_weight=0.0, word_bonus=0.0, unk_penalty=0.0, blank_penalty=0.0)
    no_lm_wer = score_outputs(recognizer, outputs, decoder.options.beam_size, decoder=no_lm).wer.rate
    b, k, i, j = best_cell(wer)
    return TuningResult(tuple(lm_weights), tuple(word_bonuses), tuple(unk_penalties), tuple(blank_penalties), wer,
                        float(lm_weights[i]), float(word_bonuses[j]), float(unk_penalties[k]),
                        float(blank_penalties[b]), float(wer[b, k, i, j]), float(no_lm_wer))


def store_weights(model_path: str | os.PathLike, output: str | os.PathLike, lm_path: str | os.PathLike,
                  result: TuningResult, beam_size: int, passes: int | None = None) -> None:
    """Write the model again (to `output`, which may be the same file) with the tuned decoding options (and the
    number of voted passes, when given; otherwise the stored one stays)."""
    changes = dict(
        lm=os.path.relpath(Path(lm_path).resolve(), Path(output).resolve().parent), lm_weight=result.best_lm_weight,
        word_bonus=result.best_word_bonus, unk_penalty=result.best_unk_penalty,
        blank_penalty=result.best_blank_penalty, lm_beam_size=beam_size, tuned_wer=round(result.best_wer, 5))
    if passes is not None:
        changes["passes"] = passes
    update_decoding(model_path, output, changes)


@dataclass(frozen=True)
class BeamSweep:
    beams: tuple[int, ...]
    wer: tuple[float, ...]  # fraction
    seconds: tuple[float, ...]  # decoding time of the whole manifest
    chosen: int


BEAM_TOLERANCE = 0.001  # a wider beam must gain more than 0.1 WER points on dev to be worth its time


def tuned_setting(recognizer: Recognizer, result: TuningResult):
    """The recognizer's LM decoder with the best setting of `result`."""
    return recognizer.lm_decoder.with_options(
        lm_weight=result.best_lm_weight, word_bonus=result.best_word_bonus, unk_penalty=result.best_unk_penalty,
        blank_penalty=result.best_blank_penalty)


def sweep_beams(recognizer: Recognizer, outputs: ModelOutputs, result: TuningResult, beams: Sequence[int],
                show_progress: bool = True) -> BeamSweep:
    """WER and decoding time of the tuned setting at each beam; the chosen beam is the smallest whose WER is within
    `BEAM_TOLERANCE` of the best: where more beam stops paying."""
    setting = tuned_setting(recognizer, result)
    wers, seconds = [], []
    for beam in tqdm(sorted(beams), desc="beams", unit="beam", disable=not show_progress):
        started = time.perf_counter()
        wers.append(score_outputs(recognizer, outputs, beam, decoder=setting.with_options(beam_size=beam)).wer.rate)
        seconds.append(time.perf_counter() - started)
    chosen = next(beam for beam, wer in zip(sorted(beams), wers) if wer <= min(wers) + BEAM_TOLERANCE)
    return BeamSweep(tuple(sorted(beams)), tuple(wers), tuple(seconds), chosen)


@dataclass(frozen=True)
class PassesSweep:
    counts: tuple[int, ...]
    beams: tuple[int, ...]
    wer: np.ndarray  # (counts, beams), fraction
    seconds: np.ndarray  # (counts, beams): the acoustic model's mean time per pass times the count, plus the search
    chosen: tuple[int, int]  # (count, beam)


def sweep_passes(recognizer: Recognizer, manifest: str | os.PathLike, result: TuningResult, beams: Sequence[int],
                 counts: Sequence[int], show_progress: bool = True) -> PassesSweep:
    """WER and time of the tuned setting with each number of voted passes at each beam. Voting evens out some of
    what a wider beam fixes, so the two are chosen together: the fastest (count, beam) whose WER is within
    `BEAM_TOLERANCE` of the best. The acoustic model runs once per distinct delay, for all counts together."""
    counts, beams = sorted(set(counts)), sorted(set(beams))
    delays_of = {count: recognizer.pass_delays(count) for count in counts}
    delays = sorted({delay for each in delays_of.values() for delay in each})
    started = time.perf_counter()
    by_delay = dict(zip(delays, outputs_by_delay(recognizer, manifest, delays, show_progress=show_progress)))
    model_seconds_per_pass = (time.perf_counter() - started) / len(delays)
    setting = tuned_setting(recognizer, result)
    wer, seconds = np.zeros((len(counts), len(beams))), np.zeros((len(counts), len(beams)))
    with tqdm(total=wer.size, desc="passes x beams", unit="setting", disable=not show_progress) as bar:
        for (i, count), (j, beam) in itertools.product(enumerate(counts), enumerate(beams)):
            passes = [by_delay[delay] for delay in delays_of[count]]
            started = time.perf_counter()
            wer[i, j] = score_outputs(recognizer, passes if count > 1 else passes[0], beam,
                                      decoder=setting.with_options(beam_size=beam)).wer.rate
            seconds[i, j] = time.perf_counter() - started + count * model_seconds_per_pass
            bar.update()
    good = np.argwhere(wer <= wer.min() + BEAM_TOLERANCE)
    i, j = min(good, key=lambda cell: seconds[tuple(cell)])
    return PassesSweep(tuple(counts), tuple(beams), wer, seconds, (counts[i], beams[j]))


def plot_grid(result: TuningResult, path: str | os.PathLike, title: str = "") -> None:
    """Heat maps of WER over the grid, a row per blank penalty and a column per unknown-word penalty, on one colour
    scale; the best cell marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = len(result.blank_penalties), len(result.unk_penalties)
    width, height = 1.2 * len(result.word_bonuses) + 1, 0.6 * len(result.lm_weights) + 1.5
    figure, all_axes = plt.subplots(rows, columns, figsize=(width * columns + 1.5, height * rows), squeeze=False,
                                    layout="constrained")
    low, high = 100 * result.wer.min(), 100 * result.wer.max()
    best = best_cell(result.wer)
    for (b, k), axes in np.ndenumerate(all_axes):
        image = axes.imshow(100 * result.wer[b, k], cmap="viridis_r", aspect="auto", vmin=low, vmax=high)
        axes.set_xticks(range(len(result.word_bonuses)), [f"{x:g}" for x in result.word_bonuses])
        axes.set_yticks(range(len(result.lm_weights)), [f"{w:g}" for w in result.lm_weights])
        axes.set_xlabel("word bonus")
        axes.set_ylabel("LM weight")
        axes.set_title(f"blank penalty {result.blank_penalties[b]:g}, unknown-word penalty "
                       f"{result.unk_penalties[k]:g}", fontsize=10)
        for i in range(len(result.lm_weights)):
            for j in range(len(result.word_bonuses)):
                marked = (b, k, i, j) == best
                axes.text(j, i, f"{100 * result.wer[b, k, i, j]:.1f}", ha="center", va="center", fontsize=8,
                          color="red" if marked else "white", fontweight="bold" if marked else "normal")
    figure.colorbar(image, ax=all_axes.ravel().tolist(), label="WER %")
    figure.suptitle(title or f"dev WER (no LM: {100 * result.no_lm_wer:.1f}%)")
    figure.savefig(path, dpi=100)
    plt.close(figure)
