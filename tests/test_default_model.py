"""The bundled default model: `asr transcribe FILE` with no other flag gives the example's transcript."""

import json
from pathlib import Path

from asr.cli import main
from asr.models import MODELS_DIR, default_model_path
from asr.transcribe import load_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_transcribe_with_no_flags_uses_the_bundled_model_and_its_lm(capsys):
    assert main(["transcribe", str(EXAMPLES / "speech.flac"), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == (EXAMPLES / "speech.txt").read_text().strip()


def test_bundled_model_and_lm_fit_in_100_mb():
    recognizer = load_model(default_model_path())
    assert recognizer.lm_decoder is not None  # the tuned LM is found beside the model
    bundled = sum(f.stat().st_size for f in MODELS_DIR.iterdir() if f.name.startswith("default"))
    assert bundled <= 100e6  # the budget for model and LM together
    assert (MODELS_DIR / "README.md").is_file()  # the model card


def test_evaluate_with_no_model_scores_the_bundled_one(tmp_path, capsys):
    import soundfile

    audio = EXAMPLES / "speech.flac"
    manifest = tmp_path / "example.jsonl"
    manifest.write_text(json.dumps({"id": "example", "audio": str(audio), "duration": soundfile.info(audio).duration,
                                    "text": (EXAMPLES / "speech.txt").read_text().strip()}) + "\n")
    assert main(["evaluate", "--manifest", str(manifest), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("WER 0.00%") and "acoustic model" not in captured.err


def test_evaluate_int8_scores_with_quantised_layers(tmp_path, capsys, monkeypatch):
    import soundfile

    import asr.evaluate

    audio = EXAMPLES / "speech.flac"
    manifest = tmp_path / "example.jsonl"
    manifest.write_text(json.dumps({"id": "example", "audio": str(audio), "duration": soundfile.info(audio).duration,
                                    "text": (EXAMPLES / "speech.txt").read_text().strip()}) + "\n")
    asked = {}
    real_load_model = asr.evaluate.load_model

    def spy(*args, **kwargs):
        asked.update(kwargs)
        return real_load_model(*args, **kwargs)

    monkeypatch.setattr(asr.evaluate, "load_model", spy)
    assert main(["evaluate", "--manifest", str(manifest), "--int8", "--no-progress"]) == 0
    assert asked["int8"] is True
    assert capsys.readouterr().out.startswith("WER 0.00%")


def test_load_model_with_no_argument_is_the_bundled_default_with_its_lm():
    import asr

    recognizer = asr.load_model()
    assert recognizer.lm_decoder is not None
    reference = (EXAMPLES / "speech.txt").read_text().strip()
    assert recognizer.transcribe(str(EXAMPLES / "speech.flac")).text == reference
    assert asr.transcribe(str(EXAMPLES / "speech.flac")).text == reference  # the one-call form


def test_the_bundled_model_votes_the_passes_tuned_with_it_unless_told_otherwise():
    import torch

    stored = torch.load(default_model_path(), weights_only=True)["decoding"]["passes"]  # `asr lm tune --passes`
    assert stored > 1 and len(load_model(default_model_path()).delays) == stored
    assert load_model(default_model_path(), passes=1).delays == [0]
