import pytest

from asr.metrics import char_error_rate, word_error_rate


def test_word_error_counts():
    rate = word_error_rate(["THE CAT SAT", "A DOG"], ["THE BAT SAT DOWN", "DOG"])
    assert (rate.substitutions, rate.deletions, rate.insertions, rate.reference_length) == (1, 1, 1, 5)
    assert rate.rate == pytest.approx(3 / 5)


def test_char_error_rate_counts_spaces():
    rate = char_error_rate(["AB CD"], ["AB CE"])
    assert rate.reference_length == 5 and rate.substitutions == 1
    assert rate.rate == pytest.approx(0.2)


def test_empty_hypothesis_and_reference():
    assert word_error_rate(["HELLO WORLD"], [""]).deletions == 2
    assert word_error_rate([""], [""]).rate == 0.0
    with pytest.raises(ValueError):
        word_error_rate(["A"], [])
