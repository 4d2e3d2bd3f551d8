"""The LM beam search on hand-built log-probs: equal to the plain search without an LM, swayed by a strong one."""

import math

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asr.data import Utterance
from asr.decode import beam_search
from asr.errors import AsrError
from asr.evaluate import ModelOutputs
from asr.lm import LanguageModel
from asr.lm_decoder import DecoderOptions, LmBeamSearchDecoder, _bits_below
from asr.lm_tune import tune_weights
from asr.ngram import build_arpa
from asr.text import Vocabulary

VOCAB = Vocabulary()
FALLBACK = (0.5, 1.0, 1.5)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "cats.arpa"
    build_arpa(["THE CAT SAT", "THE CAT RAN", "A CAT SAT ON THE MAT", "THE DOG SAT"] * 5, path, order=3,
               discount_fallback=FALLBACK)
    return LanguageModel(path)


def spell(text, confusions=None, frames_per_char=2):
    """Log-probs that spell `text`: each character for one frame, then a blank. `confusions` maps a character
    position to {char: probability} for that frame."""
    rows = []
    for position, char in enumerate(text):
        row = np.full(len(VOCAB), 1e-4)
        for option, p in (confusions or {}).get(position, {char: 0.98}).items():
            row[VOCAB.encode(option)[0]] = p
        rows.append(row)
        for _ in range(frames_per_char - 1):
            blank = np.full(len(VOCAB), 1e-4)
            blank[VOCAB.blank] = 0.98
            rows.append(blank)
    probs = np.array(rows)
    return np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def text_of(hypothesis):
    return VOCAB.decode(hypothesis.tokens)


def node_of(lexicon, letters):
    """The lexicon trie node reached by spelling `letters` from the root."""
    node = 0
    for token in VOCAB.encode(letters):
        children = range(lexicon.first[node], lexicon.first[node + 1])
        node = next(lexicon.child[i] for i in children if lexicon.token[i] == token)
    return node


def test_without_lm_weight_it_is_the_plain_beam_search(lm):
    decoder = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(beam_size=8, lm_weight=0.0, word_bonus=0.0,
                                                             unk_penalty=0.0, beam_threshold=1e9,
                                                             token_min_logp=-1e9))
    rng = np.random.default_rng(0)
    for _ in range(10):
        logits = rng.normal(size=(25, len(VOCAB))) * 3
        log_probs = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
        ours = decoder.decode(log_probs, nbest=3)
        plain = beam_search(log_probs, beam_size=8, prune_threshold=math.inf, nbest=3)
        assert ours[0].tokens == plain[0].tokens
        assert ours[0].score == pytest.approx(plain[0].score, abs=1e-3)
        assert ours[0].acoustic_score == pytest.approx(plain[0].score, abs=1e-3)


def test_a_strong_lm_flips_an_acoustic_near_tie(lm):
    # The acoustics slightly prefer "THE KAT SAT" (K 0.52 against C 0.46); the LM has only seen CAT.
    log_probs = spell("THE CAT SAT", confusions={4: {"K": 0.52, "C": 0.46}})
    no_lm = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(lm_weight=0.0, word_bonus=0.0, unk_penalty=0.0))
    assert text_of(no_lm.decode(log_probs)[0]) == "THE KAT SAT"
    with_lm = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(lm_weight=1.0, word_bonus=0.0))
    assert text_of(with_lm.decode(log_probs)[0]) == "THE CAT SAT"


def test_prefixes_the_lm_cannot_tell_apart_are_recombined(lm):
    # "THE CAT SAT ON" and "SHE CAT SAT ON" end in the same trigram state with the same open word, so with the
    # LM on only the better stays in the beam; without it (the plain search) both are kept.
    log_probs = spell("THE CAT SAT ON", confusions={0: {"T": 0.5, "S": 0.48}})
    for lm_weight, both_kept in ((0.0, True), (0.5, False)):
        options = DecoderOptions(beam_size=16, lm_weight=lm_weight, word_bonus=0.0, unk_penalty=0.0)
        texts = [text_of(h) for h in LmBeamSearchDecoder(VOCAB, lm, options).decode(log_probs, nbest=16)]
        assert texts[0] == "THE CAT SAT ON"
        assert ("SHE CAT SAT ON" in texts) == both_kept


