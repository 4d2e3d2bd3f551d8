"""Word voting between transcripts of the same audio, and the recognizer's passes at several delays."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.cli import main
from asr.models import default_model_path
from asr.ngram import build_arpa
from asr.transcribe import load_model
from asr.transcript import Transcript, Word, shifted
from asr.voting import consensus_index, vote

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def transcript(text: str, confidence: float = 1.0, offset: float = 0.0) -> Transcript:
    """Words one second apart (plus `offset`), each lasting half a second."""
    words = tuple(Word(w, i + offset, i + offset + 0.5, confidence) for i, w in enumerate(text.split()))
    return Transcript(text, words, confidence, 10.0)


def texts(*transcripts: Transcript) -> str:
    return vote(transcripts).text


def test_the_majority_word_wins_a_column():
    assert texts(transcript("A B C"), transcript("A X C"), transcript("A B C")) == "A B C"
    assert texts(transcript("A X C"), transcript("A B C"), transcript("A X C")) == "A X C"


def test_a_word_most_transcripts_dropped_is_dropped():
    assert texts(transcript("A B C"), transcript("A C"), transcript("A C")) == "A C"


def test_a_word_inserted_by_a_majority_is_kept_and_one_inserted_by_a_minority_is_not():
    # All three are as far from each other, so the first ("A B") is the pivot; C is inserted after it by two of
    # the three, D and E by one each.
    assert texts(transcript("A B"), transcript("A B C E"), transcript("A B D C")) == "A B C"


def test_a_tie_keeps_the_pivots_word():
    # Two against two, the pivot (the first of equals) decides.
    assert texts(transcript("A B"), transcript("A X"), transcript("A B"), transcript("A X")) == "A B"


def test_the_consensus_is_the_transcript_nearest_all_others():
    assert consensus_index([["A", "X", "Y"], ["A", "B", "C"], ["A", "B", "Z"]]) == 1


def test_kept_words_take_their_voters_mean_times_and_agreement_as_confidence():
    voted = vote([transcript("A B", 0.9), transcript("A B", 0.6, offset=0.1), transcript("A X", 0.3)])
    first, second = voted.words
    assert (first.text, first.start, first.end) == ("A", 0.033, 0.533)
    assert first.confidence == pytest.approx(0.6)  # mean 0.6, all three agree
    assert (second.text, second.start) == ("B", 1.05)
    assert second.confidence == pytest.approx(0.75 * 2 / 3, abs=1e-4)  # mean 0.75, two of three agree
    assert voted.text == "A B" and voted.duration == 10.0


def test_one_transcript_is_returned_as_it_is_and_none_is_an_error():
    only = transcript("A B")
    assert vote([only]) is only
    with pytest.raises(ValueError):
        vote([])


def test_empty_transcripts_vote_for_silence():
    assert texts(transcript(""), transcript(""), transcript("A")) == ""
    assert texts(transcript("A"), transcript("A"), transcript("")) == "A"


def test_shifted_moves_word_times_back_and_keeps_them_in_the_audio():
    moved = shifted(transcript("A B"), 0.02, 1.2)
    assert [(w.start, w.end) for w in moved.words] == [(0.0, 0.48), (0.98, 1.2)]
    assert moved.duration == 1.2


def test_passes_delay_the_audio_evenly_across_one_lstm_step():
    recognizer = load_model(default_model_path(), lm=False, passes=4)
    assert recognizer.delays == [0, 160, 320, 480]  # 0, 10, 20, 30 ms: the model steps 40 ms at a time
    with pytest.raises(Exception, match="from 1 to 16"):
        load_model(default_model_path(), lm=False, passes=0)


def test_transcribe_and_evaluate_with_passes_give_the_example_transcript(tmp_path, capsys):
    reference = (EXAMPLES / "speech.txt").read_text().strip()
    audio = EXAMPLES / "speech.flac"
    result = load_model(default_model_path(), passes=3).transcribe(audio)
    assert result.text == reference
    assert all(0 <= w.start <= w.end <= result.duration for w in result.words)
    assert result.duration == pytest.approx(soundfile.info(audio).duration, abs=1e-3)

    manifest = tmp_path / "example.jsonl"
    manifest.write_text(json.dumps({"id": "example", "audio": str(audio), "duration": result.duration,
                                    "text": reference}) + "\n")
    assert main(["evaluate", "--manifest", str(manifest), "--passes", "3", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("WER 0.00%")


def test_a_long_file_is_voted_over_whole_passes_with_times_in_the_file(tmp_path):
    speech, rate = soundfile.read(EXAMPLES / "speech.flac", dtype="float32")
    pause = np.zeros(rate, dtype=np.float32)
    soundfile.write(tmp_path / "long.wav", np.concatenate([speech, pause] * 7), rate)  # over one 20 s window
    recognizer = load_model(default_model_path(), passes=3)
    assert recognizer.window.window_seconds < 7 * (len(speech) + rate) / rate
    result = recognizer.transcribe(tmp_path / "long.wav")
    reference = (EXAMPLES / "speech.txt").read_text().strip()
    assert result.text == " ".join([reference] * 7)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and 0 <= starts[0] and result.words[-1].end <= result.duration


def test_vote_across_models_tool_prints_each_model_and_the_joint_vote(tmp_path, model_path, noise_manifest):
    lm = tmp_path / "lm.arpa"
    build_arpa(["HELLO", "A CAT", "THE DOG", "GO HOME"] * 5, lm, order=2, discount_fallback=(0.5, 1.0, 1.5))
    tool = Path(__file__).resolve().parent.parent / "tools" / "vote_across_models.py"
    run = subprocess.run([sys.executable, str(tool), "--manifest", str(noise_manifest), "--lm", str(lm),
                          "--model", f"{model_path}:3", "--model", f"{model_path}:2", "--beam-size", "4",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = run.stdout.splitlines()[1:]
    assert [row.split()[-1] for row in rows[:2]] == [f"{model_path}:3", f"{model_path}:2"]
    assert rows[2].endswith(f"{model_path}:3 + {model_path}:2")
    # An untrained model writes (almost) nothing, so every row scores close to all words deleted.
    assert all(float(row.split()[0]) >= 90 for row in rows)
    missing = subprocess.run([sys.executable, str(tool), "--manifest", str(noise_manifest), "--lm", str(lm),
                              "--model", str(tmp_path / "none.pt")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "none.pt" in missing.stderr
