"""CTC prefix beam search with shallow fusion of a word n-gram language model, compiled with numba.

The search is the CTC prefix beam search of `asr.decode.beam_search` (Hannun et al., 2014). A prefix's score is

    log P_ctc(prefix) + lm_weight * log P_lm(words) + word_bonus * #words + unk_penalty * #unknown words

where a word is scored when the space after it (or the end of the utterance) is emitted, and a partial word that
no known word starts with takes the unknown-word penalty at once, so hopeless spellings fall out of the beam early.
While ranking, a partial word that known words start with counts as the best unigram log-prob among those words
(lookahead): this keeps narrow beams from filling with prefixes that have simply not paid for their word yet.
An unknown word pays the penalty once per 6 letters (at least once), as pyctcdecode does: with a flat penalty,
the search learns to run several misrecognised words together into one long "unknown word". With the LM on, of
two prefixes in the same LM state with the same open word only the better is kept (recombination, as flashlight
and pyctcdecode do too): the other can hardly ever overtake it, and its place in the beam is worth more to another.

Two exceptions to the pruning keep words from being cut out of a transcript: a prefix is spared the score threshold
by how far its last word fell short of the estimate it was ranked with (else a prefix that never ends its word can
outlive every rival that paid for theirs), and a prefix in mid-word also tries its likeliest letter towards a known
word, even under the character threshold (else a letter the model all but swallowed leaves every prefix waiting on
blanks). BENCHMARKS.md has the utterances that showed both.

Speed comes from three choices:
* the whole frame loop runs in numba, without the GIL, on flat arrays (prefixes are nodes of a trie of tokens);
* KenLM is asked only about (LM state, word) pairs not seen before, and from numba itself, through a small C++
  bridge (asr/kenlm_native.py): a question costs a tenth of a microsecond and the GIL stays released. Where the
  bridge is not built, numba stops at a frame that needs an answer, Python asks the `kenlm` package and fills the
  cache, and numba runs that frame again: the same results, at about half the speed on unseen speech;
* known words are followed letter by letter in a lexicon trie, so "is this a word" costs one array lookup.

Memory stays bounded on hour-long inputs: when the prefix trie fills, nodes no live prefix uses are dropped, and
LM states no live prefix uses are forgotten with the cache.
"""

from __future__ import annotations

import math
import queue
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

import numba
import numpy as np

from asr import limits
from asr.decode import Hypothesis, _as_numpy
from asr.errors import AsrError
from asr.kenlm_native import NO_NEXT, NO_SCORE
from asr.lm import LanguageModel
from asr.text import Vocabulary

LN10 = math.log(10.0)
NEG_INF = -np.inf
_NEED_LM, _NEED_ROOM, _NEED_CACHE = 1, 2, 3  # why the compiled search stopped before the last frame
MIN_THREADED_BEAM = 32  # decode_batch uses threads from this beam size up
UNK_CHARS = 6.0  # an unknown word longer than this many letters pays the penalty once per this many


@dataclass(frozen=True)
class DecoderOptions:
    """How the search weighs and prunes. Natural-log units throughout."""

    beam_size: int = 32
    lm_weight: float = 0.5  # alpha: how much the LM's log-probability counts against the acoustic one
    word_bonus: float = 1.0  # beta: added per word, against the LM's bias towards fewer, shorter words
    # Added per word the LM does not know, and to a partial word no known word starts; once per 6 letters for
    # longer ones, or run-together letters would pay the price of a single unknown word.
    unk_penalty: float = -10.0
    # Subtracted from the blank's log-probability in every frame before the search. On voices it did not train on,
    # a CTC model's blank wins frames that held a quiet character, so words lose letters and the LM mends them
    # into other words; a small penalty trades those deletions for a few insertions (`asr lm tune` picks it).
    blank_penalty: float = 0.0
    beam_threshold: float = 25.0  # prefixes scoring more than this below the best are dropped
    token_min_logp: float = -10.0  # characters less likely than this in a frame are not tried (the best always is)
    lexicon_only: bool = False  # spell only words the LM knows
    # Rank a prefix in the middle of a known word as if the word's LM score were already the best unigram score of
    # the words it can still become ("smearing", as flashlight's lexicon search does): otherwise a prefix that
    # has just paid for a word looks worse than one that has yet to pay, and narrow beams fill with the latter.
    lm_lookahead: bool = True
    # Rank a prefix with an open word as if that word's bonus were already paid: the same reasoning for the word
    # bonus (any sign) as for the LM score.
    word_bonus_lookahead: bool = True

    def __post_init__(self):
        # asr.limits holds every range: the unknown-word penalty is added to a log-probability (at most 0), the
        # blank penalty subtracted from one (at least 0); NaN, infinities and absurd sizes are refused.
        limits.check_beam_size(self.beam_size)
        limits.check_lm_weight(self.lm_weight)
        limits.check_word_bonus(self.word_bonus)
        limits.check_unk_penalty(self.unk_penalty)
        limits.check_blank_penalty(self.blank_penalty)
        limits.check_float("beam threshold", self.beam_threshold, 1e-3, 1e30)  # 1e9 and up: no threshold
        limits.check_float("token threshold", self.token_min_logp, -1e30, 0.0)  # -1e9 and below: every token


# ----------------------------------------------------------------------------------------------- lexicon trie

