"""Training a word n-gram language model: interpolated modified Kneser-Ney, written as an ARPA file.

The estimate follows Chen & Goodman (1998), as KenLM's `lmplz` does, so the pip-installable `kenlm` package can
query what we write without KenLM's compiled estimation tools:

* the highest order uses raw counts; lower orders use continuation counts (how many distinct words precede the
  n-gram), except n-grams that start with <s>, which nothing can precede;
* three discounts per order, D1, D2 and D3+, from that order's counts of counts;
* every order is interpolated with the next lower one, and unigrams with the uniform distribution, which is also
  the whole probability of <unk>, and of any word added to the vocabulary without being in the text
  (`extra_words`: a speller may then write it, at about the probability of the rarest words seen).

Counting is vectorised with numpy: each n-gram is a row number of its order's table, found as (row of its first
n-1 words, last word), so no Python object is made per n-gram and 25 M words of text fit in a few GB.

Pruning (`prune`, as `lmplz --prune`) drops n-grams of an order seen at most that many times; the backoff weights
of their contexts are then renormalised so every distribution still sums to one.

Texts of different kinds (books, conversation) can be mixed with chosen weights instead of pooled
(`build_mixed_arpa`): one model per text on the same n-grams, their probabilities summed with the weights.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from asr.errors import AsrError
from asr.text import normalize_text

log = logging.getLogger(__name__)
UNK, BOS, EOS = "<unk>", "<s>", "</s>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz's --discount_fallback, for texts too small to estimate them
_PLAIN_LINE = re.compile(r"[A-Z' ]*")
# An evaluation transcript shorter than this is kept in the LM text: "YES", "NO", "FIVE" or "WHY NOT" identify no
# utterance, and dropping every such line would teach the LM that nobody ever says them. (The shared text was
# cleaned by the same rule: only transcripts of three or more words were searched for.) `asr lm build
# --exclude-min-words` has the same default.
EXCLUDE_MIN_WORDS = 3


@dataclass
class NgramTable:
    """The n-grams of one order. Row r is (context[r], word[r]): its first n-1 words as a row of the order below
    (for unigrams, the word itself) and its last word."""

    context: np.ndarray  # int64, row in the order below
    word: np.ndarray  # int64, word id
    suffix: np.ndarray  # int64, row in the order below of the n-gram without its first word
    count: np.ndarray  # int64, raw count in the text
    adjusted: np.ndarray  # int64, the count Kneser-Ney discounts (continuation count below the top order)
    log10_prob: np.ndarray | None = None
    log10_backoff: np.ndarray | None = None  # as a context of the order above
    keep: np.ndarray | None = None
    count_by_source: np.ndarray | None = None  # (texts, rows) raw counts, when texts are mixed

    def __len__(self) -> int:
        return len(self.word)


@dataclass(frozen=True)
class LmSummary:
    order: int
    sentences: int
    words: int
    vocabulary: int  # including <unk>, <s> and </s>
    ngrams: tuple[int, ...]  # written per order, after pruning
    discounts: tuple[tuple[tuple[float, float, float], ...], ...]  # per text mixed (one when pooled), per order
    weights: tuple[float, ...] = (1.0,)  # of each text in the mixture


def read_text(path: str | os.PathLike, exclude: Iterable[str] = (),
              exclude_min_words: int = EXCLUDE_MIN_WORDS) -> tuple[list[str], dict[str, int]]:
    """Sentences of a (gzipped) text file, one a line, normalised to the recogniser's alphabet when they are not
    already; lines equal to an `exclude` sentence of at least `exclude_min_words` words (say, the transcripts of
    the evaluation sets) are dropped."""
    path = Path(path)
    if not path.is_file():
        raise AsrError(f"{path}: no such text file; give a text file with one sentence per line")
    excluded = {" ".join(sentence.split()) for sentence in exclude if len(sentence.split()) >= exclude_min_words}
    opener = gzip.open if path.suffix == ".gz" else open
    sentences, counts = [], {"lines": 0, "normalised": 0, "excluded": 0, "empty": 0}
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in tqdm(handle, desc=f"reading {path.name}", unit=" lines", mininterval=2, leave=False):
                counts["lines"] += 1
                text = " ".join(line.split())
                if not _PLAIN_LINE.fullmatch(text):
                    text = normalize_text(text)
                    counts["normalised"] += 1
                if not text:
                    counts["empty"] += 1
                elif text in excluded:
                    counts["excluded"] += 1
                else:
                    sentences.append(text)
    except (OSError, EOFError, UnicodeError) as error:
        raise AsrError(f"{path}: cannot read the text ({error}); check the file is plain text or gzip") from None
    return sentences, counts


def _encode(sentences: Sequence[str], vocabulary_size: int | None,
            extra_words: Iterable[str] = ()) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word ids for the text: 0 <unk>, 1 <s>, 2 </s>, then words by falling frequency, then `extra_words` not among
    them (sorted). Returns (words, stream, sentence_of_position) where the stream is every sentence wrapped in
    <s> ... </s>, end to end."""
    frequency: dict[str, int] = {}
    for sentence in sentences:
        for word in sentence.split():
            frequency[word] = frequency.get(word, 0) + 1
    ranked = sorted(frequency, key=lambda w: (-frequency[w], w))
    if vocabulary_size is not None:
        ranked = ranked[:vocabulary_size]
    known = set(ranked) | {UNK, BOS, EOS}
    words = [UNK, BOS, EOS] + ranked + sorted(set(extra_words) - known)
    index = {word: i for i, word in enumerate(words)}
    ids = array("q")  # 8 bytes a word, where a list of ints would take about 36
    lengths = np.empty(len(sentences), dtype=np.int64)
    for n, sentence in enumerate(sentences):
        tokens = sentence.split()
        ids.append(1)
        ids.extend(index.get(word, 0) for word in tokens)
        ids.append(2)
        lengths[n] = len(tokens) + 2
    stream = np.frombuffer(ids, dtype=np.int64).copy()
    sentence_of_position = np.repeat(np.arange(len(sentences)), lengths)
    return words, stream, sentence_of_position


