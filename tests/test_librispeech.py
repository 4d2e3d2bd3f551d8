import json

import numpy as np
import soundfile

from asr.data import read_manifest
from asr.librispeech import prepare_real_dev, prepare_split
from conftest import write_tone


def make_chapter(root, speaker=19, chapter=198, n=3):
    folder = root / "dev-clean" / str(speaker) / str(chapter)
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        utt = f"{speaker}-{chapter}-{i:04d}"
        write_tone(folder / f"{utt}.flac", seconds=0.5 + 0.1 * i, fmt="FLAC")
        lines.append(f"{utt} HELLO NUMBER {i}")
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_prepares_a_clean_split(tmp_path):
    make_chapter(tmp_path)
    report = prepare_split(tmp_path / "dev-clean", tmp_path / "dev.jsonl")
    assert report.utterances == 3 and not report.problems
    utterances = read_manifest(tmp_path / "dev.jsonl")
    assert [u.id for u in utterances] == ["19-198-0000", "19-198-0001", "19-198-0002"]
    assert utterances[1].duration == 0.6 and utterances[1].speaker == "19" and utterances[1].text == "HELLO NUMBER ONE"  # normalised
    assert json.loads((tmp_path / "dev.jsonl").read_text().splitlines()[0])["audio"].startswith("dev-clean/")


def test_bad_entries_are_counted_and_skipped(tmp_path):
    folder = make_chapter(tmp_path, n=4)
    (folder / "19-198-0001.flac").unlink()  # missing audio
    (folder / "19-198-0002.flac").write_bytes(b"junk")  # unreadable audio
    with open(folder / "19-198.trans.txt", "a") as handle:
        handle.write("this line is malformed\n")
    write_tone(folder / "19-198-0009.flac", fmt="FLAC")  # audio nobody transcribed
    report = prepare_split(tmp_path / "dev-clean", tmp_path / "dev.jsonl")
    assert report.utterances == 2
    assert report.problems == {"missing audio": 1, "unreadable audio": 1, "malformed transcript line": 1,
                               "audio without transcript": 1}


def test_real_dev_layout(tmp_path):
    folder = tmp_path / "set1"
    (folder / "audio").mkdir(parents=True)
    soundfile.write(folder / "audio" / "u1.flac", np.zeros(8000, np.float32), 16000)
    (folder / "transcripts.txt").write_text("u1 Hello there, 2 friends\nu2 NO AUDIO\n")
    report = prepare_real_dev(tmp_path, tmp_path / "real.jsonl")
    assert report.utterances == 1 and report.problems == {"missing audio": 1}
    assert read_manifest(tmp_path / "real.jsonl")[0].text == "HELLO THERE TWO FRIENDS"
