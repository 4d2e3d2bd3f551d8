"""Word and character error rates (jiwer), with the counts behind them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jiwer


@dataclass(frozen=True)
class ErrorRate:
    """Edit-distance errors of hypotheses against references, in words or characters."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int  # words (or characters) in the references

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors over reference length (can exceed 1 with many insertions); 0 when both are empty."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length

    def __str__(self) -> str:
        return (f"{100 * self.rate:.2f}% ({self.errors}/{self.reference_length}: {self.substitutions} sub, "
                f"{self.deletions} del, {self.insertions} ins)")


def _error_rate(output) -> ErrorRate:
    return ErrorRate(output.substitutions, output.deletions, output.insertions,
                     output.hits + output.substitutions + output.deletions)


def _pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    # jiwer refuses empty references; a lone space is an empty word list after its default transform.
    return [r if r.strip() else " " for r in references], [h if h.strip() else " " for h in hypotheses]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRate:
    if not references:
        return ErrorRate(0, 0, 0, 0)
    return _error_rate(jiwer.process_words(*_pairs(references, hypotheses)))


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRate:
    """Character errors; spaces count as characters, as in the usual CER."""
    if not references:
        return ErrorRate(0, 0, 0, 0)
    return _error_rate(jiwer.process_characters(*_pairs(references, hypotheses)))
