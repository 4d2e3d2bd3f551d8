"""The ARPA builder: modified Kneser-Ney probabilities checked by hand, and normalisation as KenLM reads them."""

import math

import numpy as np
import pytest

from asr.errors import AsrError
from asr.lm import LanguageModel
from asr.ngram import _discounts, arpa_vocabulary, build_arpa, build_mixed_arpa, read_text, read_word_list


def arpa_entries(path):
    """{ngram: (log10 prob, log10 backoff or None)} from an ARPA file."""
    entries = {}
    for line in open(path, encoding="utf-8"):
        fields = line.rstrip("\n").split("\t")
        if len(fields) >= 2 and not line.startswith("\\"):
            entries[fields[1]] = (float(fields[0]), float(fields[2]) if len(fields) == 3 else None)
    return entries


def test_discounts_follow_chen_and_goodman():
    # counts of counts n1=3, n2=2, n3=1, n4=1: Y = 3/7, D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3
    d1, d2, d3 = _discounts(np.array([1, 1, 1, 2, 2, 3, 4]), fallback=None)
    assert d1 == pytest.approx(3 / 7)
    assert d2 == pytest.approx(19 / 14)
    assert d3 == pytest.approx(9 / 7)


def test_too_little_text_needs_the_fallback():
    with pytest.raises(AsrError, match="discount"):
        _discounts(np.array([1, 2]), fallback=None)
    assert _discounts(np.array([1, 2]), fallback=(0.5, 1.0, 1.5)) == (0.5, 1.0, 1.5)


def test_bigram_probabilities_match_a_hand_computation(tmp_path):
    # Text: "A B", "A B", "B"  ->  <s> A B </s> | <s> A B </s> | <s> B </s>; discounts 0.5, 1, 1.5 (fallback).
    arpa = tmp_path / "lm.arpa"
    build_arpa(["A B", "A B", "B"], arpa, order=2, discount_fallback=(0.5, 1.0, 1.5))
    got = arpa_entries(arpa)
    # Unigrams use continuation counts: A follows {<s>} -> 1, B follows {<s>, A} -> 2, </s> follows {B} -> 1.
    # Total 4; discounted mass 0.5 + 1 + 0.5 = 2 -> gamma = 0.5, spread uniformly over the 4 predictable words.
    expected_unigrams = {"A": 0.5 / 4 + 0.5 / 4, "B": 1 / 4 + 0.5 / 4, "</s>": 0.5 / 4 + 0.5 / 4, "<unk>": 0.5 / 4}
    for word, p in expected_unigrams.items():
        assert got[word][0] == pytest.approx(math.log10(p), abs=1e-6), word
    assert sum(expected_unigrams.values()) == pytest.approx(1.0)
    assert got["<s>"][0] == -99
    # Bigrams use raw counts: <s> A 2, <s> B 1, A B 2, B </s> 3.
    expected_bigrams = {
        "<s> A": (2 - 1.0) / 3 + (1.5 / 3) * 0.25,  # gamma(<s>) = (D2 + D1) / 3
        "<s> B": (1 - 0.5) / 3 + (1.5 / 3) * 0.375,
        "A B": (2 - 1.0) / 2 + (1.0 / 2) * 0.375,
        "B </s>": (3 - 1.5) / 3 + (1.5 / 3) * 0.25,
    }
    for ngram, p in expected_bigrams.items():
        assert got[ngram][0] == pytest.approx(math.log10(p), abs=1e-6), ngram
    for context in ("<s>", "A", "B"):
        assert got[context][1] == pytest.approx(math.log10(0.5), abs=1e-6), context
    # KenLM reads the file and gives the sentence the product of the same probabilities.
    lm = LanguageModel(arpa)
    expected = math.log10(expected_bigrams["<s> A"] * expected_bigrams["A B"] * expected_bigrams["B </s>"])
    assert lm.model.score("A B", bos=True, eos=True) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("order,prune", [(3, ()), (3, (0, 0, 1)), (4, (0, 1, 1, 2))])
def test_every_distribution_sums_to_one(tmp_path, order, prune):
    rng = np.random.default_rng(order)
    words = ["THE", "CAT", "SAT", "ON", "A", "MAT", "DOG", "RAN"]
    sentences = [" ".join(rng.choice(words, size=rng.integers(2, 7), p=np.linspace(2, 1, 8) / 12))
                 for _ in range(300)]
    arpa = tmp_path / "lm.arpa"
    summary = build_arpa(sentences, arpa, order=order, prune=prune, discount_fallback=(0.5, 1.0, 1.5))
    if prune:
        unpruned = build_arpa(sentences, tmp_path / "full.arpa", order=order, discount_fallback=(0.5, 1.0, 1.5))
        assert sum(summary.ngrams) < sum(unpruned.ngrams)
    model = LanguageModel(arpa).model
    for history in ([], ["THE"], ["CAT", "SAT"], ["ON", "A", "MAT"], ["RAN", "RAN"]):
        total = _probability_of_every_next_word(model, history, words + ["</s>", "<unk>"])
        assert total == pytest.approx(1.0, abs=1e-5), history