@dataclass(frozen=True)
class Lexicon:
    """The LM's spellable words as a trie over token ids, in compressed-row form: the children of node n are
    child[first[n]:first[n + 1]], reached by tokens token[first[n]:first[n + 1]]; word[n] is the word id ending at
    n, or -1. Node 0 is the root (the start of a word)."""

    token: np.ndarray
    child: np.ndarray
    words: tuple[str, ...]  # word id -> text, as the LM spells it
    # The per-node fields, one 32-byte row a node (first, letters, word, lookahead's float64 bits): a node the search
    # meets is one cache line, not four arrays. (Cache misses on them were a quarter of the search's time.) The
    # properties below read them by name.
    rows: np.ndarray

    @property
    def row_floats(self) -> np.ndarray:
        """`rows` read as float64 (the lookahead column)."""
        return self.rows.view(np.float64)

    @property
    def first(self) -> np.ndarray:
        """Per node, where its children start in `child`; one more entry closes the last node's."""
        return np.append(self.rows[:, 0], len(self.child))

    @property
    def letters(self) -> np.ndarray:
        """Per node, a bitmask of the tokens that go on from it (bit t for token t): its children's, and the space
        where a word ends (not at the root)."""
        return self.rows[:, 1]

    @property
    def word(self) -> np.ndarray:
        """Per node, the id of the word ending there, or -1."""
        return self.rows[:, 2]

    @property
    def lookahead(self) -> np.ndarray:
        """Per node, the best unigram log-prob (natural log) of the words below it; 0 at the root and without
        scores."""
        return self.row_floats[:, 3]


def _best_below(parent: np.ndarray, word: np.ndarray, word_scores: np.ndarray) -> np.ndarray:
    """For each trie node, the best score of a word ending at or below it."""
    best = np.full(len(word), -np.inf)
    ends = word >= 0
    best[ends] = word_scores[word[ends]]
    _raise_parents(best, parent)
    best[0] = 0.0
    return best


@numba.njit(cache=True)
def _raise_parents(best, parent_of):
    for node in range(len(best) - 1, 0, -1):  # a child's id is higher than its parent's: deepest first
        if best[node] > best[parent_of[node]]:
            best[parent_of[node]] = best[node]


def build_lexicon(words: Sequence[str], vocabulary: Vocabulary, unigram_score=None) -> Lexicon:
    """The trie of `words` the acoustic model can spell; `unigram_score(word)` (natural log), when given, sets the
    lookahead of each node. Word ids follow the words' order by token."""
    if len(vocabulary) > 63:  # Lexicon.letters is a bitmask over tokens in an int64
        raise AsrError(f"the LM search handles vocabularies of up to 63 tokens, not {len(vocabulary)}")
    letters = {char: i for i, char in enumerate(vocabulary.tokens)
               if len(char) == 1 and i not in (vocabulary.blank, vocabulary.space)}
    # <s>, </s>, <unk>, and words with characters the acoustic model cannot emit are left out.
    spellable_word = re.compile("[" + re.escape("".join(letters)) + "]+").fullmatch
    as_token_ids = {ord(char): i for char, i in letters.items()}  # a word as a string of token ids
    spellable = sorted({w for w in words if spellable_word(w)}, key=lambda w: w.translate(as_token_ids))
    if not spellable:
        raise AsrError("the language model has no word the acoustic model can spell (its alphabet is "
                       f"{''.join(vocabulary.tokens[2:])!r}); is the LM lower case?")
    codes = np.frombuffer("".join(w.translate(as_token_ids) for w in spellable).encode("utf-32-le"), dtype=np.uint32)
    offsets = np.zeros(len(spellable) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in spellable], out=offsets[1:])
    parent, token, word = _sorted_words_trie(codes.astype(np.int32), offsets)
    goes_on = np.zeros(len(parent), dtype=np.int64)
    np.bitwise_or.at(goes_on, parent[1:], np.left_shift(1, token[1:].astype(np.int64)))
    goes_on[1:][word[1:] >= 0] |= 1 << vocabulary.space
    # Compressed rows: a node's children are contiguous, in token order (the pass made them in that order).
    order = np.argsort(parent[1:], kind="stable") + 1
    first = np.zeros(len(parent) + 1, dtype=np.int32)
    np.cumsum(np.bincount(parent[1:], minlength=len(parent)), out=first[1:])
    child, token = order.astype(np.int32), token[order]
    if unigram_score is None:
        lookahead = np.zeros(len(word))
    else:
        lookahead = _best_below(parent, word, np.array([unigram_score(w) for w in spellable]))
    rows = np.empty((len(word), 4), dtype=np.int64)
    rows[:, 0], rows[:, 1], rows[:, 2] = first[:-1], goes_on, word
    rows[:, 3] = lookahead.astype(np.float64).view(np.int64)
    return Lexicon(token, child, tuple(spellable), rows)


@numba.njit(cache=True)
def _sorted_words_trie(codes, offsets):
    """The trie of distinct words given in sorted order (word w is codes[offsets[w]:offsets[w + 1]]): each word
    shares the nodes of its common prefix with the word before and adds the rest. -> per node (parent, token,
    word id ending there or -1); node 0 is the root."""
    size = len(codes) + 1
    parent = np.zeros(size, dtype=np.int32)
    token = np.full(size, -1, dtype=np.int32)
    word = np.full(size, -1, dtype=np.int32)
    path = np.zeros(size, dtype=np.int32)  # path[d]: the node at depth d on the previous word's way
    count, previous, previous_length = 1, 0, 0
    for w in range(len(offsets) - 1):
        begin, length = offsets[w], offsets[w + 1] - offsets[w]
        common = 0
        while common < min(length, previous_length) and codes[previous + common] == codes[begin + common]:
            common += 1
        for depth in range(common, length):
            parent[count] = path[depth]
            token[count] = codes[begin + depth]
            path[depth + 1] = count
            count += 1
        word[path[length]] = w
        previous, previous_length = begin, length
    return parent[:count], token[:count], word[:count]


# ----------------------------------------------------------------------------------------------- compiled core

@numba.njit(cache=True, nogil=True, inline="always")
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(cache_key, key):
    """The slot of `key` in the LM-score cache (an open-addressing hash table in arrays, faster than a numba Dict), or
    the empty slot (-1) where it would go. The table is never more than half full."""
    mask = cache_key.shape[0] - 1
    h = ((key * -7046029254386353131) >> 32) & mask  # Fibonacci hashing: the product's high bits are well mixed
    while cache_key[h] != key and cache_key[h] != -1:
        h = (h + 1) & mask
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _ask(requests, n_req, state, word):
    """Add the question (state, word) to `requests` unless it is there already (or the list is full); -> count."""
    for i in range(n_req):
        if requests[i, 0] == state and requests[i, 1] == word:
            return n_req
    if n_req < requests.shape[0]:
        requests[n_req, 0] = state
        requests[n_req, 1] = word
        n_req += 1
    return n_req


