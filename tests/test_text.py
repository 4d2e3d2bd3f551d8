import pytest

from asr.text import BLANK, Vocabulary, normalize_text


def test_vocabulary_layout_and_round_trip():
    vocabulary = Vocabulary()
    assert vocabulary.tokens[0] == BLANK and vocabulary.tokens[1] == " " and vocabulary.tokens[2] == "'"
    assert len(vocabulary) == 29
    text = "IT'S A TEST OF THE ALPHABET ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ids = vocabulary.encode(text)
    assert 0 not in ids
    assert vocabulary.decode(ids) == text


def test_encode_rejects_unnormalised_text():
    with pytest.raises(ValueError, match="normalise"):
        Vocabulary().encode("hello")


@pytest.mark.parametrize("raw,expected", [
    ("Mr. Smith paid $42, didn't he?", "MR SMITH PAID FORTY TWO DIDN'T HE"),
    ("In 1837, the 3rd ship sailed.", "IN EIGHTEEN THIRTY SEVEN THE THIRD SHIP SAILED"),
    ("It cost 1,500 pounds -- or 3.5%", "IT COST ONE THOUSAND FIVE HUNDRED POUNDS OR THREE POINT FIVE PERCENT"),
    ("Café  naïve\tfaçade", "CAFE NAIVE FACADE"),
    ("'Tis the dogs' bone—said ‘Tom’", "TIS THE DOGS' BONE SAID TOM"),
    ("the 1990s", "THE NINETEEN NINETIES"),
    ("...!?", ""),
])
def test_librispeech_normalisation(raw, expected):
    assert normalize_text(raw) == expected


def test_normalised_text_always_encodes():
    vocabulary = Vocabulary()
    for raw in ["Ünïcödé & 100 ümlauts!", "tab\tnew\nline", "@home 7:45 #1"]:
        vocabulary.encode(normalize_text(raw))


@pytest.mark.parametrize("raw, expected", [
    ("11,5", "ELEVEN FIVE"),  # a decimal comma, or a list: never an error that stops corpus preparation
    ("3,5,7", "THREE FIVE SEVEN"),
    ("1,234,567", "ONE MILLION TWO HUNDRED THIRTY FOUR THOUSAND FIVE HUNDRED SIXTY SEVEN"),
    ("version 1.2.3", "VERSION ONE TWO THREE"),
    ("2,", "TWO"),
])
def test_numbers_with_any_separators_are_spelt(raw, expected):
    assert normalize_text(raw) == expected