BOOKS = ["THE CAT SAT", "THE CAT RAN", "A DOG SAT", "THE DOG", "CAT", "A CAT SAT ON THE MAT"] * 3 + ["A MAT SAT"]
TALK = ["YES", "NO", "THE DOG RAN HOME", "CALL HOME", "NO THE CAT", "YES PLEASE"] * 3 + ["CALL THE DOG"]
FALLBACK = (0.5, 1.0, 1.5)
SENTENCES = ["THE CAT SAT", "NO", "CALL THE CAT HOME", "A MAT", "DOG DOG DOG", "YES PLEASE CALL"]


def _sentence_scores(path):
    model = LanguageModel(path).model
    return np.array([model.score(sentence, bos=True, eos=True) for sentence in SENTENCES])


def test_a_mixture_weighing_one_text_fully_is_that_texts_model(tmp_path):
    """Every n-gram of either text is in the mixture, at the first text's backed-off probability when only the
    second saw it: the sentences score as in a model of the first text alone (with the same vocabulary)."""
    words = sorted({word for sentence in BOOKS + TALK for word in sentence.split()})
    build_arpa(BOOKS, tmp_path / "books.arpa", order=3, discount_fallback=FALLBACK, extra_words=words)
    summary = build_mixed_arpa([BOOKS, TALK], (1, 1e-12), tmp_path / "mix.arpa", order=3, discount_fallback=FALLBACK)
    assert summary.weights[0] == pytest.approx(1.0) and len(summary.discounts) == 2
    assert _sentence_scores(tmp_path / "mix.arpa") == pytest.approx(_sentence_scores(tmp_path / "books.arpa"),
                                                                    abs=1e-5)


@pytest.mark.parametrize("prune", [(), (0, 1, 1)])
def test_a_mixture_is_the_weighted_sum_and_sums_to_one(tmp_path, prune):
    words = sorted({word for sentence in BOOKS + TALK for word in sentence.split()})
    for name, text in ("books", BOOKS), ("talk", TALK):
        build_arpa(text, tmp_path / f"{name}.arpa", order=3, discount_fallback=FALLBACK, extra_words=words)
    mix = tmp_path / "mix.arpa"
    summary = build_mixed_arpa([BOOKS, TALK], (3, 7), mix, order=3, prune=prune, discount_fallback=FALLBACK)
    assert summary.weights == pytest.approx((0.3, 0.7))
    # An n-gram in the file (kept by any pruning: seen 3 times) has exactly the weighted sum of the probabilities
    # the two models give its last word, seen in that context or backed off.
    books, talk, model = (LanguageModel(tmp_path / f"{name}.arpa").model for name in ("books", "talk", "mix"))
    in_file = arpa_entries(mix)
    for ngram in ("<s> THE CAT", "<s> NO", "CALL HOME", "THE", "YES"):
        *history, word = ngram.split()
        expected = 0.3 * 10 ** _log10_next(books, history, word) + 0.7 * 10 ** _log10_next(talk, history, word)
        assert 10 ** in_file[ngram][0] == pytest.approx(expected, rel=1e-5), ngram
    for history in ([], ["THE"], ["THE", "CAT"], ["NO", "THE"], ["HOME"], ["MAT", "ON"]):
        total = _probability_of_every_next_word(model, history, words + ["</s>", "<unk>"])
        assert total == pytest.approx(1.0, abs=1e-5), history
    # Pruning keeps what either text's own pruned model keeps; a text given twice does not count twice.
    own = [set(arpa_entries(tmp_path / f"{name}.arpa")) for name in ("books", "talk")]
    for name, text in ("books", BOOKS), ("talk", TALK):
        build_arpa(text, tmp_path / f"{name}.arpa", order=3, prune=prune, discount_fallback=FALLBACK,
                   extra_words=words)
    pruned = [set(arpa_entries(tmp_path / f"{name}.arpa")) for name in ("books", "talk")]
    assert set(in_file) == pruned[0] | pruned[1]
    assert (pruned[0] | pruned[1] != own[0] | own[1]) == bool(prune)
    pooled = build_arpa(BOOKS + TALK, tmp_path / "pooled.arpa", order=3, prune=prune, discount_fallback=FALLBACK)
    again = build_mixed_arpa([BOOKS + TALK, BOOKS], (4, 1), tmp_path / "again.arpa", order=3, prune=prune,
                             discount_fallback=FALLBACK)
    assert again.ngrams == pooled.ngrams


def test_a_mixture_needs_a_positive_weight_and_text_for_each_text(tmp_path):
    with pytest.raises(AsrError, match="one positive mixture weight per text"):
        build_mixed_arpa([BOOKS, TALK], (1,), tmp_path / "mix.arpa", discount_fallback=FALLBACK)
    with pytest.raises(AsrError, match="one positive mixture weight per text"):
        build_mixed_arpa([BOOKS, TALK], (1, -1), tmp_path / "mix.arpa", discount_fallback=FALLBACK)
    with pytest.raises(AsrError, match="text 2 of the mixture has no sentences"):
        build_mixed_arpa([BOOKS, []], (1, 1), tmp_path / "mix.arpa", discount_fallback=FALLBACK)
    assert not (tmp_path / "mix.arpa").exists()