def test_lookahead_is_the_best_unigram_a_partial_word_can_become(lm):
    decoder = LmBeamSearchDecoder(VOCAB, lm)
    lexicon = decoder.lexicon

    def unigram(word):  # natural-log probability with no context, straight from kenlm
        return lm.model.score(word, bos=False, eos=False) * math.log(10)

    assert lexicon.lookahead[0] == 0.0
    assert lexicon.lookahead[node_of(lexicon, "CA")] == pytest.approx(unigram("CAT"))
    assert lexicon.lookahead[node_of(lexicon, "S")] == pytest.approx(max(unigram("SAT"), unigram("SHE")))
    assert lexicon.lookahead[node_of(lexicon, "THE")] == pytest.approx(unigram("THE"))


def test_each_lexicon_node_knows_the_tokens_that_go_on_from_it(lm):
    lexicon = LmBeamSearchDecoder(VOCAB, lm).lexicon

    def tokens_after(node):
        return {t for t in range(len(VOCAB)) if (int(lexicon.letters[node]) >> t) & 1}

    assert tokens_after(node_of(lexicon, "CA")) == set(VOCAB.encode("T"))
    assert tokens_after(node_of(lexicon, "THE")) == {VOCAB.space}  # a word ends there; no word goes on
    assert tokens_after(0) == set(VOCAB.encode("ACDMORST"))  # the first letters of A CAT DOG MAT ON RAN SAT THE
    assert VOCAB.space not in tokens_after(0)  # no empty word
    for node in range(len(lexicon.word)):  # the bitmask holds exactly the children's tokens (and the space)
        children = set(lexicon.token[lexicon.first[node]:lexicon.first[node + 1]].tolist())
        assert tokens_after(node) == children | ({VOCAB.space} if node and lexicon.word[node] >= 0 else set())


def test_the_search_finds_each_child_by_counting_the_tokens_below_it(lm):
    lexicon = LmBeamSearchDecoder(VOCAB, lm).lexicon
    nodes = len(lexicon.word)
    assert lexicon.rows.shape == (nodes, 4)
    assert len(lexicon.child) == nodes - 1  # every node but the root is one node's child
    child_ranges = lexicon.first
    assert child_ranges[0] == 0 and (np.diff(child_ranges) >= 0).all()  # the rows' starts, in order, within child
    # The search reads a node's row, counts the tokens that go on below the one it follows, and lands on the same
    # child as the trie's own rows.
    for node in range(nodes):
        first, letters = int(lexicon.rows[node, 0]), int(lexicon.rows[node, 1]) & ~(1 << VOCAB.space)
        for i in range(child_ranges[node], child_ranges[node + 1]):
            token = int(lexicon.token[i])
            assert first + bin(letters & ((1 << token) - 1)).count("1") == i


def test_bits_below_counts_the_set_bits_under_a_bit():
    rng = np.random.default_rng(0)
    for mask in [0, 1, (1 << 63) - 1, *rng.integers(0, 1 << 62, size=200).tolist()]:
        for bit in (0, 1, 2, 31, 32, 62, 63):
            assert _bits_below(mask, bit) == bin(mask & ((1 << bit) - 1)).count("1")


def test_lookahead_keeps_the_likelier_word_in_a_narrow_beam(lm):
    # The acoustics slightly prefer D over C after "THE ", and a beam of one keeps a single prefix. Without
    # lookahead "THE D" and "THE C" differ only acoustically, so "THE D" stays, and no word goes on "D...AT".
    # With it, "THE C" is ranked as the start of CAT (seen 3 times as often as DOG) and wins.
    log_probs = spell("THE CAT SAT", confusions={4: {"D": 0.52, "C": 0.46}})
    for lookahead in (False, True):
        options = DecoderOptions(beam_size=1, lm_weight=1.0, word_bonus=0.0, lm_lookahead=lookahead)
        found = text_of(LmBeamSearchDecoder(VOCAB, lm, options).decode(log_probs)[0])
        assert (found == "THE CAT SAT") == lookahead, found


