"""Word-level voting between transcripts of the same audio (ROVER, Fiscus 1997, with the consensus as pivot).

The acoustic model hears a sentence a little differently when the audio starts a few milliseconds later (its LSTM
steps 40 ms at a time), and its mistakes move with that phase. `Recognizer(passes=N)` transcribes N delayed copies
and this module keeps, word by word, what most of them agree on.

The pivot is the transcript with the fewest word edits to all the others (the consensus). Every transcript is
aligned to it by Levenshtein alignment (rapidfuzz), which gives each pivot word a column of candidates (a word,
or nothing where a transcript deleted it) and each gap between pivot words the words transcripts inserted there.
A column keeps its most voted candidate (the pivot's wins a tie); an inserted word is kept when more than half of
the transcripts inserted it. A kept word's times are the mean of its voters', and its confidence is their mean
confidence times the share of transcripts that voted for it. Two transcripts can only tie, so voting needs three or
more: with two, the first is kept as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Sequence

from rapidfuzz.distance import Levenshtein

from asr.transcript import Transcript, Word


def consensus_index(word_lists: Sequence[Sequence[str]]) -> int:
    """The index of the list with the fewest word edits to all the others (the first of equals)."""
    costs = [sum(Levenshtein.distance(a, b) for b in word_lists) for a in word_lists]
    return min(range(len(costs)), key=costs.__getitem__)


def _columns(pivot: Sequence[str], others: Sequence[Sequence[Word]]):
    """For each pivot word, the word each transcript put there (None: deleted); for each of the len(pivot) + 1
    gaps, the words transcripts inserted there."""
    columns: list[list[Word | None]] = [[] for _ in pivot]
    inserted: list[list[Word]] = [[] for _ in range(len(pivot) + 1)]
    for words in others:
        texts = [w.text for w in words]
        for op in Levenshtein.opcodes(pivot, texts):
            if op.tag in ("equal", "replace"):
                span = min(op.src_end - op.src_start, op.dest_end - op.dest_start)
                for k in range(span):
                    columns[op.src_start + k].append(words[op.dest_start + k])
                for k in range(op.src_start + span, op.src_end):  # (a replace longer on the pivot's side)
                    columns[k].append(None)
                inserted[op.src_end].extend(words[op.dest_start + span:op.dest_end])
            elif op.tag == "delete":
                for k in range(op.src_start, op.src_end):
                    columns[k].append(None)
            else:  # insert
                inserted[op.src_start].extend(words[op.dest_start:op.dest_end])
    return columns, inserted


def _merged(voters: Sequence[Word], total: int) -> Word:
    n = len(voters)
    return Word(text=voters[0].text,
                start=round(sum(w.start for w in voters) / n, 3),
                end=round(sum(w.end for w in voters) / n, 3),
                confidence=round(sum(w.confidence for w in voters) / total, 4))  # mean times the share voting


def vote(transcripts: Sequence[Transcript]) -> Transcript:
    """One transcript from several of the same audio, word by word by majority (see the module's docstring)."""
    if not transcripts:
        raise ValueError("vote needs at least one transcript")
    if len(transcripts) == 1:
        return transcripts[0]
    total = len(transcripts)
    pivot_at = consensus_index([[w.text for w in t.words] for t in transcripts])
    ordered = [transcripts[pivot_at]] + [t for i, t in enumerate(transcripts) if i != pivot_at]
    pivot = [w.text for w in ordered[0].words]
    columns, inserted = _columns(pivot, [t.words for t in ordered])
    kept: list[Word] = []
    for gap in range(len(pivot) + 1):
        by_text: dict[str, list[Word]] = defaultdict(list)
        for word in inserted[gap]:
            by_text[word.text].append(word)
        majority = [voters for voters in by_text.values() if 2 * len(voters) > total]
        kept.extend(_merged(voters, total) for voters in majority)  # in the order first inserted
        if gap == len(pivot):
            break
        tally: dict[str | None, list[Word | None]] = defaultdict(list)
        for candidate in columns[gap]:  # the pivot's own word comes first, so it wins a tie
            tally[None if candidate is None else candidate.text].append(candidate)
        text, voters = max(tally.items(), key=lambda item: len(item[1]))
        if text is not None:
            kept.append(_merged(voters, total))
    confidence = (sum(w.confidence for w in kept) / len(kept) if kept
                  else sum(t.confidence for t in transcripts) / total)
    return replace(ordered[0], text=" ".join(w.text for w in kept), words=tuple(kept),
                   confidence=round(confidence, 4))