def _count(stream: np.ndarray, sentence_of_position: np.ndarray, order: int, vocab: int,
           source_of_position: np.ndarray | None = None, sources: int = 1) -> list[NgramTable]:
    """Tables of every order 1..`order`, with raw and Kneser-Ney adjusted counts; with `sources` > 1, also each
    row's raw count in each source text (`count_by_source`), the text of a position given by `source_of_position`."""

    def by_source(rows: np.ndarray, rows_total: int, source: np.ndarray) -> np.ndarray:
        return np.bincount(source * rows_total + rows, minlength=sources * rows_total).reshape(sources, rows_total)

    tables: list[NgramTable] = []
    unigram_count = np.bincount(stream, minlength=vocab)
    # row_at[i]: the row of the (k-1)-gram starting at position i, or -1 if it leaves its sentence
    row_at = stream.copy()
    tables.append(NgramTable(context=np.zeros(vocab, np.int64), word=np.arange(vocab), suffix=np.zeros(vocab, np.int64),
                             count=unigram_count, adjusted=unigram_count))
    if sources > 1:
        tables[0].count_by_source = by_source(stream, vocab, source_of_position)
    for k in range(2, order + 1):
        n = len(stream) - k + 1
        valid = (sentence_of_position[:n] == sentence_of_position[k - 1:]) & (row_at[:n] >= 0)
        starts = np.nonzero(valid)[0]
        keys = row_at[starts] * vocab + stream[starts + k - 1]
        unique_keys, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                        return_counts=True)
        inverse = inverse.reshape(-1)
        suffix = row_at[starts[first] + 1]  # the (k-1)-gram one word later
        tables.append(NgramTable(context=unique_keys // vocab, word=unique_keys % vocab, suffix=suffix,
                                 count=counts.astype(np.int64), adjusted=counts.astype(np.int64)))
        if sources > 1:
            tables[-1].count_by_source = by_source(inverse, len(unique_keys), source_of_position[starts])
        row_at = np.full(len(stream), -1, dtype=np.int64)
        row_at[starts] = inverse
    for table, adjusted in zip(tables, _kneser_ney_counts(tables, [table.count for table in tables])):
        table.adjusted = adjusted
    return tables


def _kneser_ney_counts(tables: list[NgramTable], counts: list[np.ndarray]) -> list[np.ndarray]:
    """The counts Kneser-Ney discounts, from raw counts per order (of all the text, or of one source text): below the
    top order, the number of distinct words an n-gram follows; nothing precedes <s>, so n-grams that start with it
    keep their raw counts."""
    adjusted = list(counts)
    starts_with_bos = np.arange(len(tables[0])) == 1
    for k in range(1, len(tables)):
        lower, upper = tables[k - 1], tables[k]
        continuation = np.bincount(upper.suffix[counts[k] > 0], minlength=len(lower))
        adjusted[k - 1] = np.where(starts_with_bos, counts[k - 1], continuation)
        starts_with_bos = starts_with_bos[upper.context]
    return adjusted