@numba.njit(cache=True, nogil=True, inline="always")
def _score_slot(state, word, n_words_key, cache_key, cache_score, cache_state, cache_count, lm_score, lm_next,
                lm_context, kenlm_words):
    """The cache slot of log P(word | state) (natural log) and the state it leads to, asked of KenLM through the
    bridge if not cached yet; -1 if not cached and there is no bridge (the caller then queues the question)."""
    key = state * n_words_key + word
    slot = _slot(cache_key, key)
    if cache_key[slot] != key:
        if lm_context == 0:
            return -1
        cache_key[slot] = key
        cache_score[slot] = lm_score(lm_context, state, kenlm_words[word]) * LN10
        cache_state[slot] = lm_next(lm_context)
        cache_count[0] += 1
    return slot


@numba.njit(cache=True, nogil=True)
def _store(cache_key, cache_score, cache_state, cache_count, keys, scores, next_states):
    for i in range(keys.shape[0]):
        slot = _slot(cache_key, keys[i])
        if cache_key[slot] != keys[i]:
            cache_key[slot] = keys[i]
            cache_count[0] += 1
        cache_score[slot] = scores[i]
        cache_state[slot] = next_states[i]


@numba.njit(cache=True, nogil=True, inline="always")
def _bits_below(mask, bit):
    """How many bits of `mask` below `bit` are set (a population count; mask < 2**63)."""
    x = mask & ((1 << bit) - 1)
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((x * 0x0101010101010101) >> 56) & 0xFF


@numba.njit(cache=True, nogil=True, inline="always")
def _open_word_estimate(lex_node, length, lm_weight, unk_penalty, lookahead, node_lookahead, unk_lookahead):
    """What an open word of `length` letters at lexicon node `lex_node` (-1: no known word starts so) is expected
    to add when it ends, bar the word bonus: the unknown-word penalty if no known word starts so, and with the
    lookahead, the best unigram log-prob of the words below its node (`node_lookahead`, Lexicon.lookahead) or
    <unk>'s. 0 at a word's start."""
    if lex_node == 0:
        return 0.0
    if lex_node < 0:
        return unk_penalty * max(1.0, length / UNK_CHARS) + (lm_weight * unk_lookahead if lookahead else 0.0)
    return lm_weight * node_lookahead if lookahead else 0.0


