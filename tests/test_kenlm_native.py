"""The KenLM bridge (asr/kenlm_native.py): the compiled search asks KenLM directly, with the answers and the
transcripts of the Python way."""

import math
import shutil

import kenlm
import numpy as np
import pytest

from asr import kenlm_native
from asr.lm import LanguageModel
from asr.lm_decoder import DecoderOptions, LmBeamSearchDecoder, _ScoreCache, _SearchState
from asr.ngram import build_arpa
from asr.text import Vocabulary

VOCAB = Vocabulary()
SENTENCES = ["THE CAT SAT", "THE CAT RAN", "A CAT SAT ON THE MAT", "THE DOG SAT", "A DOG RAN ON THE MAT"] * 5


@pytest.fixture(scope="module")
def bridge():
    if shutil.which("g++") is None and not kenlm_native.library_path().is_file():
        pytest.skip("no C++ compiler to build the KenLM bridge with")
    kenlm_native.build()
    kenlm_native._library = None  # load what was just built
    assert kenlm_native._load_library() is not None


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "cats.arpa"
    build_arpa(SENTENCES, path, order=3, discount_fallback=(0.5, 1.0, 1.5))
    return path


def without_bridge(path):
    lm = LanguageModel(path)
    lm.__dict__["native"] = None  # as if the bridge were not built
    return lm


def test_the_bridge_scores_as_the_kenlm_package_does(bridge, arpa):
    native = kenlm_native.open_model(arpa)
    model = kenlm.Model(str(arpa))
    words = ["THE", "CAT", "SAT", "ON", "ZEBRA", "THE", "MAT", "</s>"]
    context = native.new_context()
    indices = native.indices(words)
    assert indices[4] == 0  # an unknown word is <unk>
    state, ours = 0, []
    before, after = kenlm.State(), kenlm.State()
    model.BeginSentenceWrite(before)
    theirs = []
    for word, index in zip(words, indices):
        ours.append(native.score(context.handle, state, int(index)))
        state = native.next_state(context.handle)
        theirs.append(model.BaseScore(before, word, after))
        before, after = after, before
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert len(context) > 1
    copy = context.copy()
    context.keep([0])  # back to the start of a sentence only
    assert len(context) == 1 and len(copy) > 1
    assert native.score(context.handle, 0, int(indices[0])) == pytest.approx(theirs[0], abs=1e-6)


def noisy_log_probs(rng, frames):
    """Log-probs of a model that mostly hears letters of the LM's words, with some doubt in every frame."""
    letters = [VOCAB.encode(c)[0] for c in "THECASDOGRNMP "]
    probs = rng.dirichlet(np.full(len(VOCAB), 0.05), size=frames) + 1e-6
    probs[:, VOCAB.blank] += rng.uniform(0, 2, size=frames)
    probs[np.arange(frames), rng.choice(letters, size=frames)] += rng.uniform(0, 1.5, size=frames)
    return np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("options", [
    DecoderOptions(beam_size=8, lm_weight=0.9, word_bonus=-2.0),
    DecoderOptions(beam_size=32, lm_weight=1.3, word_bonus=2.0, unk_penalty=-20.0, blank_penalty=1.0),
    DecoderOptions(beam_size=16, lexicon_only=True)])
def test_the_search_finds_the_same_hypotheses_with_and_without_the_bridge(bridge, arpa, options, monkeypatch):
    rng = np.random.default_rng(7)
    batch = [noisy_log_probs(rng, int(rng.integers(20, 200))) for _ in range(12)]
    with_bridge = LmBeamSearchDecoder(VOCAB, LanguageModel(arpa), options)
    assert with_bridge.lm.native is not None
    python_way = LmBeamSearchDecoder(VOCAB, without_bridge(arpa), options)
    expected = [python_way.decode(lp, nbest=3) for lp in batch]
    assert [with_bridge.decode(lp, nbest=3) for lp in batch] == expected
    assert any(h and len(h[0].tokens) > 4 for h in expected)  # the utterances have words to score
    # A score cache that must grow, and past its largest size be emptied, changes nothing either.
    monkeypatch.setattr(_ScoreCache, "first_size", 256)
    monkeypatch.setattr(_ScoreCache, "max_size", 2048)
    assert [LmBeamSearchDecoder(VOCAB, without_bridge(arpa), options).decode(lp, nbest=3) for lp in batch] == expected
    # With LM states forgotten every few words (as on hour-long input), the bridge renumbers its states alike.
    monkeypatch.setattr(_SearchState, "max_states", 3)
    forgetful = LmBeamSearchDecoder(VOCAB, LanguageModel(arpa), options)
    assert [forgetful.decode(lp, nbest=3) for lp in batch] == expected


def test_without_the_bridge_the_search_asks_through_python(arpa, monkeypatch):
    monkeypatch.setenv("ASR_NATIVE_LM", "0")
    monkeypatch.setattr(kenlm_native, "_library", None)
    lm = LanguageModel(arpa)
    assert lm.native is None
    decoder = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(beam_size=8))
    spelled = np.full((11, len(VOCAB)), math.log(1e-4), dtype=np.float32)
    for frame, char in enumerate("THE CAT SAT"):
        spelled[frame, VOCAB.encode(char)[0]] = math.log(0.99)
    assert VOCAB.decode(decoder.decode(spelled)[0].tokens) == "THE CAT SAT"