def _discounts(adjusted: np.ndarray, fallback: Sequence[float] | None) -> tuple[float, float, float]:
    """D1, D2, D3+ from counts of counts (Chen & Goodman 1998, eq. 26)."""
    n1, n2, n3, n4 = (int(np.count_nonzero(adjusted == c)) for c in (1, 2, 3, 4))
    try:
        y = n1 / (n1 + 2 * n2)
        discounts = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    except ZeroDivisionError:
        discounts = None
    if discounts is None or not all(0 < d < c for d, c in zip(discounts, (1, 2, 3))):
        if fallback is None:
            raise AsrError("too little text to estimate Kneser-Ney discounts (counts of counts "
                           f"{n1}, {n2}, {n3}, {n4}); use more text or --discount-fallback")
        log.warning("counts of counts %d, %d, %d, %d cannot give Kneser-Ney discounts; using %s", n1, n2, n3, n4,
                    " ".join(map(str, fallback)))
        return tuple(float(d) for d in fallback)
    return discounts


def _estimate(tables: list[NgramTable], vocab: int,
              fallback: Sequence[float] | None) -> list[tuple[float, float, float]]:
    """Interpolated probabilities of every n-gram, and each context's backoff weight."""
    used_discounts = []
    lower_prob = None
    for k, table in enumerate(tables, start=1):
        d1, d2, d3 = _discounts(table.adjusted[table.adjusted > 0], fallback)
        used_discounts.append((d1, d2, d3))
        a = table.adjusted.astype(np.float64)
        if k == 1:
            a[1] = 0.0  # <s> is never predicted, so it takes no unigram mass
        discount = np.select([a == 0, a == 1, a == 2], [0.0, d1, d2], d3)
        contexts = 1 if k == 1 else len(tables[k - 2])
        context = np.zeros(len(table), np.int64) if k == 1 else table.context
        total = np.bincount(context, weights=a, minlength=contexts)
        freed = np.bincount(context, weights=discount, minlength=contexts)  # D1*N1 + D2*N2 + D3*N3+
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(total > 0, freed / total, 1.0)
            own = np.where(total[context] > 0, (a - discount) / total[context], 0.0)
        if k == 1:
            # Uniform over everything a unigram can predict: all words but <s>.
            prob = own + gamma[0] / (vocab - 1)
            prob[1] = 0.0
        else:
            prob = own + gamma[context] * lower_prob[table.suffix]
            tables[k - 2].log10_backoff = np.log10(gamma)
        table.log10_prob = np.log10(np.maximum(prob, 1e-99))
        lower_prob = prob
    tables[-1].log10_backoff = np.zeros(len(tables[-1]))
    return used_discounts


def _mark_kept(tables: list[NgramTable], prune: Sequence[int]) -> None:
    """Keep the n-grams seen more than prune[k] times, and every context of a kept n-gram."""
    for table in tables:
        table.keep = np.ones(len(table), dtype=bool)
    if not any(prune):
        return
    for k in range(len(tables) - 1, 0, -1):  # top order down, so kept n-grams keep their contexts
        table = tables[k]
        threshold = prune[k] if k < len(prune) else prune[-1]
        table.keep &= table.count > threshold
        if k + 1 < len(tables):
            upper = tables[k + 1]
            table.keep[upper.context[upper.keep]] = True


def _prune(tables: list[NgramTable], prune: Sequence[int]) -> None:
    """Drop rare n-grams (raw count <= prune[k]) and renormalise their contexts' backoff weights."""
    _mark_kept(tables, prune)
    if not any(prune):
        return
    for k in range(1, len(tables)):
        table, lower = tables[k], tables[k - 1]
        pruned_any = np.bincount(table.context[~table.keep], minlength=len(lower)) > 0
        lower.log10_backoff = np.where(pruned_any, _normalising_backoff(tables, k), lower.log10_backoff)


def _normalising_backoff(tables: list[NgramTable], k: int) -> np.ndarray:
    """log10 backoff weight of each row of table k-1, as a context, that makes its distribution sum to one: the mass
    its kept n-grams leave, over what backing off would give the same words (the probability of their suffixes)."""
    table = tables[k]
    contexts = len(tables[k - 1])
    kept = table.keep
    kept_mass = np.bincount(table.context[kept], weights=10.0 ** table.log10_prob[kept], minlength=contexts)
    backoff_mass = np.bincount(table.context[kept], weights=10.0 ** lower_order_prob(tables, k, table.suffix[kept]),
                               minlength=contexts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.clip(1 - kept_mass, 1e-99, None) / np.clip(1 - backoff_mass, 1e-99, None))