@numba.njit(cache=True, nogil=True)
def _search(log_probs, t, params, blank, space, ntok, unk_id,
            node_parent, node_token, node_frame, node_seen, node_best, node_count, children,
            beam, beam_p, beam_count,
            cand, cand_p, slot_of, merge_table,
            lex_rows, lex_row_floats, lex_child,
            cache_key, cache_score, cache_state, cache_count, n_words_key, requests, lm_score, lm_next, lm_context,
            kenlm_words):
    """Advance the beam from frame `t`. Returns (frame reached, status): status 0 when all frames are done,
    _NEED_LM when `requests` holds (state, word) pairs to score first (only without the KenLM bridge: lm_context
    0), _NEED_ROOM when the trie needs compaction, _NEED_CACHE when the LM-score cache may fill in this frame.

    beam[b] = (node, LM state, words, unknown words, lexicon node, letters of the open word, the tokens that go on
    from the lexicon node as a bitmask (Lexicon.letters; -1 until looked up));
    beam_p[b] = (p_blank, p_label, LM log-prob, unknown-word penalty units, shortfall of the last word: how much
    less it scored when it ended than the estimate it had been ranked with, its open word's estimate:
    `_open_word_estimate`, kept so that the ranking reads no trie).
    node_frame[n] is the frame at which node n's token was emitted on the likeliest way into that prefix
    (node_best[n], its log-prob then), counted since the prefix last entered the beam (node_seen[n]: the last
    frame it was in the beam).
    """
    lm_weight, word_bonus, unk_penalty, beam_threshold, token_min_logp = params[0], params[1], params[2], params[3], \
        params[4]
    lexicon_only = params[5] > 0
    recombine = params[6] > 0
    lookahead = params[7] > 0
    unk_lookahead = params[8]
    word_bonus_ahead = params[9] > 0
    beam_size = cand.shape[0] // ntok
    frames = log_probs.shape[0]
    capacity = node_parent.shape[0]
    tried = np.empty(ntok + 1, dtype=np.int64)
    score_of = np.empty(cand.shape[0])  # each candidate's ranking score, and those near the best (reused buffers)
    near = np.empty(cand.shape[0], dtype=np.int64)
    while t < frames:
        if node_count[0] + beam_count[0] * ntok >= capacity:
            return t, _NEED_ROOM
        if 2 * (cache_count[0] + beam_count[0] * ntok) > cache_key.shape[0]:
            return t, _NEED_CACHE
        row = log_probs[t]
        best_token = 0
        for c in range(ntok):
            if row[c] > row[best_token]:
                best_token = c
        n_tried = 0  # the tokens every prefix tries in this frame (blank always, so each has a way through it)
        tried_letters = 0  # the same as a bitmask
        for c in range(ntok):
            if row[c] >= token_min_logp or c == best_token or c == blank:
                tried[n_tried] = c
                n_tried += 1
                tried_letters |= 1 << c
        n_cand = 0
        n_req = 0
        for b in range(beam_count[0]):
            node = beam[b, 0]
            p_blank, p_label = beam_p[b, 0], beam_p[b, 1]
            total = _logaddexp(p_blank, p_label)
            last = node_token[node]
            # The prefix's own candidate slot (empty, with its LM side), which the blank (tried in every frame)
            # always needs. (Written out, like the letter step below: numba counts references to arrays passed to
            # a helper with atomic instructions, a tenth of the search on these paths; the rarer word ends still
            # call _score_slot, which showed no such cost.)
            same = slot_of[node]
            if same < 0:
                same = n_cand
                n_cand += 1
                slot_of[node] = same
                for k in range(beam.shape[1]):
                    cand[same, k] = beam[b, k]
                cand_p[same, 0] = -np.inf
                cand_p[same, 1] = -np.inf
                for k in range(2, beam_p.shape[1]):  # its LM side, unchanged
                    cand_p[same, k] = beam_p[b, k]
            # A prefix in mid-word also tries the likeliest letter that keeps it on the way to a known word
            # (or its space, if it is one). Where the model hears letters no word continues with (a swallowed N
            # in "DAM-ABLE"), every prefix could otherwise only wait on blanks, and the first word that fits the
            # later letters swallows the words between ("THE DEMOBBED" for "THE DAMNABLE FEATURE OF THE BARBED").
            # (The letters that go on are kept with the prefix as a bitmask, so this reads no trie.)
            n_try = n_tried
            if beam[b, 4] > 0 and (beam[b, 6] & tried_letters) == 0:  # else the likeliest is tried already
                own_best, own_lp = -1, -np.inf  # the likeliest of the tokens that go on
                for c in range(ntok):
                    if (beam[b, 6] >> c) & 1 and row[c] > own_lp:
                        own_best, own_lp = c, row[c]
                if own_best >= 0:
                    tried[n_tried] = own_best
                    n_try += 1
            for i in range(n_try):
                c = tried[i]
                lp = row[c]
                if c == blank or (c == space and (node == 0 or last == space)):
                    # A blank, or a space with no word before it to end, leaves the prefix as it is.
                    cand_p[same, 0] = _logaddexp(cand_p[same, 0], total + lp)
                    continue
                if c == last:
                    # A repeat without a blank between collapses into the same prefix ...
                    cand_p[same, 1] = _logaddexp(cand_p[same, 1], p_label + lp)
                    source = p_blank  # ... and only paths ending in a blank start a new, doubled letter
                    if source == NEG_INF:
                        continue
                else:
                    source = total
                # Extend the prefix by c: work out the LM side of the longer prefix.
                state, n_words, n_unk, lex_node, length = beam[b, 1], beam[b, 2], beam[b, 3], beam[b, 4], beam[b, 5]
                lm, unk_units, shortfall = beam_p[b, 2], beam_p[b, 3], beam_p[b, 4]
                if c == space:
                    estimate = beam_p[b, 5]
                    word = lex_rows[lex_node, 2] if lex_node >= 0 else -1
                    if word < 0:
                        if lexicon_only:
                            continue
                        word = unk_id
                        n_unk += 1
                        unk_units += max(1.0, length / UNK_CHARS)
                    slot = _score_slot(state, word, n_words_key, cache_key, cache_score, cache_state, cache_count,
                                       lm_score, lm_next, lm_context, kenlm_words)
                    if slot < 0:  # no bridge: collect the question, run the frame again once Python answers
                        n_req = _ask(requests, n_req, state, word)
                        continue
                    score = cache_score[slot]
                    lm += score
                    shortfall = max(0.0, estimate - lm_weight * score - unk_penalty * (unk_units - beam_p[b, 3]))
                    state = cache_state[slot]
                    n_words += 1
                    lex_node = 0
                    length = 0
                else:
                    length += 1
                    if lex_node >= 0:  # one step down the lexicon trie (-1: no known word starts so)
                        # The children are in token order: c's is the one after those of the tokens below c.
                        goes_on = lex_rows[lex_node, 1] & ~(1 << space)
                        if (goes_on >> c) & 1:
                            lex_node = lex_child[lex_rows[lex_node, 0] + _bits_below(goes_on, c)]
                        else:
                            lex_node = -1
                    if lex_node < 0 and lexicon_only:
                        continue
                if n_req > 0:
                    continue  # this frame will be run again; skip the bookkeeping
                child = children[node, c]
                if child < 0:
                    child = node_count[0]
                    node_count[0] += 1
                    for k in range(ntok):  # (loops, not slices: numba's slices cost more at this size)
                        children[child, k] = -1
                    node_parent[child] = node
                    node_token[child] = c
                    node_seen[child] = -2
                    children[node, c] = child
                slot = slot_of[child]
                if slot < 0 and node_seen[child] != t - 1:
                    node_best[child] = NEG_INF  # a new prefix, or one back after being pruned: times start afresh
                if source + lp > node_best[child]:  # the likeliest way into this prefix so far emits c now
                    node_best[child] = source + lp
                    node_frame[child] = t
                if slot < 0:
                    slot = n_cand
                    n_cand += 1
                    slot_of[child] = slot
                    cand[slot, 0] = child
                    cand[slot, 1] = state
                    cand[slot, 2] = n_words
                    cand[slot, 3] = n_unk
                    cand[slot, 4] = lex_node
                    cand[slot, 5] = length
                    cand[slot, 6] = -1  # looked up if the prefix is kept
                    cand_p[slot, 0] = NEG_INF
                    cand_p[slot, 1] = NEG_INF
                    cand_p[slot, 2] = lm
                    cand_p[slot, 3] = unk_units
                    cand_p[slot, 4] = shortfall
                    cand_p[slot, 5] = _open_word_estimate(lex_node, length, lm_weight, unk_penalty, lookahead,
                                                          lex_row_floats[max(lex_node, 0), 3], unk_lookahead)
                cand_p[slot, 1] = _logaddexp(cand_p[slot, 1], source + lp)
        for s in range(n_cand):  # leave slot_of all -1 for the next frame
            slot_of[cand[s, 0]] = -1
        if n_req > 0:
            requests[n_req:, 0] = -1
            return t, _NEED_LM
        # Rank the candidates, drop those far below the best, keep the top beam_size. With the LM on, a prefix
        # with the same LM state and the same open word as a better one is dropped too: every future frame and
        # word adds the same to both, so it cannot overtake (bar a split of its blank- and letter-ending mass),
        # and its slot goes to a prefix that can. pyctcdecode and flashlight prune alike; without it ours
        # trailed pyctcdecode by 1.4 WER points at beam 100 (BENCHMARKS.md).
        scores = score_of[:n_cand]
        best = NEG_INF
        for s in range(n_cand):
            lex_node = cand[s, 4]
            # An open word is ranked as the word it will become: its LM and unknown-word estimate, and the word
            # bonus it will be paid at its space. Without the bonus, a negative bonus favoured prefixes in mid-word
            # over those that had just finished one, and the search lost to pyctcdecode at LM weight 0.9, bonus -2
            # (BENCHMARKS.md).
            open_word = 1.0 if lex_node != 0 and word_bonus_ahead else 0.0
            scores[s] = (_logaddexp(cand_p[s, 0], cand_p[s, 1]) + lm_weight * cand_p[s, 2]
                         + word_bonus * (cand[s, 2] + open_word) + unk_penalty * cand_p[s, 3]
                         + cand_p[s, 5])
            best = max(best, scores[s])
        # Drop those far below the best before sorting (most are). A prefix is spared the threshold by its last
        # word's shortfall: rivals in mid-word are ranked with what they hope to pay for theirs, and one that never
        # ends its word can live on blanks, bar every rival that has paid, and cut the transcript short ("OUR
        # DIMINUTION" for "OUR DIMINUTIVE FRIEND WHEN SHE COMES IN", the rest of the utterance lost).
        floor = best - beam_threshold
        n_near = 0
        for s in range(n_cand):
            if scores[s] >= floor - cand_p[s, 4]:
                near[n_near] = s
                n_near += 1
        if n_near <= 64:  # an insertion sort of a few is much faster than argsort's allocations
            for i in range(1, n_near):
                s, score = near[i], scores[near[i]]
                j = i - 1
                while j >= 0 and scores[near[j]] < score:
                    near[j + 1] = near[j]
                    j -= 1
                near[j + 1] = s
            order = near[:n_near]
        else:
            order = near[:n_near][np.argsort(-scores[near[:n_near]])]
        kept = 0
        mask = merge_table.shape[0] - 1
        if recombine:
            merge_table[:] = -1
        for s in order:
            if kept == beam_size:
                break
            lex_node = cand[s, 4]
            if recombine and lex_node >= 0:
                state = cand[s, 1]
                h = (state * 1000003 + lex_node) & mask
                while merge_table[h] >= 0 and not (beam[merge_table[h], 1] == state
                                                   and beam[merge_table[h], 4] == lex_node):
                    h = (h + 1) & mask
                if merge_table[h] >= 0:
                    continue
                merge_table[h] = kept
            for k in range(beam.shape[1]):
                beam[kept, k] = cand[s, k]
            for k in range(beam_p.shape[1]):
                beam_p[kept, k] = cand_p[s, k]
            if beam[kept, 6] < 0 and lex_node > 0:
                beam[kept, 6] = lex_rows[lex_node, 1]
            node_seen[cand[s, 0]] = t
            kept += 1
        beam_count[0] = kept
        t += 1
    return t, 0