def test_scores_add_up_and_nbest_is_ranked(lm):
    log_probs = spell("THE CAT SAT", confusions={4: {"K": 0.52, "C": 0.46}})
    options = DecoderOptions(beam_size=16, lm_weight=0.7, word_bonus=0.5, unk_penalty=-4.0)
    found = LmBeamSearchDecoder(VOCAB, lm, options).decode(log_probs, nbest=4)
    assert len(found) >= 2
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
    assert len({h.tokens for h in found}) == len(found)
    best = found[0]
    words = text_of(best).split()
    assert best.score == pytest.approx(best.acoustic_score + 0.7 * best.lm_score + 0.5 * len(words), abs=1e-4)
    # The LM part is exactly KenLM's log10 probability of the sentence, in natural log.
    assert best.lm_score == pytest.approx(lm.model.score(" ".join(words)) * math.log(10), abs=1e-4)


def test_unknown_words_penalised_or_forbidden(lm):
    log_probs = spell("THE ZOG SAT")
    open_vocabulary = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(lm_weight=0.5, unk_penalty=-2.0))
    assert text_of(open_vocabulary.decode(log_probs)[0]) == "THE ZOG SAT"
    lexicon_only = open_vocabulary.with_options(lexicon_only=True)
    assert all(word in lm.words for word in text_of(lexicon_only.decode(log_probs)[0]).split())


def test_a_positive_unknown_word_penalty_is_refused():
    with pytest.raises(AsrError, match="from -1000 to 0"):
        DecoderOptions(unk_penalty=1.0)


def test_tuning_chooses_the_unknown_word_penalty_with_the_weights(lm):
    # The acoustics prefer "ZAT", which the LM does not know, to "SAT": a mild penalty lets the misspelling through,
    # a stiff one makes the search spell the known word. The grid is searched over both, and the stiff one wins.
    log_probs = spell("THE CAT SAT", confusions={8: {"Z": 0.98, "S": 0.002}})
    utterance = Utterance("u1", "u1.flac", len(log_probs) * 0.02, "THE CAT SAT")
    outputs = ModelOutputs((utterance,), {"u1": torch.from_numpy(log_probs)}, {"u1": utterance.duration}, 0)
    recognizer = SimpleNamespace(vocabulary=VOCAB, lm_decoder=LmBeamSearchDecoder(VOCAB, lm))
    result = tune_weights(recognizer, outputs, lm_weights=(0.5,), word_bonuses=(0.0,), unk_penalties=(-0.5, -20.0),
                          blank_penalties=(0.0,), show_progress=False)
    assert result.wer.shape == (1, 2, 1, 1)
    assert result.wer[0, 0, 0, 0] == pytest.approx(1 / 3) and result.wer[0, 1, 0, 0] == 0.0
    assert result.best_unk_penalty == -20.0 and result.best_wer == 0.0
    with pytest.raises(AsrError, match="from -1000 to 0"):
        tune_weights(recognizer, outputs, (0.5,), (0.0,), unk_penalties=(5.0,), show_progress=False)


def lost_letter(log_probs, frame, char, probability):
    """`log_probs` with the blank winning `frame` and `char` second at `probability`: a letter the model heard
    faintly, as it does on voices it did not train on."""
    probs = np.exp(log_probs[frame].astype(np.float64))
    probs[:] = 1e-4
    probs[VOCAB.encode(char)[0]] = probability
    probs[VOCAB.blank] = 1.0 - probs.sum() + 1e-4
    changed = log_probs.copy()
    changed[frame] = np.log(probs / probs.sum())
    return changed