def _mix(tables: list[NgramTable], weights: Sequence[float], vocab: int,
         fallback: Sequence[float] | None) -> list[list[tuple[float, float, float]]]:
    """Linear interpolation of one Kneser-Ney model per source text, written as one backoff model.

    Every model is estimated on the same rows (the n-grams of all the texts), so a row a text never saw gets that
    text's backed-off probability, and each row's probability is the weighted sum of the models' (exact for every
    n-gram in the file); backoff weights are then recomputed so each context sums to one. This is the usual static
    mixture (Stolcke's SRILM `ngram -mix-lm` does the same); only backed-off words are approximate.
    """
    mixed = [np.zeros(len(table)) for table in tables]
    discounts = []
    counts_by_source = [table.count_by_source for table in tables]
    for source, weight in enumerate(weights):
        counts = [by_source[source] for by_source in counts_by_source]
        model = [NgramTable(context=t.context, word=t.word, suffix=t.suffix, count=c, adjusted=a)
                 for t, c, a in zip(tables, counts, _kneser_ney_counts(tables, counts))]
        discounts.append(_estimate(model, vocab, fallback))
        for total, table in zip(mixed, model):
            total += weight * 10.0 ** table.log10_prob
    for table, total in zip(tables, mixed):
        table.log10_prob = np.log10(np.maximum(total, 1e-99))
        # Pruning then keeps an n-gram some text saw more than the threshold, as mixing each text's pruned model
        # would: a text given twice (say, alone and in a pool) does not count its n-grams twice.
        table.count = table.count_by_source.max(axis=0)
        table.count_by_source = None
    return discounts


def lower_order_prob(tables: list[NgramTable], k: int, rows: np.ndarray) -> np.ndarray:
    """log10 probabilities of rows of table index k-1 (<s> counts as never predicted)."""
    prob = tables[k - 1].log10_prob[rows]
    return np.where((rows == 1) & (k == 1), -99.0, prob)


def _ngram_words(tables: list[NgramTable], k: int, rows: np.ndarray) -> np.ndarray:
    """(len(rows), k) word ids of the given rows of order k."""
    columns = []
    for order in range(k, 0, -1):
        table = tables[order - 1]
        columns.append(table.word[rows])
        rows = table.context[rows]
    return np.stack(columns[::-1], axis=1)