@numba.njit(cache=True, nogil=True)
def _finish(params, unk_id, eos_id, beam, beam_p, beam_count, lex_word, cache_key, cache_score, cache_state,
            cache_count, n_words_key, requests, final, lm_score, lm_next, lm_context, kenlm_words):
    """Score each beam's last word and the end of the sentence. Returns the number of (state, word) questions
    left in `requests` (0 when `final` rows hold (total, acoustic, lm log-prob, words, unknown words))."""
    lm_weight, word_bonus, unk_penalty = params[0], params[1], params[2]
    lexicon_only = params[5] > 0
    n_req = 0
    for b in range(beam_count[0]):
        state, n_words, n_unk, lex_node, length = beam[b, 1], beam[b, 2], beam[b, 3], beam[b, 4], beam[b, 5]
        lm, unk_units = beam_p[b, 2], beam_p[b, 3]
        acoustic = _logaddexp(beam_p[b, 0], beam_p[b, 1])
        valid = True
        if lex_node != 0:  # a word is still open
            word = lex_word[lex_node] if lex_node >= 0 else -1
            if word < 0:
                word = unk_id
                n_unk += 1
                unk_units += max(1.0, length / UNK_CHARS)
                valid = not lexicon_only
            slot = _score_slot(state, word, n_words_key, cache_key, cache_score, cache_state, cache_count, lm_score,
                               lm_next, lm_context, kenlm_words)
            if slot < 0:
                n_req = _ask(requests, n_req, state, word)
                continue
            lm += cache_score[slot]
            state = cache_state[slot]
            n_words += 1
        slot = _score_slot(state, eos_id, n_words_key, cache_key, cache_score, cache_state, cache_count, lm_score,
                           lm_next, lm_context, kenlm_words)
        if slot < 0:
            n_req = _ask(requests, n_req, state, eos_id)
            continue
        lm += cache_score[slot]
        total = acoustic + lm_weight * lm + word_bonus * n_words + unk_penalty * unk_units
        final[b, 0] = total if valid else -np.inf
        final[b, 1] = acoustic
        final[b, 2] = lm
        final[b, 3] = n_words
        final[b, 4] = n_unk
    return n_req


