"""Word n-gram language models for decoding: an ARPA or KenLM binary file, queried through the `kenlm` package.

A `LanguageModel` knows its words as well as its scores: they come from the ARPA file's unigrams, or, for a
binary (which `kenlm` cannot list), from the word list that `asr lm build` writes beside it (`<binary>.words`).
The decoder needs them to tell a word it can score from one it cannot, and to spell only known words when asked.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from asr.errors import AsrError, one_line
from asr.ngram import arpa_vocabulary

BINARY_MAGIC = b"mmap lm "  # how every KenLM binary file begins
# An ARPA file is parsed again by the KenLM bridge (a binary is only mapped): above this size, that costs more
# time and memory than the bridge saves, and the search asks through Python.
BRIDGE_ARPA_LIMIT = 100_000_000


def words_file_of(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".words")


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(BINARY_MAGIC)) == BINARY_MAGIC


@contextlib.contextmanager
def _quiet_stderr():
    """KenLM's C++ loader prints a progress bar and advice to file descriptor 2; keep the terminal for our own."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LanguageModel:
    """A loaded n-gram model (`.model`, a `kenlm.Model`) and its vocabulary (`.words`)."""

    def __init__(self, path: str | os.PathLike):
        import kenlm  # imported here so that `asr` works without it until an LM is asked for

        self.path = Path(path)
        if not self.path.is_file():
            raise AsrError(f"{self.path}: no such language model file; build one with `asr lm build` or pass an "
                           "ARPA file such as LibriSpeech's 4-gram.arpa")
        try:
            binary = is_kenlm_binary(self.path)
        except OSError as error:
            raise AsrError(f"{self.path}: cannot read the language model ({error.strerror})") from None
        if binary:
            words_file = words_file_of(self.path)
            if not words_file.is_file():
                raise AsrError(f"{self.path}: a KenLM binary needs its word list beside it ({words_file.name}, one "
                               "word a line); `asr lm build` writes one, or pass the ARPA file instead")
            self.words = words_file.read_text(encoding="utf-8").split()
        else:
            self.words = arpa_vocabulary(self.path)
        try:
            with _quiet_stderr():
                self.model = kenlm.Model(str(self.path))
        except (OSError, RuntimeError, ValueError) as error:
            message = one_line(error, last=True, limit=None)
            raise AsrError(f"{self.path}: not a usable ARPA or KenLM binary language model ({message})") from None
        self.order = self.model.order

    @functools.cached_property
    def native(self):
        """The model opened through the KenLM bridge for the compiled search (asr/kenlm_native.py), or None."""
        from asr import kenlm_native

        if not is_kenlm_binary(self.path) and self.path.stat().st_size > BRIDGE_ARPA_LIMIT:
            return None
        with _quiet_stderr():
            return kenlm_native.open_model(self.path)

    def __repr__(self) -> str:
        return f"LanguageModel({str(self.path)!r}, order={self.order}, words={len(self.words)})"


def load_language_model(path: str | os.PathLike | None) -> LanguageModel | None:
    return None if path is None else LanguageModel(path)


@dataclass(frozen=True)
class Perplexity:
    sentences: int
    words: int
    unknown_words: int  # scored as <unk>
    log10_prob: float  # of every word and every sentence end

    @property
    def perplexity(self) -> float:
        """Per predicted token (each word and each sentence end), as KenLM and SRILM count it."""
        return 10.0 ** (-self.log10_prob / max(1, self.words + self.sentences))


def perplexity(lm: LanguageModel, sentences: Iterable[str]) -> Perplexity:
    """How well the LM predicts these sentences (each from <s> to </s>): lower is closer to the text it knows."""
    count = words = unknown = 0
    total = 0.0
    for sentence in sentences:
        scores = list(lm.model.full_scores(sentence, bos=True, eos=True))
        count += 1
        words += len(scores) - 1
        unknown += sum(1 for _, _, oov in scores if oov)
        total += sum(score for score, _, _ in scores)
    if not count:
        raise AsrError(f"{lm.path}: no sentences to score")
    return Perplexity(count, words, unknown, total)
