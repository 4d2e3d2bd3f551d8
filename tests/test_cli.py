import json

import numpy as np
import pytest
import soundfile

import asr
from asr.cli import main
from asr.lm import LanguageModel
from conftest import write_tone


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bad_inputs(folder):
    (folder / "text.wav").write_text("this is not audio")
    soundfile.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    soundfile.write(folder / "nan.wav", np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    (folder / "adir").mkdir()
    return {"missing.wav": "no such file", "text.wav": "not a readable audio file", "empty.wav": "no audio samples",
            "nan.wav": "NaN or infinite", "adir": "no audio files"}  # a directory is searched for audio


def test_each_bad_input_gives_one_line_and_exit_2(tmp_path, model_path, capsys):
    for name, problem in bad_inputs(tmp_path).items():
        code, out, err = run(["transcribe", tmp_path / name, "--model", model_path], capsys)
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(tmp_path / name) in lines[0] and problem in lines[0], err
        assert "Traceback" not in err


def test_bad_model_files(tmp_path, capsys):
    write_tone(tmp_path / "ok.wav")
    (tmp_path / "junk.pt").write_bytes(b"\x00\x01garbage")
    for model, problem in [(tmp_path / "junk.pt", "not a readable asr model file"),
                           (tmp_path / "none.pt", "no such model file"), (tmp_path, "is a directory")]:
        code, _, err = run(["transcribe", tmp_path / "ok.wav", "--model", model], capsys)
        assert code == 2 and problem in err and len(err.strip().splitlines()) == 1, err
        assert "weights_only" not in err  # torch's advice to load untrusted files with code must not reach users


def test_good_files_still_transcribed_beside_a_bad_one(tmp_path, model_path, capsys):
    write_tone(tmp_path / "a.wav")
    write_tone(tmp_path / "b.flac", fmt="FLAC")
    code, out, err = run(["transcribe", tmp_path / "a.wav", tmp_path / "missing.wav", tmp_path / "b.flac",
                          "--model", model_path], capsys)
    assert code == 2 and "missing.wav" in err
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(tmp_path / "a.wav"), str(tmp_path / "b.flac")]


def test_json_output_and_api_agree(tmp_path, model_path, capsys):
    write_tone(tmp_path / "a.wav", seconds=1.2)
    code, out, _ = run(["transcribe", tmp_path / "a.wav", "--model", model_path, "--format", "json",
                        "--beam-size", "3"], capsys)
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"text", "words", "confidence", "duration", "source"}
    assert result["duration"] == pytest.approx(1.2) and 0.0 <= result["confidence"] <= 1.0
    api = asr.load_model(model_path, beam_size=3).transcribe(tmp_path / "a.wav")
    assert api.text == result["text"]


def test_api_accepts_paths_lists_and_waveforms(tmp_path, model_path):
    recognizer = asr.load_model(model_path)
    tone = write_tone(tmp_path / "a.wav", seconds=0.8)
    single = recognizer.transcribe(str(tmp_path / "a.wav"))
    assert isinstance(single, asr.Transcript)
    assert recognizer.transcribe(tone, sample_rate=16000).text == single.text
    many = recognizer.transcribe([tmp_path / "a.wav", tmp_path / "a.wav"])
    assert [t.text for t in many] == [single.text, single.text]
    with pytest.raises(asr.AudioError, match="missing.wav"):
        recognizer.transcribe([tmp_path / "a.wav", tmp_path / "missing.wav"])


