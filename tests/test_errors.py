"""One line of an error message, as every one-line report takes it."""

from asr.errors import one_line


def test_first_line_by_default_and_last_on_request():
    error = RuntimeError("Traceback (most recent call last):\n  File x\nOSError: the real reason\n")
    assert one_line(error) == "Traceback (most recent call last):"
    assert one_line(error, last=True) == "OSError: the real reason"


def test_long_lines_are_cut_to_the_limit_unless_none():
    error = ValueError("x" * 300)
    assert one_line(error) == "x" * 160
    assert one_line(error, limit=120) == "x" * 120
    assert one_line(error, limit=None) == "x" * 300


def test_an_error_without_text_is_named_by_its_type_and_empty_output_by_the_fallback():
    assert one_line(KeyError()) == "KeyError"
    assert one_line("  \n", last=True, empty="?") == "?"
