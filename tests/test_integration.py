"""Train a tiny model on a few utterances of synthetic speech, then transcribe one through the `asr` command."""

import subprocess
import sys

import pytest
import torch

from asr.checkpoint import save_model
from asr.config import preset
from asr.evaluate import evaluate_manifest
from asr.features import FeatureConfig
from asr.metrics import char_error_rate
from asr.model import BiLstmCtc
from asr.synth_corpus import speak_to_manifest
from asr.text import Vocabulary
from asr.tts import Voice

SENTENCES = ["THE CAT SAT ON THE MAT", "A DOG RAN IN THE PARK", "SHE READ A GOOD BOOK",
             "WE WALKED TO THE OLD HOUSE", "HE LIKES GREEN APPLES", "THE SUN IS WARM TODAY"]
VOICES = [Voice("espeak-ng", "m3", "en-us"), Voice("flite", "slt")]


@pytest.mark.slow
def test_tiny_model_learns_speech_and_the_cli_transcribes_it(tmp_path):
    manifest = speak_to_manifest(tmp_path / "data", SENTENCES, VOICES)

    torch.manual_seed(0)
    untrained_path = tmp_path / "untrained.pt"
    save_model(untrained_path, BiLstmCtc(preset("tiny").model), FeatureConfig(), Vocabulary())
    untrained = evaluate_manifest(untrained_path, manifest, show_progress=False)

    command = [sys.executable, "-m", "asr"]
    subprocess.run(command + ["train", "--train-manifest", str(manifest), "--exp-dir", str(tmp_path / "exp"),
                              "--preset", "tiny", "--device", "cpu", "--no-progress"], check=True)
    model_path = tmp_path / "exp" / "model.pt"
    trained = evaluate_manifest(model_path, manifest, show_progress=False)
    print(f"training-set CER: untrained {untrained.cer}, trained {trained.cer}")
    assert untrained.cer.rate > 0.8
    assert trained.cer.rate < 0.15

    audio = tmp_path / "data" / "utt000.flac"
    result = subprocess.run(command + ["transcribe", str(audio), "--model", str(model_path)],
                            capture_output=True, text=True, check=True)
    transcript = result.stdout.strip()
    assert char_error_rate([SENTENCES[0]], [transcript]).rate < 0.3, transcript

    # A word LM from the sentences, tuned on the same manifest, stored with the model, used by default.
    text = tmp_path / "text.txt"
    text.write_text("\n".join(SENTENCES) + "\n")
    lm_path = tmp_path / "lm.arpa"
    subprocess.run(command + ["lm", "build", "--text", str(text), "--order", "3", "--discount-fallback",
                              "--output", str(lm_path)], check=True)
    tuned_path = tmp_path / "tuned.pt"
    subprocess.run(command + ["lm", "tune", "--model", str(model_path), "--lm", str(lm_path), "--manifest",
                              str(manifest), "--lm-weights", "0", "1", "--word-bonuses", "0", "1",
                              "--unk-penalties", "-10", "-20", "--blank-penalties", "0", "1",
                              "--beam-sizes", "4", "16", "--passes", "1", "3", "--output", str(tuned_path),
                              "--plot", str(tmp_path / "grid.png"), "--no-progress"], check=True)
    decoding = torch.load(tuned_path, weights_only=True)["decoding"]
    assert decoding["passes"] in (1, 3) and decoding["lm_beam_size"] in (4, 16)
    assert decoding["lm"] == "lm.arpa" and decoding["lm_weight"] in (0, 1) and decoding["word_bonus"] in (0, 1)
    assert decoding["unk_penalty"] in (-10, -20) and decoding["blank_penalty"] in (0, 1)
    assert (tmp_path / "grid.png").stat().st_size > 0
    with_lm = evaluate_manifest(tuned_path, manifest, show_progress=False)
    without_lm = evaluate_manifest(tuned_path, manifest, show_progress=False, lm=False)
    print(f"training-set WER: without LM {without_lm.wer}, with the tuned LM {with_lm.wer}")
    assert with_lm.wer.rate <= without_lm.wer.rate
    result = subprocess.run(command + ["transcribe", str(audio), "--model", str(tuned_path)],
                            capture_output=True, text=True, check=True)
    assert char_error_rate([SENTENCES[0]], [result.stdout.strip()]).rate < 0.3, result.stdout