def test_bad_manifest_and_config_in_train(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text("{broken\n")
    code, _, err = run(["train", "--train-manifest", tmp_path / "m.jsonl", "--exp-dir", tmp_path / "e",
                        "--preset", "tiny"], capsys)
    assert code == 2 and "m.jsonl:1" in err
    code, _, err = run(["train", "--train-manifest", tmp_path / "m.jsonl", "--exp-dir", tmp_path / "e",
                        "--set", "train.nope=1"], capsys)
    assert code == 2 and "unknown key" in err


def test_help_explains_each_command(capsys):
    for command in ["transcribe", "train", "evaluate", "corpus"]:
        assert main([command, "--help"]) == 0  # a status, as for every other outcome; no SystemExit
        assert "usage: asr " + command in capsys.readouterr().out


def _as_a_terminal_shows_it(raw: str) -> list[str]:
    """The lines a terminal would show for `raw`: a carriage return goes back to column 0 and overwrites."""
    shown = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        cells, column = [], 0
        for char in line:
            if char == "\r":
                column = 0
                continue
            cells[column:column + 1] = [char]
            column += 1
        shown.append("".join(cells).rstrip())
    return shown


def test_progress_bar_never_shares_a_line_with_a_transcript_on_a_terminal(tmp_path, model_path):
    """stdout and stderr on one pseudo-terminal, as a user sees them: each transcript line stands alone."""
    import os
    import pty
    import subprocess
    import sys

    paths = []
    for i in range(4):
        write_tone(tmp_path / f"t{i}.wav", seconds=0.5)
        paths.append(str(tmp_path / f"t{i}.wav"))
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    process = subprocess.Popen([sys.executable, "-m", "asr", "transcribe", *paths, "--model", str(model_path)],
                               stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    raw = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        raw += chunk
    assert process.wait(timeout=120) == 0
    shown = [line for line in _as_a_terminal_shows_it(raw.decode()) if line]
    transcript_lines = [line for line in shown if line.split("\t")[0] in paths]
    assert len(transcript_lines) == 4
    assert not any("transcribing" in line for line in transcript_lines)
    assert not any("transcribing" in line for line in shown[-1:])  # the bar cleared itself at the end
    assert "transcribing" in raw.decode()  # it was drawn: this test saw a terminal


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, model_path, capsys):
    for i in range(3):
        write_tone(tmp_path / f"t{i}.wav", seconds=0.5)
    code, out, err = run(["transcribe", *[tmp_path / f"t{i}.wav" for i in range(3)], "--model", model_path], capsys)
    assert code == 0 and len(out.splitlines()) == 3 and "transcribing" not in err


def test_short_text_writes_template_utterances_for_the_lm(tmp_path, capsys):
    import gzip

    output = tmp_path / "short.txt.gz"
    code, out, _ = run(["corpus", "short-text", "--count", 50, "--seed", 3, "--output", output], capsys)
    lines = gzip.decompress(output.read_bytes()).decode().splitlines()
    assert code == 0 and len(lines) == 50 and "50 lines" in out
    assert run(["corpus", "short-text", "--count", 50, "--seed", 3, "--output", tmp_path / "again.txt"],
               capsys)[0] == 0
    assert (tmp_path / "again.txt").read_text().splitlines() == lines  # the same utterances for a seed
    for count in (0, 10 ** 9):
        code, _, err = run(["corpus", "short-text", "--count", count, "--output", output], capsys)
        assert code == 2 and "--count" in err and str(count) in err and len(err.strip().splitlines()) == 1


def test_lm_build_keeps_short_evaluation_transcripts_unless_told(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("NO\nA TEST SENTENCE\nYES PLEASE\nTHE CAT SAT\n" * 3)
    manifest = tmp_path / "eval.jsonl"
    manifest.write_text("".join(json.dumps({"id": str(i), "audio": "a.wav", "duration": 1.0, "text": t}) + "\n"
                                for i, t in enumerate(["NO", "A TEST SENTENCE"])))
    for option, excluded in ([], 3), (["--exclude-min-words", 1], 6):
        code, out, _ = run(["lm", "build", "--text", text, "--order", 2, "--discount-fallback", "--output",
                            tmp_path / "lm.arpa", "--exclude", manifest, *option], capsys)
        assert code == 0 and f"{excluded} excluded as evaluation transcripts" in out
    code, _, err = run(["lm", "build", "--text", text, "--output", tmp_path / "lm.arpa", "--exclude-min-words", 0],
                       capsys)
    assert code == 2 and "--exclude-min-words 0" in err


def test_lm_build_mixes_texts_by_weight(tmp_path, capsys):
    books, talk = tmp_path / "books.txt", tmp_path / "talk.txt"
    books.write_text("THE CAT SAT\nTHE DOG RAN\nA CAT SAT ON THE MAT\n" * 3)
    talk.write_text("YES\nNO\nCALL HOME\nTHE CAT\n" * 3)
    arpa = tmp_path / "lm.arpa"
    common = ["--order", 2, "--discount-fallback", "--output", arpa]
    code, out, _ = run(["lm", "build", "--text", books, "--text", talk, "--mix", 3, 1, *common], capsys)
    assert code == 0 and "mixture weights 0.750 0.250" in out
    mixed = LanguageModel(arpa).model.score("YES", bos=True, eos=True)
    code, out, _ = run(["lm", "build", "--text", books, talk, *common], capsys)  # pooled, as before
    assert code == 0 and "mixture" not in out
    pooled = LanguageModel(arpa).model.score("YES", bos=True, eos=True)
    assert mixed < pooled - 0.1  # the talk weighs a quarter in the mixture, a third of the words when pooled
    for mix, message in ([1], "1 weights for 2 --text groups"), ([1, 0], "must be above 0"):
        code, _, err = run(["lm", "build", "--text", books, "--text", talk, "--mix", *mix, *common], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["lm", "build", "--arpa", arpa, "--mix", 1, 2, "--binary", tmp_path / "lm.bin"], capsys)
    assert code == 2 and "--mix" in err


def test_lm_perplexity_scores_transcripts_and_texts(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("THE CAT SAT\nTHE DOG RAN\nA CAT SAT ON THE MAT\n" * 3)
    arpa = tmp_path / "lm.arpa"
    assert run(["lm", "build", "--text", text, "--order", 2, "--discount-fallback", "--output", arpa], capsys)[0] == 0
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text("".join(json.dumps({"id": str(i), "audio": "a.wav", "duration": 1.0, "text": t}) + "\n"
                                for i, t in enumerate(["THE CAT SAT", "A ZEBRA RAN"])))
    code, out, _ = run(["lm", "perplexity", "--lm", arpa, "--manifest", manifest, "--text", text], capsys)
    assert code == 0
    model = LanguageModel(arpa).model
    expected = 10 ** (-(model.score("THE CAT SAT") + model.score("A ZEBRA RAN")) / (6 + 2))
    sentences, words, unknown, perplexity = out.splitlines()[1].split()[1:]
    assert (sentences, words, unknown) == ("2", "6", "1") and float(perplexity) == pytest.approx(expected, abs=0.05)
    assert out.splitlines()[2].split()[1:4] == ["9", "36", "0"]  # the training text: every word known
    code, _, err = run(["lm", "perplexity", "--lm", arpa], capsys)
    assert code == 2 and "--manifest" in err
