"""Real-speech corpora: speechocean762 and FSDD from their published layouts and from the shared layout, split by
speaker with the fixed dev speakers never in train."""

import numpy as np
import pytest
import soundfile

from asr.cli import main
from asr.data import read_manifest
from asr.errors import AsrError
from asr.real_corpora import FSDD_DEV_SPEAKERS, SPEECHOCEAN762_DEV_SPEAKERS, prepare

DEV = sorted(SPEECHOCEAN762_DEV_SPEAKERS)[0]


def _tone(path, seconds=0.5, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.1 * np.sin(np.arange(int(seconds * rate)) * 0.05)).astype(np.float32), rate)


def _speechocean762_as_published(root):
    """Two train speakers and one dev speaker in OpenSLR 101's layout, with one utterance whose audio is missing."""
    for half, speakers in (("train", ["0001", "0002"]), ("test", [DEV])):
        (root / half).mkdir(parents=True)
        text, utt2spk = [], []
        for speaker in speakers:
            for n in range(2):
                utterance = f"{speaker}{n:05d}"
                _tone(root / "WAVE" / f"SPEAKER{speaker}" / f"{utterance}.WAV")
                text.append(f"{utterance} WE CALL IT BEAR {n}")
                utt2spk.append(f"{utterance} {speaker}")
        text.append("999900000 NO AUDIO FOR THIS ONE")
        utt2spk.append("999900000 9999")
        (root / half / "text").write_text("\n".join(text) + "\n")
        (root / half / "utt2spk").write_text("\n".join(utt2spk) + "\n")


def test_speechocean762_published_layout_splits_by_speaker(tmp_path):
    source = tmp_path / "speechocean762"
    _speechocean762_as_published(source)
    reports = prepare("speechocean762", source, tmp_path / "out")
    train = read_manifest(tmp_path / "out" / "speechocean762-train.jsonl")
    dev = read_manifest(tmp_path / "out" / "speechocean762-dev.jsonl")
    assert {u.speaker for u in train} == {"0001", "0002"} and {u.speaker for u in dev} == {DEV}
    assert len(train) == 4 and len(dev) == 2
    assert train[0].text == "WE CALL IT BEAR ZERO"  # normalised: the digit spelt out
    assert reports["train"].problems == {"missing audio": 2}  # one in each half, counted, not fatal


def test_fsdd_published_layout(tmp_path):
    source = tmp_path / "fsdd"
    for name in ("0_george_0", "7_george_1", "3_theo_0", "9_jackson_12"):
        _tone(source / "recordings" / f"{name}.wav", rate=8000)
    _tone(source / "recordings" / "notes.wav", rate=8000)  # not <digit>_<speaker>_<n>: skipped, counted
    reports = prepare("fsdd", source, tmp_path / "out")
    train = read_manifest(tmp_path / "out" / "fsdd-train.jsonl")
    dev = read_manifest(tmp_path / "out" / "fsdd-dev.jsonl")
    assert sorted(u.text for u in train) == ["NINE", "SEVEN", "ZERO"]
    assert [(u.speaker, u.text) for u in dev] == [("theo", "THREE")] and "theo" in FSDD_DEV_SPEAKERS
    assert reports["train"].problems == {"unexpected file name": 1}


def test_shared_layout_through_the_cli(tmp_path, capsys):
    source = tmp_path / "shared" / "fsdd"
    rows = [("1_lucas_0", "lucas", "train"), ("2_lucas_1", "lucas", "train"), ("5_theo_3", "theo", "dev")]
    for utterance, _, _ in rows:
        _tone(source / "audio" / f"{utterance}.flac", rate=8000)
    (source / "transcripts.txt").write_text("1_lucas_0 ONE\n2_lucas_1 TWO\n5_theo_3 FIVE\n")
    (source / "utterances.tsv").write_text("id\tspeaker\tsplit\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows))
    assert main(["corpus", "real-train", "--corpus", "fsdd", "--source", str(tmp_path / "shared"),
                 "--output-dir", str(tmp_path / "out")]) == 0
    assert "fsdd train: 2 utterances" in capsys.readouterr().out
    assert [u.text for u in read_manifest(tmp_path / "out" / "fsdd-dev.jsonl")] == ["FIVE"]


def test_the_shared_copy_keeps_dev_speakers_out_of_train(tmp_path):
    """The real ../shared/data/real-train, where present: no dev speaker in train, and the shared split agrees."""
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-train"
    if not (shared / "fsdd").is_dir():
        pytest.skip("../shared/data/real-train is not beside this checkout")
    for corpus, dev_speakers in (("fsdd", FSDD_DEV_SPEAKERS), ("speechocean762", SPEECHOCEAN762_DEV_SPEAKERS)):
        prepare(corpus, shared / corpus, tmp_path)
        train = read_manifest(tmp_path / f"{corpus}-train.jsonl")
        dev = read_manifest(tmp_path / f"{corpus}-dev.jsonl")
        assert not {u.speaker for u in train} & dev_speakers and {u.speaker for u in dev} == dev_speakers
        shared_dev = {line.split("\t")[0] for line in (shared / corpus / "utterances.tsv").read_text().splitlines()
                      if line.endswith("\tdev")}
        assert {u.id for u in dev} == shared_dev


def test_a_folder_in_neither_layout_is_one_clear_error(tmp_path):
    (tmp_path / "speechocean762").mkdir()
    with pytest.raises(AsrError, match="neither speechocean762's own layout"):
        prepare("speechocean762", tmp_path / "speechocean762", tmp_path / "out")
    assert main(["corpus", "real-train", "--corpus", "fsdd", "--source", str(tmp_path / "missing"),
                 "--output-dir", str(tmp_path / "out")]) == 2