@numba.njit(cache=True, nogil=True)
def _path(node, node_parent, node_token, node_frame, space):
    """The tokens of the prefix ending at trie node `node`, and the frame of each; a trailing space dropped ("WORD "
    and "WORD" are the same transcript)."""
    length = 0
    walk = node
    while walk > 0:
        length += 1
        walk = node_parent[walk]
    tokens = np.empty(length, dtype=np.int64)
    frames = np.empty(length, dtype=np.int64)
    for i in range(length - 1, -1, -1):
        tokens[i] = node_token[node]
        frames[i] = node_frame[node]
        node = node_parent[node]
    # A prefix's frame is updated when a likelier way into it appears later, after its longer prefixes took their
    # frames from an earlier way: keep each token before the next one ("AT" once came out as A at frame 75, T at
    # 67, and the word ended before it began).
    for i in range(length - 2, -1, -1):
        frames[i] = max(0, min(frames[i], frames[i + 1] - 1))
    while length > 0 and tokens[length - 1] == space:
        length -= 1
    return tokens[:length], frames[:length]


@numba.njit(cache=True, nogil=True)
def _start(node_parent, node_token, node_seen, node_best, node_count, children, beam, beam_p, beam_count):
    """An empty trie (just the root) and a beam of one empty prefix."""
    node_parent[0] = -1
    node_token[0] = -1
    node_seen[0] = -2
    node_best[0] = -np.inf
    node_count[0] = 1
    children[0, :] = -1
    beam[0, :] = 0
    beam_p[0, 0] = 0.0
    beam_p[0, 1] = -np.inf
    beam_p[0, 2] = 0.0
    beam_p[0, 3] = 0.0
    beam_p[0, 4] = 0.0
    beam_p[0, 5] = 0.0
    beam_count[0] = 1


@numba.njit(cache=True, nogil=True)
def _compact(node_parent, node_token, node_frame, node_seen, node_best, node_count, children, ntok, beam, beam_count):
    """Drop trie nodes that no live prefix passes through; renumber the rest, keeping parents before children."""
    n = node_count[0]
    live = np.zeros(n, dtype=np.bool_)
    live[0] = True
    for b in range(beam_count[0]):
        node = beam[b, 0]
        while node >= 0 and not live[node]:
            live[node] = True
            node = node_parent[node]
    new_id = np.full(n, -1, dtype=np.int64)
    count = 0
    for node in range(n):
        if live[node]:
            new_id[node] = count
            parent = node_parent[node]
            node_parent[count] = new_id[parent] if parent >= 0 else -1
            node_token[count] = node_token[node]
            node_frame[count] = node_frame[node]
            node_seen[count] = node_seen[node]
            node_best[count] = node_best[node]
            count += 1
    children[:count, :] = -1
    for node in range(1, count):
        children[node_parent[node], node_token[node]] = node
    for b in range(beam_count[0]):
        beam[b, 0] = new_id[beam[b, 0]]
    node_count[0] = count


# ----------------------------------------------------------------------------------------------- Python side

class _ScoreCache:
    """(LM state, word) -> (log-prob, next LM state), for the compiled search: an open-addressing hash table in
    arrays (key -1: an empty slot), kept at most half full. It only remembers answers, so emptying it is always safe."""

    first_size = 1 << 16
    max_size = 1 << 22  # 96 MB; a fuller cache is emptied instead of grown

    def __init__(self, size: int = 0):
        size = size or self.first_size
        self.key = np.full(size, -1, dtype=np.int64)
        self.score = np.zeros(size)
        self.state = np.zeros(size, dtype=np.int64)
        self.count = np.zeros(1, dtype=np.int64)

    @property
    def arrays(self):
        return self.key, self.score, self.state, self.count

    def make_room(self, entries: int) -> "_ScoreCache":
        """This cache, or a larger (or an emptied) one holding its entries, with room for `entries` more."""
        size = len(self.key)
        if 2 * (self.count[0] + entries) <= size:
            return self
        while 2 * (self.count[0] + entries) > size:
            size *= 2
        if size > self.max_size:
            return _ScoreCache(max(self.first_size, 1 << int(2 * entries).bit_length()))
        grown = _ScoreCache(size)
        filled = self.key >= 0
        _store(*grown.arrays, self.key[filled], self.score[filled], self.state[filled])
        return grown

    def copy(self) -> "_ScoreCache":
        other = object.__new__(_ScoreCache)
        other.key, other.score, other.state, other.count = (a.copy() for a in self.arrays)
        return other


class _PythonStates:
    """LM states numbered from 0 (the start of a sentence) as `kenlm` package states, for a search without the
    KenLM bridge: the same interface as the bridge's `kenlm_native.Context`, with handle 0 (no context)."""

    handle = 0

    def __init__(self, lm: LanguageModel):
        import kenlm

        self.new_state = kenlm.State
        start = kenlm.State()
        lm.model.BeginSentenceWrite(start)
        self.states = [start]
        self.number_of = {start: 0}

    def __len__(self) -> int:
        return len(self.states)

    def number(self, state) -> int:
        """The number of `state`, given one if it is new."""
        found = self.number_of.get(state)
        if found is None:
            found = self.number_of[state] = len(self.states)
            self.states.append(state)
        return found

    def keep(self, numbers: list[int]) -> None:
        """Forget every state but these (sorted, 0 first), renumbered 0, 1, ... in their order."""
        self.states = [self.states[old] for old in numbers]
        self.number_of = {s: i for i, s in enumerate(self.states)}

    def copy(self) -> "_PythonStates":
        other = object.__new__(_PythonStates)
        other.new_state, other.states, other.number_of = self.new_state, list(self.states), dict(self.number_of)
        return other