def test_a_blank_penalty_brings_back_a_letter_the_blank_outvoted(lm):
    # "THE CAT SAT" with the S of SAT heard faintly (frame 16): the search without a penalty reads "THE CAT AT",
    # which the LM does not know either way; a penalty of 2 lifts the S over the blank.
    log_probs = lost_letter(spell("THE CAT SAT"), frame=16, char="S", probability=0.2)
    plain = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(lm_weight=0.0, word_bonus=0.0, unk_penalty=0.0))
    assert text_of(plain.decode(log_probs)[0]) == "THE CAT AT"
    before = log_probs.copy()
    assert text_of(plain.with_options(blank_penalty=2.0).decode(log_probs)[0]) == "THE CAT SAT"
    assert np.array_equal(log_probs, before)  # the caller's log-probs are left as they were, to decode again


def test_tuning_searches_the_blank_penalty_too(lm):
    log_probs = lost_letter(spell("THE CAT SAT"), frame=16, char="S", probability=0.2)
    utterance = Utterance("u1", "u1.flac", len(log_probs) * 0.02, "THE CAT SAT")
    outputs = ModelOutputs((utterance,), {"u1": torch.from_numpy(log_probs)}, {"u1": utterance.duration}, 0)
    recognizer = SimpleNamespace(vocabulary=VOCAB, lm_decoder=LmBeamSearchDecoder(VOCAB, lm))
    result = tune_weights(recognizer, outputs, lm_weights=(0.0,), word_bonuses=(0.0,), unk_penalties=(0.0,),
                          blank_penalties=(0.0, 2.0), show_progress=False)
    assert result.wer.shape == (2, 1, 1, 1)
    assert result.wer[0, 0, 0, 0] == pytest.approx(1 / 3) and result.wer[1, 0, 0, 0] == 0.0
    assert result.best_blank_penalty == 2.0
    with pytest.raises(AsrError, match="from 0 to 100"):
        tune_weights(recognizer, outputs, (0.5,), (0.0,), blank_penalties=(-1.0,), show_progress=False)


def test_word_times_come_from_the_best_path(lm):
    log_probs = spell("THE CAT", frames_per_char=3)
    best = LmBeamSearchDecoder(VOCAB, lm).decode(log_probs)[0]
    assert text_of(best) == "THE CAT"
    assert best.timesteps == tuple(range(0, 3 * 7, 3))


def test_long_input_keeps_memory_bounded_and_the_text_whole(lm):
    sentence = "THE CAT SAT ON THE MAT "
    log_probs = spell(sentence * 150)  # 6,900 frames: the prefix trie fills and is compacted many times
    decoder = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(beam_size=4))
    assert text_of(decoder.decode(log_probs)[0]) == (sentence * 150).strip()


def test_batch_on_threads_equals_one_by_one(lm):
    rng = np.random.default_rng(1)
    texts = ["THE CAT SAT", "A DOG RAN", "THE MAT", "ON THE CAT", "SAT"]
    batch = []
    for text in texts:
        position = int(rng.integers(len(text)))
        batch.append(spell(text, confusions={position: {text[position]: 0.6, "E": 0.39}}))
    decoder = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(beam_size=8))
    one_by_one = [decoder.decode(lp)[0] for lp in batch]
    assert decoder.decode_batch(batch, workers=3) == [[h] for h in one_by_one]
    wide = decoder.with_options(beam_size=32)  # threads are used from beam 32 up
    assert wide.decode_batch(batch, workers=3) == [wide.decode(lp) for lp in batch]


def test_language_model_file_errors(tmp_path):
    with pytest.raises(AsrError, match="no such language model"):
        LanguageModel(tmp_path / "missing.arpa")
    junk = tmp_path / "junk.arpa"
    junk.write_text("this is not a language model\n")
    with pytest.raises(AsrError, match="junk.arpa"):
        LanguageModel(junk)
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0\0")
    with pytest.raises(AsrError, match="word list"):
        LanguageModel(binary)


def test_lowercase_lm_is_refused(tmp_path):
    path = tmp_path / "lower.arpa"
    build_arpa(["the cat sat"], path, order=2, discount_fallback=FALLBACK)
    with pytest.raises(AsrError, match="lower case"):
        LmBeamSearchDecoder(VOCAB, LanguageModel(path))


