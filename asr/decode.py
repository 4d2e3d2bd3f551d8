"""CTC decoding: per-frame log-probs -> hypotheses (label sequences with scores and frame times).

`greedy_decode` takes the best label of each frame; `beam_search` is the CTC prefix beam search (Hannun et al.,
2014), which sums over all alignments of a labelling. Both work on one utterance's (frames, vocab) log-probs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NEG_INF = -math.inf


@dataclass(frozen=True)
class Hypothesis:
    """One decoded labelling of an utterance."""

    tokens: tuple[int, ...]  # label indices, blanks removed and repeats collapsed
    timesteps: tuple[int, ...]  # output frame at which each token is emitted
    score: float  # natural-log probability (best path for greedy, all alignments for beam search); with an LM, fused
    acoustic_score: float | None = None  # with an LM: the CTC part of `score`
    lm_score: float | None = None  # with an LM: log P(words), natural log, before the LM weight


def _as_numpy(log_probs, dtype=np.float64) -> np.ndarray:
    if isinstance(log_probs, torch.Tensor):
        log_probs = log_probs.detach().float().cpu().numpy()
    log_probs = np.ascontiguousarray(log_probs, dtype=dtype)
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be (frames, vocab), got shape {log_probs.shape}")
    return log_probs


def greedy_decode(log_probs, blank: int = 0) -> Hypothesis:
    """Best path: the most likely label of every frame, repeats merged and blanks dropped."""
    log_probs = _as_numpy(log_probs)
    if log_probs.shape[0] == 0:
        return Hypothesis((), (), 0.0)
    best = log_probs.argmax(axis=1)
    score = float(log_probs[np.arange(len(best)), best].sum())
    tokens, timesteps = [], []
    previous = blank
    for t, label in enumerate(best.tolist()):
        if label != blank and label != previous:
            tokens.append(label)
            timesteps.append(t)
        previous = label
    return Hypothesis(tuple(tokens), tuple(timesteps), score)


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@dataclass
class _Prefix:
    blank: float = NEG_INF  # log prob of all alignments of this prefix that end in a blank
    label: float = NEG_INF  # ... that end in the prefix's last label
    timesteps: tuple[int, ...] = ()

    @property
    def total(self) -> float:
        return _logaddexp(self.blank, self.label)


def beam_search(log_probs, beam_size: int = 10, blank: int = 0, prune_threshold: float = 10.0,
                nbest: int = 1) -> list[Hypothesis]:
    """CTC prefix beam search: the `nbest` most probable labellings found, best first.

    `prune_threshold`: at each frame, labels whose log-prob is more than this below the frame's best are not tried
    (the largest saving on confident frames; `math.inf` disables it).
    """
    log_probs = _as_numpy(log_probs)
    if beam_size < 1:
        raise ValueError("beam_size must be at least 1")
    beams: dict[tuple[int, ...], _Prefix] = {(): _Prefix(blank=0.0)}
    for t, frame in enumerate(log_probs):
        candidates = np.nonzero(frame >= frame.max() - prune_threshold)[0].tolist()
        next_beams: dict[tuple[int, ...], _Prefix] = {}

        def entry(prefix, timesteps):
            found = next_beams.get(prefix)
            if found is None:
                found = next_beams[prefix] = _Prefix(timesteps=timesteps)
            return found

        for prefix, state in beams.items():
            total = state.total
            for label in candidates:
                p = float(frame[label])
                if label == blank:
                    # Case 1: *a + blank => *a (now ends in a blank)
                    same = entry(prefix, state.timesteps)
                    same.blank = _logaddexp(same.blank, total + p)
                elif prefix and label == prefix[-1]:
                    # Case 2: *a + a => *a (a repeat with no blank between collapses)
                    same = entry(prefix, state.timesteps)
                    same.label = _logaddexp(same.label, state.label + p)
                    # Case 3: *a + blank + a => *aa (only paths ending in a blank start a new a)
                    if state.blank > NEG_INF:
                        longer = entry(prefix + (label,), state.timesteps + (t,))
                        longer.label = _logaddexp(longer.label, state.blank + p)
                else:
                    # Case 4: *a + b => *ab
                    longer = entry(prefix + (label,), state.timesteps + (t,))
                    longer.label = _logaddexp(longer.label, total + p)
        ranked = sorted(next_beams.items(), key=lambda item: item[1].total, reverse=True)
        beams = dict(ranked[:beam_size])
    ranked = sorted(beams.items(), key=lambda item: item[1].total, reverse=True)[:nbest]
    return [Hypothesis(prefix, state.timesteps, state.total) for prefix, state in ranked]
