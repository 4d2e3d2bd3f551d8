import itertools
import math

import numpy as np
import pytest

from asr.decode import beam_search, greedy_decode


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def collapse(path, blank=0):
    out = []
    previous = None
    for label in path:
        if label != blank and label != previous:
            out.append(label)
        previous = label
    return tuple(out)


def brute_force(log_probs):
    """Probability of every labelling, summed over all its alignments, by enumeration."""
    frames, vocab = log_probs.shape
    totals = {}
    for path in itertools.product(range(vocab), repeat=frames):
        score = sum(log_probs[t, label] for t, label in enumerate(path))
        key = collapse(path)
        totals[key] = np.logaddexp(totals.get(key, -math.inf), score)
    return totals


def test_greedy_collapses_repeats_and_blanks():
    # frames: a a blank a b b blank  -> "a a b" (labels 1 1 2)
    best = [1, 1, 0, 1, 2, 2, 0]
    log_probs = np.full((7, 3), math.log(0.05))
    log_probs[np.arange(7), best] = math.log(0.9)
    hypothesis = greedy_decode(log_probs)
    assert hypothesis.tokens == (1, 1, 2)
    assert hypothesis.timesteps == (0, 3, 4)
    assert hypothesis.score == pytest.approx(7 * math.log(0.9))


@pytest.mark.parametrize("seed", range(20))
def test_beam_size_one_equals_greedy_on_peaked_outputs(seed):
    # Trained CTC models put most of each frame's mass on one label; there the single best prefix is the best path.
    rng = np.random.default_rng(seed)
    frames, vocab = 30, 6
    logits = rng.normal(size=(frames, vocab))
    logits[np.arange(frames), rng.integers(0, vocab, frames)] += 6.0
    log_probs = log_softmax(logits)
    assert beam_search(log_probs, beam_size=1)[0].tokens == greedy_decode(log_probs).tokens


@pytest.mark.parametrize("seed", range(8))
def test_beam_search_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(100 + seed)
    log_probs = log_softmax(rng.normal(scale=1.5, size=(6, 3)))
    totals = brute_force(log_probs)
    best_labelling = max(totals, key=totals.get)
    found = beam_search(log_probs, beam_size=64, prune_threshold=math.inf, nbest=3)
    assert found[0].tokens == best_labelling
    assert found[0].score == pytest.approx(totals[best_labelling], abs=1e-9)
    for hypothesis in found:  # every n-best score is the exact labelling probability
        assert hypothesis.score == pytest.approx(totals[hypothesis.tokens], abs=1e-9)


def test_beam_search_beats_greedy_where_alignments_add_up():
    # Best path is blank,blank (p=.36) but "a" gathers a,a + a,blank + blank,a = .16+.24+.24 = .64.
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert greedy_decode(log_probs).tokens == ()
    best = beam_search(log_probs, beam_size=4)[0]
    assert best.tokens == (1,)
    assert math.exp(best.score) == pytest.approx(0.64)


def test_repeated_labels_need_a_blank_between():
    # "a a" is only possible as a, blank, a.
    log_probs = np.log(np.array([[0.01, 0.99], [0.98, 0.02], [0.01, 0.99]]))
    assert beam_search(log_probs, beam_size=8)[0].tokens == (1, 1)
