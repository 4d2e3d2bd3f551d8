"""`asr export`: a tuned model packed with fp16 weights and its LM in a folder that works wherever it is moved."""

import shutil

import pytest
import torch

from asr.checkpoint import FORMAT_VERSION, INT8_WEIGHTS_VERSION, load_model_file, save_model
from asr.cli import main
from asr.errors import CheckpointError
from asr.export import export_model, round_trip_error
from asr.features import FeatureConfig
from asr.model import BiLstmCtc, ModelConfig
from asr.ngram import build_arpa
from asr.text import Vocabulary
from asr.transcribe import load_model


@pytest.fixture
def tuned_model(tmp_path):
    torch.manual_seed(0)
    model = BiLstmCtc(ModelConfig(n_mels=80, hidden_size=32, num_layers=2, vocab_size=len(Vocabulary())))
    model.feature_mean.fill_(-5.0)
    lm = tmp_path / "exp" / "lm.arpa"
    lm.parent.mkdir()
    build_arpa(["THE CAT SAT", "A DOG RAN"] * 5, lm, order=2, discount_fallback=(0.5, 1.0, 1.5))
    path = tmp_path / "exp" / "model_lm.pt"
    save_model(path, model, FeatureConfig(), Vocabulary(),
               decoding={"lm": "lm.arpa", "lm_weight": 0.7, "word_bonus": 1.5, "lm_beam_size": 16})
    return path


def test_export_halves_the_weights_and_carries_the_lm(tuned_model, tmp_path):
    report = export_model(tuned_model, tmp_path / "package", name="default")
    assert [f.name for f in report.files] == ["default.pt", "default-lm.arpa"] and report.has_lm
    shutil.rmtree(tuned_model.parent)  # the package stands alone
    exported = load_model_file(tmp_path / "package" / "default.pt")
    assert exported.decoding == {"lm": "default-lm.arpa", "lm_weight": 0.7, "word_bonus": 1.5, "lm_beam_size": 16}
    assert exported.metadata["weights"] == "fp16"
    assert exported.model.feature_mean[0].item() == -5.0  # statistics are buffers, kept exact
    recognizer = load_model(tmp_path / "package" / "default.pt")
    assert recognizer.lm_decoder is not None and recognizer.lm_decoder.options.lm_weight == 0.7


def test_the_stored_penalties_are_used_unless_overridden(tuned_model):
    options = load_model(tuned_model).lm_decoder.options
    assert (options.unk_penalty, options.blank_penalty) == (-10.0, 0.0)  # tuned before they were stored: defaults
    model_file = load_model_file(tuned_model)
    save_model(tuned_model, model_file.model, model_file.feature_config, model_file.vocabulary,
               decoding=dict(model_file.decoding, unk_penalty=-20.0, blank_penalty=1.5))
    options = load_model(tuned_model).lm_decoder.options
    assert (options.unk_penalty, options.blank_penalty) == (-20.0, 1.5)
    options = load_model(tuned_model, unk_penalty=-5.0, blank_penalty=0.5).lm_decoder.options
    assert (options.unk_penalty, options.blank_penalty) == (-5.0, 0.5)


def test_fp16_and_int8_weights_barely_move_the_outputs(tuned_model, tmp_path):
    half = export_model(tuned_model, tmp_path / "half").files[0]
    full = export_model(tuned_model, tmp_path / "full", weights="fp32").files[0]
    int8 = export_model(tuned_model, tmp_path / "int8", weights="int8").files[0]
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert int8.stat().st_size < 0.6 * half.stat().st_size
    assert 0 < round_trip_error(tuned_model, half) < 0.02
    assert 0 < round_trip_error(tuned_model, int8) < 0.1
    assert round_trip_error(tuned_model, full) == 0
    assert load_model_file(int8).metadata["weights"] == "int8"
    # An int8 file exported again as fp16 is as close to the original as int8 was.
    again = export_model(int8, tmp_path / "again").files[0]
    assert round_trip_error(int8, again) < 0.02


def test_int8_weights_that_do_not_match_their_scales_are_refused(tuned_model, tmp_path):
    int8 = export_model(tuned_model, tmp_path / "int8", weights="int8").files[0]
    payload = torch.load(int8, weights_only=True)
    name = next(iter(payload["int8_scales"]))
    payload["int8_scales"][name] = payload["int8_scales"][name][:-1]
    del payload["tensor_sha256"]  # as in a file from before checksums: the scales themselves are checked
    torch.save(payload, int8)
    with pytest.raises(CheckpointError, match="int8/model.pt: damaged.*do not match their scales"):
        load_model_file(int8)


def test_an_int8_file_is_refused_by_readers_of_version_1_only(tuned_model, tmp_path):
    int8 = export_model(tuned_model, tmp_path / "int8", weights="int8").files[0]
    assert torch.load(int8, weights_only=True)["format_version"] == INT8_WEIGHTS_VERSION != FORMAT_VERSION
    assert torch.load(export_model(tuned_model, tmp_path / "half").files[0],
                      weights_only=True)["format_version"] == FORMAT_VERSION


def test_export_refuses_a_model_whose_lm_is_gone(tuned_model, tmp_path, capsys):
    (tuned_model.parent / "lm.arpa").unlink()
    assert main(["export", "--model", str(tuned_model), "--output-dir", str(tmp_path / "package")]) == 2
    error = capsys.readouterr().err
    assert "lm.arpa is missing" in error and error.count("\n") == 1
    assert not (tmp_path / "package" / "model.pt").exists()


def test_a_model_whose_lm_went_missing_decodes_without_it_and_says_so(tuned_model, tmp_path, caplog):
    (tuned_model.parent / "lm.arpa").unlink()
    with caplog.at_level("WARNING"):
        recognizer = load_model(tuned_model)
    assert recognizer.lm_decoder is None
    assert "lm.arpa is missing; decoding without it" in caplog.text