class _SearchState:
    """One thread's working memory: the LM states met so far (numbered; kept by the KenLM bridge when it is built,
    else here) and the cache of their word scores."""

    # Forget cached LM states past this many, so memory stays bounded on long inputs. Each state costs about 1 kB
    # with its cached word scores: at 500,000 the 60-minute benchmark peaked at 1.35 GB against 0.95 GB for 10
    # minutes; at 100,000, 1.18 GB, with the same WER and speed.
    max_states = 100_000

    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self.reset()

    def copy(self) -> "_SearchState":
        """Another working memory that starts with this one's LM states and cache."""
        other = object.__new__(_SearchState)
        other.lm, other.workspaces = self.lm, {}
        other.states, other.cache = self.states.copy(), self.cache.copy()
        return other

    def workspace(self, width: int, ntok: int) -> dict:
        """Buffers for a search of this beam width, kept between utterances (allocating them costs more than
        a short utterance's whole search)."""
        space = self.workspaces.get((width, ntok))
        if space is None:
            capacity = max(4096, 4 * width * ntok)
            space = self.workspaces[(width, ntok)] = dict(
                capacity=capacity,
                node_parent=np.empty(capacity, dtype=np.int64), node_token=np.empty(capacity, dtype=np.int64),
                node_frame=np.empty(capacity, dtype=np.int64), node_seen=np.empty(capacity, dtype=np.int64),
                node_best=np.empty(capacity, dtype=np.float64), node_count=np.ones(1, dtype=np.int64),
                children=np.full((capacity, ntok), -1, dtype=np.int64),  # (node, token) -> node, dense
                beam=np.zeros((width, 7), dtype=np.int64), beam_p=np.zeros((width, 6), dtype=np.float64),
                beam_count=np.ones(1, dtype=np.int64),
                cand=np.zeros((width * ntok, 7), dtype=np.int64), cand_p=np.zeros((width * ntok, 6)),
                slot_of=np.full(capacity, -1, dtype=np.int64),  # node -> candidate slot this frame
                requests=np.full((width * ntok, 2), -1, dtype=np.int64), final=np.zeros((width, 5)),
                merge_table=np.full(1 << (2 * width).bit_length(), -1, dtype=np.int64))
        return space

    def reset(self):
        self.workspaces = {}
        # The LM states met so far: kept by the KenLM bridge when it is built, else here.
        native = self.lm.native
        self.states = native.new_context() if native is not None else _PythonStates(self.lm)
        self.cache = _ScoreCache()

    def keep_states(self, used: list[int]) -> None:
        """Forget every LM state but `used` (sorted, 0 first), renumbered 0, 1, ...; the cache starts again."""
        self.states.keep(used)
        self.cache = _ScoreCache()


