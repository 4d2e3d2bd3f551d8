"""Kokoro neural voices, short everyday utterances, microphone colouring and lossy codecs in the synthetic corpus."""

import hashlib
import importlib.util
import json

import numpy as np
import pytest

from asr import augment, synth_corpus
from asr.short_utterances import KINDS, make_utterance, short_utterances
from asr.text import DEFAULT_TOKENS
from asr.tts import Voice, kokoro_mix

ALPHABET = set(DEFAULT_TOKENS[1:])


def _voices_of(speaker):
    return {part.partition(":")[0] for part in speaker.voice.name.split("+")}


def test_kokoro_dev_and_test_voices_are_never_in_a_train_speaker():
    plan = synth_corpus.kokoro_speaker_plan(0)
    used = {split: set().union(*(_voices_of(s) for s in speakers)) for split, speakers in plan.items()}
    assert not used["train"] & (used["dev"] | used["test"]) and not used["dev"] & used["test"]
    english = {name for names in synth_corpus.KOKORO_ENGLISH.values() for name in names}
    for split in synth_corpus.SPLITS:  # both English and accented voices in every split
        assert used[split] & english and used[split] & set(synth_corpus.KOKORO_ACCENTED)
    for speaker in plan["train"]:
        weights = [float(part.partition(":")[2]) for part in speaker.voice.name.split("+")]
        assert 1 <= len(weights) <= 3 and sum(weights) == pytest.approx(1, abs=0.01)
        assert 0.85 <= speaker.voice.rate <= 1.2
    assert synth_corpus.kokoro_speaker_plan(0) == plan  # deterministic


def test_the_classic_plan_is_unchanged_by_the_kokoro_family():
    """Earlier corpora, and so the synthetic test set, are planned exactly as before the Kokoro family came: the
    digest below was computed with the code of commit bef74fc on the same input."""
    sentences = [f"SENTENCE NUMBER {i} IS HERE AT LAST" for i in range(3000)]
    plan = synth_corpus.plan_corpus(sentences, {"train": 0.2, "dev": 0.05, "test": 0.05}, seed=0)
    voices = synth_corpus.voice_table(plan, 0)
    fields = ("speed", "noise", "snr_db", "rt60", "telephone", "gain_db")
    rows = [(u.id, u.split, u.text, voices[(u.split, u.speaker)].key, *(getattr(u.conditions, f) for f in fields))
            for u in plan]
    assert len(plan) == 460
    assert hashlib.sha256(repr(rows).encode()).hexdigest() == (
        "8c845733bdbaad7e00fb4efd69602944e5646cdb0b42b6659cd4ebae808293ac")
    assert all(u.conditions.codec == "" and u.conditions.mic_highpass_hz == 0 for u in plan)


def test_kokoro_plan_draws_codecs_and_microphones():
    sentences = short_utterances(3000, 0)
    plan = synth_corpus.plan_corpus(sentences, {"train": 0.3}, seed=0, family="kokoro")
    codecs = {u.conditions.codec for u in plan}
    assert codecs == {"", "opus", "mp3", "ulaw8k", "gsm8k"}
    assert any(u.conditions.mic_highpass_hz for u in plan) and any(u.conditions.mic_presence_db for u in plan)
    assert not any(u.conditions.telephone and u.conditions.codec in ("ulaw8k", "gsm8k") for u in plan)


def test_short_utterances_are_normalised_varied_and_reproducible():
    made = short_utterances(700, seed=1)
    assert len(made) == 700 and made == short_utterances(700, seed=1)
    assert all(text and set(text) <= ALPHABET for text in made)
    assert max(len(t.split()) for t in made) <= 32 and np.mean([len(t.split()) for t in made]) < 8
    rng = np.random.default_rng(0)
    digits = make_utterance("digits", rng).split()
    assert 2 <= len(digits) <= 10 and set(digits) <= {"ZERO", "OH", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX",
                                                       "SEVEN", "EIGHT", "NINE"}
    assert len(KINDS) == 7


def test_mix_sentences_keeps_the_shares():
    books, talk = [f"BOOK {i}" for i in range(1000)], [f"TALK {i}" for i in range(300)]
    mixed = synth_corpus.mix_sentences([books, talk], [0.5, 0.5], seed=0)
    assert sum(s.startswith("TALK") for s in mixed) == 300 and sum(s.startswith("BOOK") for s in mixed) == 300


@pytest.mark.parametrize("codec", sorted(augment.CODECS))
def test_codecs_keep_length_and_speech_band(codec):
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = augment.through_codec(tone, codec, quality=0.5)
    assert out.shape == tone.shape and out.dtype == np.float32
    assert np.corrcoef(tone[1000:-1000], out[1000:-1000])[0, 1] > 0.9  # a 440 Hz tone survives every codec
    if codec.endswith("8k"):
        high = (0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # above a phone line's band
        assert np.std(augment.through_codec(high, codec)) < 0.05 * np.std(high)


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_lossy_codecs_take_every_quality_the_corpus_plan_draws(codec):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)
    for quality in (0.2, 1.0):  # the plan draws 0.2 to 1.0; libsndfile's MP3 encoder refused exactly 1.0
        assert augment.through_codec(tone, codec, quality).shape == tone.shape


def test_microphone_colouring_cuts_bass_and_lifts_presence():
    t = np.arange(16000) / 16000
    bass = np.sin(2 * np.pi * 60 * t).astype(np.float32)
    presence = np.sin(2 * np.pi * 3000 * t).astype(np.float32)
    assert np.std(augment.colour_microphone(bass, 300, 0)[4000:]) < 0.3 * np.std(bass)
    assert np.std(augment.colour_microphone(presence, 0, 6)[4000:]) == pytest.approx(np.std(presence) * 2, rel=0.1)


def test_kokoro_mix_weights_voice_tables():
    tables = {"af_a": np.ones((2, 1, 3), np.float32), "bm_b": np.zeros((2, 1, 3), np.float32)}
    assert np.allclose(kokoro_mix("af_a:0.25+bm_b:0.75", tables), 0.25)
    assert np.allclose(kokoro_mix("af_a", tables), 1.0)
    with pytest.raises(Exception, match="not in the voice tables"):
        kokoro_mix("xx_missing:1", tables)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("kokoro_onnx") is None, reason="the [tts] extra is not installed")
def test_kokoro_corpus_end_to_end(tmp_path):
    """A few Kokoro utterances written, with their codecs recorded in the metadata."""
    from asr.tts import kokoro_voices, synthesize

    if not synth_corpus.Path(synth_corpus.__file__).exists() or not kokoro_voices():
        pytest.skip("no Kokoro voice tables")
    samples = synthesize(Voice("kokoro", "af_heart:0.5+zm_yunxi:0.5", "en-us", 1.0, 1.1), "PRESS ONE FOR BILLING")
    assert samples.dtype == np.float32 and 0.5 < len(samples) / 16000 < 4 and np.abs(samples).max() > 0.05
    plan = synth_corpus.plan_corpus(short_utterances(200, 0), {"train": 0.002, "test": 0.001}, seed=0,
                                    family="kokoro")
    report = synth_corpus.write_corpus(tmp_path, plan, seed=0, jobs=1, show_progress=False, family="kokoro")
    assert report.failed == 0 and report.written == len(plan)
    metadata = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert {m["engine"] for m in metadata} == {"kokoro"} and all("codec" in m for m in metadata)
    assert json.loads((tmp_path / "speakers.json").read_text())["family"] == "kokoro"
