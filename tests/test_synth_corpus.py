"""Generates a few seconds of corpus with the real engines (CI installs them) and checks it end to end."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile

from asr import synth_corpus
from asr.librispeech import prepare_split
from asr.text import normalize_text

SENTENCES = [normalize_text(s) for s in [
    "The old man walked slowly along the river bank.", "She opened the window and looked at the garden.",
    "Nobody knew where the little boat had gone.", "We shall meet again at the end of the summer.",
    "He wrote a long letter to his brother in London.", "The children laughed and ran across the field.",
    "It was a cold morning in the middle of winter.", "They sat by the fire and told stories all night.",
    "A bright star shone above the quiet village.", "The captain gave his orders in a loud voice.",
] * 6]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    sentences = [f"{s} {normalize_text(str(n))}" for n in range(40) for s in SENTENCES[:10]]  # 400 distinct
    plan = synth_corpus.plan_corpus(sentences, {"train": 0.004, "dev": 0.002, "test": 0.002}, seed=3,
                                    dev_clean=[("84-121123-0000", "GO DO YOU HEAR")], dev_clean_hours=0.001)
    report = synth_corpus.write_corpus(root, plan, seed=3, jobs=2, show_progress=False)
    return root, plan, report, sentences


def test_layout_transcripts_and_audio(corpus):
    root, plan, report, _ = corpus
    assert report.failed == 0 and report.utterances == len(plan) == report.written
    assert {u.split for u in plan} == {"train", "dev", "test", "dev-clean-text"}
    for utterance in plan:
        path = root / utterance.relative_path
        speaker, chapter, _ = utterance.id.split("-")
        assert path.parent == root / utterance.split / speaker / chapter
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        transcript = path.parent / f"{speaker}-{chapter}.trans.txt"
        assert f"{utterance.id} {utterance.text}" in transcript.read_text().splitlines()
    assert (root / "dev-clean-text" / "84" / "121123" / "84-121123-0000.flac").exists()
    metadata = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines()]
    assert len(metadata) == len(plan)
    assert all({"engine", "name", "pitch", "rate", "noise", "snr_db", "rt60", "telephone", "gain_db"} <= set(m)
               for m in metadata)
    assert report.hours == pytest.approx(sum(m["duration"] for m in metadata) / 3600, rel=1e-3)


def test_librispeech_preparation_reads_it_unchanged(corpus, tmp_path):
    root, plan, _, _ = corpus
    report = prepare_split(root / "train", tmp_path / "train.jsonl")
    assert report.utterances == sum(u.split == "train" for u in plan) and not report.problems


def test_splits_are_disjoint_in_speakers_and_text(corpus):
    _, plan, _, _ = corpus
    speakers = synth_corpus.speaker_plan(3)
    voices = {split: {s.voice for s in speakers[split]} for split in synth_corpus.SPLITS}
    assert not voices["train"] & voices["dev"] and not voices["train"] & voices["test"]
    assert not voices["dev"] & voices["test"]
    texts = {split: {u.text for u in plan if u.split == split} for split in synth_corpus.SPLITS}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]


def test_deterministic_and_resumable(corpus, tmp_path):
    root, plan, _, _ = corpus
    subset = [u for u in plan if u.split in ("dev", "test")]
    again = synth_corpus.write_corpus(tmp_path, subset, seed=3, jobs=1, show_progress=False)
    assert again.written == len(subset)
    for utterance in subset:
        first, _ = soundfile.read(root / utterance.relative_path)
        second, _ = soundfile.read(tmp_path / utterance.relative_path)
        assert np.array_equal(first, second), utterance.id
    (tmp_path / subset[0].relative_path).unlink()
    resumed = synth_corpus.write_corpus(tmp_path, subset, seed=3, jobs=1, show_progress=False)
    assert resumed.written == 1 and resumed.utterances == len(subset)


def test_conditions_change_the_audio(tmp_path):
    utterance = synth_corpus.PlannedUtterance("dev", 5000, 500001, 0, "HELLO THERE", synth_corpus.Conditions())
    voice = synth_corpus.speaker_plan(0)["dev"][0].voice
    clean = synth_corpus.render(utterance, voice, [voice], ["A B C"], seed=0)
    noisy = synth_corpus.render(dataclasses.replace(utterance, conditions=synth_corpus.Conditions(
        speed=1.1, noise="babble", snr_db=5, rt60=0.5, telephone=True)), voice, [voice], ["OTHER TALKERS"], seed=0)
    assert len(noisy) == pytest.approx(len(clean) / 1.1, rel=0.01)
    assert not np.allclose(noisy[:1000], clean[:1000])


def test_missing_engine_names_the_package(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda program: None)
    from asr.tts import EngineMissing, check_engine
    with pytest.raises(EngineMissing, match="Debian package flite"):
        check_engine("flite")


def test_sentence_reading_counts_what_it_drops(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hello world, this is fine.\nSHORT\n\n" + "WORD " * 40 + "\nTHIS ONE IS ALREADY NORMAL\n")
    sentences, counts = synth_corpus.read_sentences(path)
    assert sentences == ["HELLO WORLD THIS IS FINE", "THIS ONE IS ALREADY NORMAL"]
    assert counts["normalised"] == 1 and counts["dropped_length"] == 2 and counts["dropped_empty"] == 1


def test_more_hours_keep_the_planned_utterances_and_add_after_them():
    sentences = [f"{s} {normalize_text(str(n))}" for n in range(200) for s in SENTENCES[:10]]
    hours = {"train": 0.05, "dev": 0.01, "test": 0.01}
    smaller = synth_corpus.plan_corpus(sentences, hours, seed=5)
    larger = synth_corpus.plan_corpus(sentences, {**hours, "train": 0.2}, seed=5)
    for split in ("train", "dev", "test"):
        before = [u for u in smaller if u.split == split]
        after = [u for u in larger if u.split == split]
        assert after[:len(before)] == before  # same ids, texts and conditions: existing files stay valid
        if split == "train":
            assert len(after) > len(before)
        else:
            assert after == before


def test_skipping_train_hours_writes_only_the_utterances_planned_after_them(tmp_path, capsys):
    from asr.cli import main

    sentences = [f"{s} {normalize_text(str(n))}" for n in range(40) for s in SENTENCES[:10]]
    text = tmp_path / "text.txt"
    text.write_text("\n".join(sentences) + "\n")
    common = ["corpus", "synth", "--root", str(tmp_path / "corpus"), "--text", str(text), "--dev-hours", "0",
              "--test-hours", "0", "--seed", "2", "--jobs", "2", "--no-progress"]
    assert main(common + ["--hours", "0.006", "--skip-train-hours", "0.003"]) == 0
    first = {u.id for u in synth_corpus.plan_corpus(sentences, {"train": 0.003}, seed=2)}
    everything = {u.id for u in synth_corpus.plan_corpus(sentences, {"train": 0.006}, seed=2)}
    written = {p.stem for p in (tmp_path / "corpus" / "train").rglob("*.flac")}
    assert first and written == everything - first
    for skip in ("0.003", "-1"):  # nothing left to write; a negative skip is a typo, not "skip nothing"
        assert main(common + ["--hours", "0.003", "--skip-train-hours", skip]) == 2
        assert "skip more than 0 h and fewer hours than the corpus has" in capsys.readouterr().err