class LmBeamSearchDecoder:
    """Beam search over CTC log-probs with a word n-gram LM. Thread-safe: each search takes a working memory no other
    thread holds (kept between calls, so LM-score caches stay warm); `decode_batch` spreads utterances over threads
    (the compiled search releases the GIL)."""

    def __init__(self, vocabulary: Vocabulary, lm: LanguageModel, options: DecoderOptions = DecoderOptions()):
        self.vocabulary = vocabulary
        self.lm = lm
        self.options = options
        unigram = self._unigram_scorer(lm)
        self.lexicon = build_lexicon(lm.words, vocabulary, unigram)
        self.unk_lookahead = unigram("<unk>")
        words = self.lexicon.words
        self.unk_id, self.eos_id = len(words), len(words) + 1
        self.query_words = list(words) + ["<unk>", "</s>"]
        self.n_words_key = len(self.query_words)
        native = lm.native
        # KenLM's index of each query word, for the bridge; the bridge's functions, or stand-ins never called
        self.kenlm_words = native.indices(self.query_words) if native else np.zeros(self.n_words_key, np.uint32)
        self._lm_functions = (native.score, native.next_state) if native else (NO_SCORE, NO_NEXT)
        self._idle_states: queue.SimpleQueue = queue.SimpleQueue()  # working memories not in use by a thread
        self._params = self._search_params()

    @staticmethod
    def _unigram_scorer(lm: LanguageModel):
        """word -> its log-prob with no context (natural log)."""
        import kenlm

        empty, out = kenlm.State(), kenlm.State()
        lm.model.NullContextWrite(empty)
        return lambda word: lm.model.BaseScore(empty, word, out) * LN10

    def with_options(self, **changes) -> "LmBeamSearchDecoder":
        """The same LM and lexicon with other weights or beam (cheap: nothing is reloaded, caches are shared)."""
        other = object.__new__(LmBeamSearchDecoder)
        other.__dict__.update(self.__dict__)
        other.options = replace(self.options, **changes)
        other._params = other._search_params()
        return other  # shares the LM-score caches: they do not depend on the options

    def _search_params(self) -> np.ndarray:
        """The options as the compiled search reads them."""
        options = self.options
        return np.array([options.lm_weight, options.word_bonus, options.unk_penalty, options.beam_threshold,
                         options.token_min_logp, float(options.lexicon_only), float(options.lm_weight != 0),
                         float(options.lm_lookahead), self.unk_lookahead, float(options.word_bonus_lookahead)],
                        dtype=np.float64)

    def _take_state(self) -> _SearchState:
        """A working memory no other thread is using: an idle one (its LM-score cache warm), or a new one."""
        try:
            return self._idle_states.get_nowait()
        except queue.Empty:
            return _SearchState(self.lm)

    def _answer(self, state: _SearchState, requests: np.ndarray) -> None:
        """Ask kenlm the (LM state, word) questions the compiled search collected; cache the answers."""
        model, states, words = self.lm.model, state.states, self.query_words
        asked = requests[:np.argmax(requests[:, 0] < 0) if requests[-1, 0] < 0 else len(requests)]
        scores = np.empty(len(asked))
        next_states = np.empty(len(asked), dtype=np.int64)
        for i, (lm_state, word) in enumerate(asked.tolist()):
            out = states.new_state()
            scores[i] = model.BaseScore(states.states[lm_state], words[word], out) * LN10
            next_states[i] = states.number(out)
        state.cache = state.cache.make_room(len(asked))
        _store(*state.cache.arrays, asked[:, 0] * self.n_words_key + asked[:, 1], scores, next_states)

    def _forget_states(self, state: _SearchState, beam: np.ndarray, count: int) -> None:
        """Keep only the LM states the live beam uses, renumbered; the cache starts again."""
        used = sorted(set(beam[:count, 1].tolist()) | {0})
        renumber = {old: new for new, old in enumerate(used)}
        state.keep_states(used)
        for b in range(count):
            beam[b, 1] = renumber[int(beam[b, 1])]

    def decode(self, log_probs, nbest: int = 1) -> list[Hypothesis]:
        """The `nbest` best transcriptions of one utterance's (frames, vocab) log-probs, best first. Each
        `Hypothesis` has the fused `score`, its `acoustic_score` and `lm_score` (natural log), and the frame of
        each token."""
        state = self._take_state()
        try:
            return self._decode_with(state, log_probs, nbest)
        finally:
            self._idle_states.put(state)

    def _decode_with(self, state: _SearchState, log_probs, nbest: int) -> list[Hypothesis]:
        log_probs = _as_numpy(log_probs, np.float32)  # no copy of float32 input: a copy costs 5% at beam 10
        ntok = log_probs.shape[1]
        if ntok != len(self.vocabulary):
            raise AsrError(f"log-probs have {ntok} classes but the vocabulary has {len(self.vocabulary)}")
        options = self.options
        if options.blank_penalty:
            log_probs = log_probs.copy()  # the caller's array may be scored again with other options
            log_probs[:, self.vocabulary.blank] -= options.blank_penalty
        if len(state.states) > state.max_states:
            state.reset()
        params = self._params
        width = options.beam_size
        space = state.workspace(width, ntok)
        capacity = space["capacity"]
        node_parent, node_token, node_frame, node_seen, node_best, node_count, children = (
            space[k] for k in ("node_parent", "node_token", "node_frame", "node_seen", "node_best", "node_count",
                               "children"))
        beam, beam_p, beam_count, cand, cand_p, slot_of, requests, final = (
            space[k] for k in ("beam", "beam_p", "beam_count", "cand", "cand_p", "slot_of", "requests", "final"))
        _start(node_parent, node_token, node_seen, node_best, node_count, children, beam, beam_p, beam_count)
        requests[:] = -1
        lex = self.lexicon
        lm_score, lm_next = self._lm_functions
        lm_context = state.states.handle  # 0 without the bridge
        t = 0
        while True:
            t, status = _search(log_probs, t, params, self.vocabulary.blank, self.vocabulary.space, ntok,
                                self.unk_id, node_parent, node_token, node_frame, node_seen, node_best, node_count,
                                children, beam, beam_p, beam_count, cand, cand_p, slot_of, space["merge_table"],
                                lex.rows, lex.row_floats, lex.child,
                                *state.cache.arrays, self.n_words_key, requests, lm_score, lm_next, lm_context,
                                self.kenlm_words)
            if status == _NEED_LM:
                self._answer(state, requests)
            elif status == _NEED_CACHE:
                state.cache = state.cache.make_room(int(beam_count[0]) * ntok)
            elif status == _NEED_ROOM:
                _compact(node_parent, node_token, node_frame, node_seen, node_best, node_count, children, ntok, beam,
                         beam_count)
                if node_count[0] * 2 > capacity:  # still crowded: the live prefixes need a bigger trie
                    capacity = space["capacity"] = capacity * 2
                    node_parent, node_token, node_frame, node_seen, node_best = (
                        np.resize(a, capacity) for a in (node_parent, node_token, node_frame, node_seen, node_best))
                    grown = np.full((capacity, ntok), -1, dtype=np.int64)
                    grown[:len(children)] = children
                    children, slot_of = grown, np.full(capacity, -1, dtype=np.int64)
                    space.update(node_parent=node_parent, node_token=node_token, node_frame=node_frame,
                                 node_seen=node_seen, node_best=node_best, children=children, slot_of=slot_of)
                if len(state.states) > state.max_states:
                    self._forget_states(state, beam, int(beam_count[0]))
            else:
                break
        while True:
            requests[:] = -1
            state.cache = state.cache.make_room(2 * int(beam_count[0]))  # each prefix's last word and </s>
            if _finish(params, self.unk_id, self.eos_id, beam, beam_p, beam_count, lex.word, *state.cache.arrays,
                       self.n_words_key, requests, final, lm_score, lm_next, lm_context, self.kenlm_words) == 0:
                break
            self._answer(state, requests)
        return self._hypotheses(beam, final, int(beam_count[0]), node_parent, node_token, node_frame, nbest)

    def _hypotheses(self, beam, final, count, node_parent, node_token, node_frame, nbest) -> list[Hypothesis]:
        space = self.vocabulary.space
        results, seen = [], set()
        for b in np.argsort(-final[:count, 0]).tolist():
            if not math.isfinite(final[b, 0]):
                continue
            tokens, frames = _path(int(beam[b, 0]), node_parent, node_token, node_frame, space)
            key = tuple(tokens.tolist())
            if key in seen:
                continue
            seen.add(key)
            results.append(Hypothesis(tokens=key, timesteps=tuple(frames.tolist()), score=float(final[b, 0]),
                                      acoustic_score=float(final[b, 1]), lm_score=float(final[b, 2])))
            if len(results) == nbest:
                break
        return results

    def decode_batch(self, batch: Sequence, nbest: int = 1, workers: int | None = None) -> list[list[Hypothesis]]:
        """Decode many utterances on `workers` threads (default: every core), results in input order."""
        workers = workers or numba.config.NUMBA_DEFAULT_NUM_THREADS
        # Below beam 32 a search takes a millisecond or two, mostly in Python: threads would spend it waiting for
        # the interpreter lock (measured: 2 threads at half the speed of 1 at beam 10, 3.7x faster at beam 100).
        if workers <= 1 or len(batch) <= 1 or self.options.beam_size < MIN_THREADED_BEAM:
            return [self.decode(log_probs, nbest) for log_probs in batch]
        # Each thread takes every workers-th utterance: one task per thread, not per utterance, keeps the
        # hand-over cost away from short utterances while long and short ones still spread evenly.
        workers = min(workers, len(batch))
        results: list = [None] * len(batch)

        def run(first: int) -> None:
            for i in range(first, len(batch), workers):
                results[i] = self.decode(batch[i], nbest)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, range(workers)))
        return results