def write_arpa(tables: list[NgramTable], words: list[str], path: str | os.PathLike) -> tuple[int, ...]:
    """Write the kept n-grams as ARPA text (log10 probabilities and backoffs), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    word_array = np.asarray(words, dtype=object)
    sizes = []
    for k, table in enumerate(tables, start=1):
        keep = table.keep.copy()
        if k == 1:
            keep[:] = True  # every word of the vocabulary, <unk> and <s> included
        sizes.append(int(keep.sum()))
    with open(tmp, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for k, size in enumerate(sizes, start=1):
            out.write(f"ngram {k}={size}\n")
        for k, table in enumerate(tables, start=1):
            out.write(f"\n\\{k}-grams:\n")
            rows = np.arange(len(table)) if k == 1 else np.nonzero(table.keep)[0]
            text = [" ".join(row) for row in word_array[_ngram_words(tables, k, rows)]]
            prob = table.log10_prob[rows].copy()
            if k == 1:
                prob[1] = -99.0  # <s> is never predicted
            backoff = table.log10_backoff[rows]
            top = k == len(tables)
            lines = []
            for p, ngram, b in zip(prob.tolist(), text, backoff.tolist()):
                lines.append(f"{p:.7g}\t{ngram}\n" if top else f"{p:.7g}\t{ngram}\t{b:.7g}\n")
            out.writelines(lines)
        out.write("\n\\end\\\n")
    os.replace(tmp, path)
    return tuple(sizes)


def build_arpa(sentences: Sequence[str], output: str | os.PathLike, order: int = 4,
               prune: Sequence[int] = (), vocabulary_size: int | None = None,
               discount_fallback: Sequence[float] | None = None, extra_words: Iterable[str] = ()) -> LmSummary:
    """Estimate an interpolated modified Kneser-Ney model of `order` from `sentences` and write it as ARPA.

    `prune[k]` (for orders k+1 = 2, 3, ...) drops n-grams seen at most that many times, as `lmplz --prune 0 0 1`
    does with its first value (unigrams) always 0. `vocabulary_size` keeps the most frequent words, the rest
    become <unk>. `discount_fallback` is used where the text is too small to estimate a discount. `extra_words`
    join the vocabulary (as unigrams with no count) even if the text lacks them.
    """
    return build_mixed_arpa([sentences], (1.0,), output, order, prune, vocabulary_size, discount_fallback,
                            extra_words)


def build_mixed_arpa(texts: Sequence[Sequence[str]], weights: Sequence[float], output: str | os.PathLike,
                     order: int = 4, prune: Sequence[int] = (), vocabulary_size: int | None = None,
                     discount_fallback: Sequence[float] | None = None, extra_words: Iterable[str] = ()) -> LmSummary:
    """One Kneser-Ney model per text (each a list of sentences), mixed with these weights (normalised to sum to one)
    and written as one ARPA model; `build_arpa`'s options apply to all. Pruning keeps the n-grams that some text saw
    more than its threshold: those of every text's own pruned model."""
    if not 1 <= order <= 6:
        raise AsrError(f"order must be between 1 and 6 (KenLM's limit), not {order}")
    prune = list(prune)
    if prune and prune[0] != 0:
        raise AsrError("unigrams cannot be pruned: the first --prune value must be 0")
    if any(b < a for a, b in zip(prune, prune[1:])):
        raise AsrError(f"--prune thresholds must not fall with the order, got {prune}")
    if len(weights) != len(texts) or not all(w > 0 and math.isfinite(w) for w in weights):
        raise AsrError(f"give one positive mixture weight per text: {len(texts)} texts, weights {list(weights)}")
    for number, sentences in enumerate(texts, 1):
        if not sentences:
            raise AsrError("no text to train a language model on" if len(texts) == 1
                           else f"text {number} of the mixture has no sentences")
    weights = tuple(w / sum(weights) for w in weights)
    sentences = [sentence for text in texts for sentence in text]
    words, stream, sentence_of_position = _encode(sentences, vocabulary_size, extra_words)
    if len(texts) == 1:
        tables = _count(stream, sentence_of_position, order, len(words))
        discounts = [_estimate(tables, len(words), discount_fallback)]
        _prune(tables, prune)
    else:
        source_of_sentence = np.repeat(np.arange(len(texts)), [len(text) for text in texts])
        tables = _count(stream, sentence_of_position, order, len(words),
                        source_of_sentence[sentence_of_position], len(texts))
        discounts = _mix(tables, weights, len(words), discount_fallback)
        _mark_kept(tables, prune)
        for k in range(1, len(tables)):
            tables[k - 1].log10_backoff = _normalising_backoff(tables, k)
        tables[-1].log10_backoff = np.zeros(len(tables[-1]))
    sizes = write_arpa(tables, words, output)
    return LmSummary(order=order, sentences=len(sentences), words=int(len(stream) - 2 * len(sentences)),
                     vocabulary=len(words), ngrams=sizes, discounts=tuple(tuple(d) for d in discounts),
                     weights=weights)


def read_word_list(path: str | os.PathLike, min_count: int = 0) -> list[str]:
    """Words of a (gzipped) list, one a line, normalised to the recogniser's alphabet. A line may carry a count after
    a tab (as LibriSpeech's word-count lists do); with `min_count`, words counted fewer times are left out."""
    path = Path(path)
    if not path.is_file():
        raise AsrError(f"{path}: no such word list; give a file with one word per line")
    opener = gzip.open if path.suffix == ".gz" else open
    words = []
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                fields = line.rstrip("\n").split("\t")
                word = normalize_text(fields[0])
                if not word:
                    continue
                if " " in word:
                    raise AsrError(f"{path}, line {number}: {fields[0]!r} is not one word; give one word per line")
                if min_count:
                    try:
                        if int(fields[1]) < min_count:
                            continue
                    except (IndexError, ValueError):
                        raise AsrError(f"{path}, line {number}: no count after a tab, which a minimum count needs; "
                                       "drop the minimum or add counts") from None
                words.append(word)
    except (OSError, EOFError, UnicodeError) as error:
        raise AsrError(f"{path}: cannot read the word list ({error}); check the file is plain text or gzip") from None
    return words


def arpa_vocabulary(path: str | os.PathLike) -> list[str]:
    """The words of an ARPA file's unigram section (gzipped or not), in file order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    words, in_unigrams = [], False
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("\\1-grams:"):
                    in_unigrams = True
                elif in_unigrams:
                    if line.startswith("\\"):
                        break
                    fields = line.split("\t") if "\t" in line else line.split()
                    if len(fields) >= 2:
                        words.append(fields[1].strip())
    except (OSError, EOFError, UnicodeError) as error:
        raise AsrError(f"{path}: cannot read the ARPA file ({error})") from None
    if not words:
        raise AsrError(f"{path}: no \\1-grams: section; is this an ARPA language model?")
    return words