def test_the_stored_beam_is_the_smallest_within_a_tenth_of_a_point_of_the_best(lm, monkeypatch):
    import asr.lm_tune as lm_tune

    wer_at = {4: 0.20, 16: 0.1004, 64: 0.1000, 256: 0.0995}
    monkeypatch.setattr(lm_tune, "score_outputs", lambda recognizer, outputs, beam, decoder: SimpleNamespace(
        wer=SimpleNamespace(rate=wer_at[beam])))
    recognizer = SimpleNamespace(vocabulary=VOCAB, lm_decoder=LmBeamSearchDecoder(VOCAB, lm))
    result = SimpleNamespace(best_lm_weight=0.5, best_word_bonus=0.0, best_unk_penalty=-10.0, best_blank_penalty=0.0)
    sweep = lm_tune.sweep_beams(recognizer, None, result, [256, 4, 64, 16], show_progress=False)
    assert sweep.beams == (4, 16, 64, 256) and sweep.chosen == 16
    assert len(sweep.seconds) == 4


def test_passes_and_beam_are_chosen_together_and_each_delay_is_heard_once(lm, monkeypatch):
    import asr.lm_tune as lm_tune

    delays_of = {1: [0], 3: [0, 213, 427], 5: [0, 128, 256, 384, 512]}
    wer_at = {(1, 16): 0.30, (1, 64): 0.20, (3, 16): 0.1004, (3, 64): 0.1002, (5, 16): 0.1000, (5, 64): 0.0995}
    heard, clock = [], [0.0]  # a fake clock: 10 s of acoustic model per delay, count x beam s of search

    def outputs_by_delay(recognizer, manifest, delays, show_progress):
        heard.extend(delays)
        clock[0] += 10.0 * len(delays)
        return [f"outputs at {delay}" for delay in delays]

    def score_outputs(recognizer, outputs, beam, decoder):
        assert decoder.options.beam_size == beam and decoder.options.lm_weight == 0.5
        count = 1 if isinstance(outputs, str) else len(outputs)
        expected = [f"outputs at {delay}" for delay in delays_of[count]]
        assert (outputs if count > 1 else [outputs]) == expected  # the passes of that count, in order
        clock[0] += count * beam
        return SimpleNamespace(wer=SimpleNamespace(rate=wer_at[count, beam]))

    monkeypatch.setattr(lm_tune, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(lm_tune, "outputs_by_delay", outputs_by_delay)
    monkeypatch.setattr(lm_tune, "score_outputs", score_outputs)
    recognizer = SimpleNamespace(vocabulary=VOCAB, lm_decoder=LmBeamSearchDecoder(VOCAB, lm),
                                 pass_delays=delays_of.__getitem__)
    result = SimpleNamespace(best_lm_weight=0.5, best_word_bonus=0.0, best_unk_penalty=-10.0, best_blank_penalty=0.0)
    sweep = lm_tune.sweep_passes(recognizer, "dev.jsonl", result, [64, 16], [5, 1, 3, 3], show_progress=False)
    assert sweep.counts == (1, 3, 5) and sweep.beams == (16, 64) and sweep.wer.shape == sweep.seconds.shape == (3, 2)
    assert sorted(heard) == sorted({d for delays in delays_of.values() for d in delays})  # delay 0 once, not 3 times
    assert sweep.seconds[1, 0] == 3 * 10 + 3 * 16 and sweep.seconds[2, 1] == 5 * 10 + 5 * 64
    # Within 0.1 points of the best (5 passes at 64: 9.95%) are 3 and 5 passes at either beam; 3 at 16 is fastest.
    assert sweep.chosen == (3, 16)


def test_pass_delays_step_evenly_across_one_lstm_step(model_path):
    from asr.transcribe import load_model

    recognizer = load_model(model_path, lm=False)
    step = recognizer.frame_seconds * recognizer.model.config.outputs_per_step * 16000
    assert recognizer.pass_delays(1) == [0] == recognizer.delays
    delays = recognizer.pass_delays(4)
    assert delays == sorted(set(delays)) and len(delays) == 4 and delays[-1] < step
    assert delays[1] == round(step / 4)
    with pytest.raises(AsrError, match="passes"):
        recognizer.pass_delays(0)


def test_storing_tuned_options_keeps_an_exported_files_weights(tmp_path, model_path):
    from asr.checkpoint import load_model_file
    from asr.export import export_model
    from asr.lm_tune import store_weights

    exported = export_model(model_path, tmp_path / "package", name="m", weights="int8").files[0]
    before = torch.load(exported, weights_only=True)["state_dict"]
    result = SimpleNamespace(best_lm_weight=0.7, best_word_bonus=-1.0, best_unk_penalty=-20.0,
                             best_blank_penalty=1.5, best_wer=0.1)
    (tmp_path / "lm.arpa").write_text("")
    store_weights(exported, tmp_path / "tuned.pt", tmp_path / "lm.arpa", result, beam_size=64)
    after = torch.load(tmp_path / "tuned.pt", weights_only=True)
    assert {k: v.dtype for k, v in after["state_dict"].items()} == {k: v.dtype for k, v in before.items()}
    assert after["decoding"]["lm_beam_size"] == 64 and after["decoding"]["lm_weight"] == 0.7
    assert load_model_file(tmp_path / "tuned.pt").decoding["lm"] == "lm.arpa"
    assert "passes" not in after["decoding"]
    store_weights(tmp_path / "tuned.pt", tmp_path / "voted.pt", tmp_path / "lm.arpa", result, beam_size=64, passes=3)
    assert load_model_file(tmp_path / "voted.pt").decoding["passes"] == 3
    store_weights(tmp_path / "voted.pt", tmp_path / "again.pt", tmp_path / "lm.arpa", result, beam_size=32)
    assert load_model_file(tmp_path / "again.pt").decoding["passes"] == 3  # kept when not tuned again


def swallow(log_probs, frame, char, log_prob=-5.5):
    """The same log-probs with `char` at `frame` all but swallowed: blank wins it, `char` keeps `log_prob`."""
    row = np.full(len(VOCAB), -12.0)
    row[VOCAB.encode(char)[0]] = log_prob
    row[VOCAB.blank] = np.log1p(-np.exp(row).sum() + np.exp(row[VOCAB.blank]))
    log_probs = log_probs.copy()
    log_probs[frame] = row
    return log_probs


def test_a_word_that_ends_unknown_does_not_cut_the_transcript_short(tmp_path):
    # The LM knows CATALOGUE but not CAT, so "CAT" is ranked as if on its way to CATALOGUE; ended, it is an unknown
    # word and pays the penalty in one frame, more than the threshold. A search that drops it there keeps only
    # prefixes that never end their word, which live on blanks to the end: the transcript was "THE CATA".
    build_arpa(["THE CATALOGUE SAT ON THE MAT", "THE DOG SAT ON THE MAT", "A DOG RAN"] * 5, tmp_path / "lm.arpa",
               order=3, discount_fallback=FALLBACK)
    decoder = LmBeamSearchDecoder(VOCAB, LanguageModel(tmp_path / "lm.arpa"), DecoderOptions(
        beam_size=16, lm_weight=0.5, word_bonus=0.0, unk_penalty=-20.0, beam_threshold=10.0, token_min_logp=-5.0))
    assert text_of(decoder.decode(spell("THE CAT SAT ON THE MAT"))[0]) == "THE CAT SAT ON THE MAT"


def test_a_letter_the_model_all_but_swallowed_is_tried_when_only_it_spells_a_word(lm):
    # The A of CAT is under the token threshold, but with the lexicon only it is the one way on to a word: without
    # trying it, "THE C" waited on blanks for the A of SAT and the transcript lost a word ("THE CAT ON THE MAT").
    log_probs = swallow(spell("THE CAT SAT ON THE MAT"), frame=10, char="A")
    decoder = LmBeamSearchDecoder(VOCAB, lm, DecoderOptions(beam_size=16, lm_weight=0.5, word_bonus=0.0,
                                                             beam_threshold=10.0, token_min_logp=-5.0,
                                                             lexicon_only=True))
    assert text_of(decoder.decode(log_probs)[0]) == "THE CAT SAT ON THE MAT"
