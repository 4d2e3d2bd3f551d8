"""Every stage of recipes/librispeech/run.sh on a tiny synthetic corpus, as a user would run it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.checkpoint import load_model_file, load_model_or_checkpoint
from asr.data import read_manifest
from asr.text import normalize_text

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "librispeech" / "run.sh"
SENTENCES = ["THE OLD MAN WALKED SLOWLY ALONG THE RIVER BANK", "SHE OPENED THE WINDOW AND LOOKED AT THE GARDEN",
             "NOBODY KNEW WHERE THE LITTLE BOAT HAD GONE", "WE SHALL MEET AGAIN AT THE END OF THE SUMMER",
             "HE WROTE A LONG LETTER TO HIS BROTHER IN LONDON", "THE CHILDREN LAUGHED AND RAN ACROSS THE FIELD",
             "IT WAS A COLD MORNING IN THE MIDDLE OF WINTER", "THEY SAT BY THE FIRE AND TOLD STORIES ALL NIGHT"]


@pytest.mark.slow
def test_all_stages_on_a_tiny_synthetic_corpus(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"{s} {normalize_text(str(n))}" for n in range(50) for s in SENTENCES))
    real = tmp_path / "real-dev" / "fixture"
    (real / "audio").mkdir(parents=True)
    soundfile.write(real / "audio" / "r1.flac", 0.01 * np.random.default_rng(0).standard_normal(16000), 16000)
    (real / "transcripts.txt").write_text("r1 hello world\n")
    word_counts = tmp_path / "words.count.txt"
    word_counts.write_text("zebra\t2\nquokka\t0\n")
    data, exp = tmp_path / "data", tmp_path / "exp"
    command = ["bash", str(RECIPE), "--data-dir", str(data), "--exp-dir", str(exp), "--preset", "tiny",
               "--set", "train.epochs=3", "--set", "train.max_batch_frames=3000", "--synth-hours", "0.01",
               "--synth-eval-hours", "0.002", "--synth-jobs", "2", "--synth-text", str(text), "--shard-mb", "0.2",
               "--average-last", "2", "--beam-size", "2", "--device", "cpu", "--real-dev", str(tmp_path / "real-dev"),
               "--lm-text", str(text), "--lm-order", "3", "--lm-prune", "0 0 1", "--lm-weights", "0 0.5",
               "--word-bonuses", "0 1", "--unk-penalties", "-10 -20", "--blank-penalties", "0 0.5",
               "--lm-beam-size", "4",
               "--lm-add-words", str(word_counts)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    manifests = data / "manifests"
    for split in ["train", "dev", "test", "dev-clean-text", "real-dev", "valid-subset"]:
        assert read_manifest(manifests / f"{split}.jsonl"), split
    shards = sorted((data / "shards" / "train").glob("shard-*.tar"))
    assert len(shards) > 1 and (data / "shards" / "train" / "shards.json").exists()
    assert (exp / "feature_stats.pt").exists() and (exp / "training_curves.png").exists()
    assert any((exp / "tensorboard").iterdir())
    averaged = load_model_file(exp / "model_avg.pt")
    assert averaged.metadata["averaged_checkpoints"] == ["epoch-2.pt", "epoch-3.pt"]
    other_run = tmp_path / "other-run" / "epoch-1.pt"  # a checkpoint from another folder, as of an earlier run
    other_run.parent.mkdir()
    other_run.write_bytes((exp / "checkpoints" / "epoch-1.pt").read_bytes())
    sibling = subprocess.run([sys.executable, str(RECIPE.parent / "local" / "average.py"), "--exp-dir", str(exp),
                              "--last", "1", "--with-checkpoints", str(other_run),
                              "--output", str(tmp_path / "with_sibling.pt")], capture_output=True, text=True)
    assert sibling.returncode == 0, sibling.stderr[-2000:]
    with_sibling = load_model_file(tmp_path / "with_sibling.pt")
    assert with_sibling.metadata["averaged_checkpoints"] == [str(other_run), str(exp / "checkpoints" / "epoch-3.pt")]
    only_given = subprocess.run([sys.executable, str(RECIPE.parent / "local" / "average.py"), "--exp-dir", str(exp),
                                 "--last", "0", "--with-checkpoints", str(other_run), str(other_run),
                                 str(exp / "checkpoints" / "epoch-3.pt"), "--output", str(tmp_path / "two_to_one.pt")],
                                capture_output=True, text=True)
    assert only_given.returncode == 0, only_given.stderr[-2000:]
    two_to_one = load_model_file(tmp_path / "two_to_one.pt")  # a file given twice counts twice; no epoch added
    assert len(two_to_one.metadata["averaged_checkpoints"]) == 3
    missing = subprocess.run([sys.executable, str(RECIPE.parent / "local" / "average.py"), "--exp-dir", str(exp),
                              "--with-checkpoints", str(tmp_path / "missing.pt"), "--output", str(tmp_path / "x.pt")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "missing.pt" in missing.stderr and len(missing.stderr.splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()
    first_epoch, last_epoch = (load_model_or_checkpoint(exp / "checkpoints" / f"epoch-{n}.pt").model.state_dict()
                               for n in (1, 3))
    weight = "output.weight"
    assert torch.allclose(with_sibling.model.state_dict()[weight], (first_epoch[weight] + last_epoch[weight]) / 2)
    assert torch.allclose(two_to_one.model.state_dict()[weight], (2 * first_epoch[weight] + last_epoch[weight]) / 3)
    results = (exp / "RESULTS.md").read_text()
    assert (data / "lm" / "lm.bin").exists()
    lm_words = (data / "lm" / "lm.bin.words").read_text().split()
    assert "ZEBRA" in lm_words and "QUOKKA" not in lm_words  # added from the list when counted at least once
    tuned = load_model_file(exp / "model_lm.pt")
    assert tuned.decoding["lm_weight"] in (0, 0.5) and tuned.decoding["lm_beam_size"] == 4
    assert tuned.decoding["unk_penalty"] in (-10, -20) and tuned.decoding["blank_penalty"] in (0, 0.5)
    assert (exp / "lm_tuning.png").exists()
    for name in ["dev", "test", "dev-clean-text", "real-dev", "greedy", "beam 2", "beam 4 + LM"]:
        assert f"| {name} |" in results or f"| {name}" in results, name
    assert (exp / "decode" / "dev-greedy.errors.txt").read_text().startswith("WER ")
    packaged = load_model_file(exp / "package" / "default.pt")  # stage 9: fp16 weights, the LM copied beside
    assert packaged.decoding["lm"] == "default-lm.bin" and (exp / "package" / "default-lm.bin.words").exists()
    assert (exp / "package" / "default.pt").stat().st_size < 0.6 * (exp / "model_lm.pt").stat().st_size

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("done before, skipped") == 10  # idempotent


def test_natural_recipe_explains_itself_and_refuses_unknown_options():
    natural = RECIPE.parent / "natural.sh"
    shown = subprocess.run(["bash", str(natural), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "7 package" in shown.stdout and "set -euo" not in shown.stdout
    refused = subprocess.run(["bash", str(natural), "--bogus"], capture_output=True, text=True)
    assert refused.returncode == 2 and "unknown option --bogus" in refused.stderr
    # Options that cannot work are refused before any stage starts, in one line naming the option.
    for options, named in [(["--start-model", "no-such-model.pt"], "no-such-model.pt"),
                           (["--hidden-size", "256"], "--hidden-size 256"),
                           (["--hidden-size", "512", "--average-with-start"], "--average-with-start")]:
        refused = subprocess.run(["bash", str(natural), *options, "--exp-dir", "/nonexistent/exp"],
                                 capture_output=True, text=True)
        assert refused.returncode == 2 and named in refused.stderr and len(refused.stderr.splitlines()) == 1, options
        assert "stage 0" not in refused.stdout