def _probability_of_every_next_word(model, history: list[str], vocabulary: list[str]) -> float:
    """The LM's probabilities of each word of `vocabulary` after <s> and `history`, summed."""
    return sum(10 ** _log10_next(model, ["<s>", *history], word) for word in vocabulary)


def _log10_next(model, history: list[str], word: str) -> float:
    """log10 P(word | history); a history that starts with <s> starts a sentence."""
    import kenlm

    state = kenlm.State()
    if history[:1] == ["<s>"]:
        model.BeginSentenceWrite(state)
        history = history[1:]
    else:
        model.NullContextWrite(state)
    for previous in history:
        following = kenlm.State()
        model.BaseScore(state, previous, following)
        state = following
    return model.BaseScore(state, word, kenlm.State())


def test_exclusion_and_normalisation_of_the_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("The cat sat on 2 mats.\nA DOG RAN\n\nA TEST SENTENCE\n")
    sentences, counts = read_text(text, exclude=["A TEST SENTENCE"])
    assert sentences == ["THE CAT SAT ON TWO MATS", "A DOG RAN"]
    assert counts == {"lines": 4, "normalised": 1, "excluded": 1, "empty": 1}


def test_short_evaluation_transcripts_stay_in_the_text(tmp_path):
    """ "NO" or "WHY NOT" in an evaluation set identifies no utterance; dropping it would teach the LM nobody says it."""
    text = tmp_path / "text.txt"
    text.write_text("NO\nWHY NOT\nA TEST SENTENCE\nYES\n")
    evaluation = ["NO", "WHY NOT", "A TEST SENTENCE"]
    sentences, counts = read_text(text, exclude=evaluation)
    assert sentences == ["NO", "WHY NOT", "YES"] and counts["excluded"] == 1
    sentences, counts = read_text(text, exclude=evaluation, exclude_min_words=1)
    assert sentences == ["YES"] and counts["excluded"] == 3


def test_vocabulary_size_maps_rare_words_to_unk(tmp_path):
    arpa = tmp_path / "lm.arpa"
    summary = build_arpa(["A A A B", "A C"], arpa, order=2, vocabulary_size=1, discount_fallback=(0.5, 1, 1.5))
    assert arpa_vocabulary(arpa) == ["<unk>", "<s>", "</s>", "A"]
    assert summary.vocabulary == 4


def test_added_words_take_the_uniform_share_and_distributions_still_sum_to_one(tmp_path):
    arpa = tmp_path / "lm.arpa"
    summary = build_arpa(["A B", "A B", "B C"], arpa, order=2, discount_fallback=(0.5, 1.0, 1.5),
                         extra_words=["ZED", "B", "YAK"])  # B is in the text already: not added twice
    assert arpa_vocabulary(arpa) == ["<unk>", "<s>", "</s>", "B", "A", "C", "YAK", "ZED"]
    assert summary.vocabulary == 8
    entries = arpa_entries(arpa)
    assert entries["ZED"][0] == entries["YAK"][0] == entries["<unk>"][0]  # no count: only the uniform share
    assert entries["ZED"][0] < entries["C"][0]
    model = LanguageModel(arpa).model
    for history in ([], ["A"], ["ZED"]):
        total = _probability_of_every_next_word(model, history, ["A", "B", "C", "YAK", "ZED", "</s>", "<unk>"])
        assert total == pytest.approx(1.0, abs=1e-5), history


def test_word_lists_are_normalised_and_filtered_by_count(tmp_path):
    listed = tmp_path / "words.txt"
    listed.write_text("zed\t3\nyak\t0\nit's\t1\n\n")
    assert read_word_list(listed) == ["ZED", "YAK", "IT'S"]
    assert read_word_list(listed, min_count=1) == ["ZED", "IT'S"]
    uncounted = tmp_path / "plain.txt"
    uncounted.write_text("zed\n")
    with pytest.raises(AsrError, match="line 1: no count"):
        read_word_list(uncounted, min_count=1)
    uncounted.write_text("two words\n")
    with pytest.raises(AsrError, match="not one word"):
        read_word_list(uncounted)
    with pytest.raises(AsrError, match="no such word list"):
        read_word_list(tmp_path / "missing.txt")


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(AsrError, match="no such text file"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(AsrError, match="unigrams cannot be pruned"):
        build_arpa(["A B"], tmp_path / "x.arpa", order=2, prune=(1, 1))
    with pytest.raises(AsrError, match="must not fall"):
        build_arpa(["A B"], tmp_path / "x.arpa", order=3, prune=(0, 2, 1))
    with pytest.raises(AsrError, match="order"):
        build_arpa(["A B"], tmp_path / "x.arpa", order=7)
