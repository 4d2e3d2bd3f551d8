"""Benchmark: peak memory and WER of transcribing one long file, 10 minutes against 60 minutes.

Builds each file by joining utterances of a manifest (generated speech) end to end with short pauses, with its
reference transcript; the utterances are shuffled once (`--seed`), and every file takes them from the start of that
order, so the files mix the same voices and conditions and the longer file contains the shorter; then runs
`asr transcribe` on it in a fresh process and reads that process's peak resident memory. Goal: the 60-minute peak at
most 1.5 times the 10-minute one, and no worse WER.

Longer files hold other sentences too, some harder than others, so their WER differs for that reason alone.
`--same-content` takes every file from the first file's utterances, repeated: then only the length differs, and
the WER of each repetition inside the longer file is printed too.

    python tools/bench_long_audio.py --manifest recipes/librispeech/data/manifests/test.jsonl --minutes 10 60
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import read_manifest
from asr.metrics import word_error_rate

PAUSE_SECONDS = 0.4
# With --same-content each pass through the sentences is padded to a whole number of this many seconds: a multiple of
# the acoustic model's output frame (40 ms at subsampling 4, 80 ms at 8), so every repetition meets the same frame
# phase. Without it, repetitions alternated between two phases, and the model's outputs differ enough between those
# to move the WER by 3 points (45.1 / 48.5 / 45.5 / 48.1 / 45.3 / 47.7% by repetition).
CYCLE_MULTIPLE_SECONDS = 0.08
PEAK_REPORTING_CLI = ("import resource, sys\nfrom asr.cli import main\ncode = main(sys.argv[1:])\n"
                      "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
                      "sys.exit(code)")


def build_long_file(utterances, minutes: float, path: Path, cycle_multiple: int = 0) -> tuple[str, float]:
    """Write `minutes` of joined speech to `path` (cycling through the utterances, each pass padded with silence to a
    multiple of `cycle_multiple` samples when given); return the reference text and the seconds one pass takes."""
    target = int(minutes * 60 * SAMPLE_RATE)
    pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    written, words, first_pass = 0, [], 0
    with soundfile.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as out:
        while written < target:
            if cycle_multiple and written % cycle_multiple:
                padding = cycle_multiple - written % cycle_multiple
                out.write(np.zeros(padding, dtype=np.float32))
                written += padding
            for utterance in utterances:
                samples = load_audio(utterance.audio)
                out.write(samples)
                out.write(pause)
                written += len(samples) + len(pause)
                words.append(utterance.text)
                if written >= target:
                    break
            first_pass = first_pass or written
    cycle = first_pass + (-first_pass) % cycle_multiple if cycle_multiple else first_pass
    return " ".join(words), cycle / SAMPLE_RATE


def print_repetitions(words: list[dict], utterances, cycle_seconds: float, duration: float) -> None:
    """WER of each whole repetition of the utterances within one file, its words picked by start time."""
    reference = " ".join(u.text for u in utterances)
    whole = max(1, int(duration / cycle_seconds + 1e-6))
    repetitions: list[list[str]] = [[] for _ in range(whole)]
    for word in words:
        repetition = int(word["start"] // cycle_seconds)
        if repetition < whole:
            repetitions[repetition].append(word["text"])
    rates = [f"{100 * word_error_rate([reference], [' '.join(r)]).rate:.2f}" for r in repetitions]
    print(f"         WER of each repetition: {', '.join(rates)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--seed", type=int, default=0, help="order of the utterances (default: 0)")
    parser.add_argument("--same-content", action="store_true",
                        help="build every file by repeating the utterances of the shortest")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `asr transcribe` flags")
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    order = np.random.default_rng(args.seed).permutation(len(utterances))
    utterances = [utterances[i] for i in order]
    if args.same_content:
        shortest, total = min(args.minutes) * 60, 0.0
        for count, utterance in enumerate(utterances, 1):
            total += utterance.duration + PAUSE_SECONDS
            if total >= shortest:
                break
        utterances = utterances[:count]
    cycle_multiple = int(round(CYCLE_MULTIPLE_SECONDS * SAMPLE_RATE)) if args.same_content else 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"joined-{minutes:g}min.wav"
            reference, cycle_seconds = build_long_file(utterances, minutes, path, cycle_multiple)
            # The child reports its own peak resident memory (getrusage of a child process is a running maximum).
            command = [sys.executable, "-c", PEAK_REPORTING_CLI, "transcribe", str(path), "--no-progress"]
            command += (["--model", args.model] if args.model else []) + args.extra + ["--format", "json"]
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            peaks = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK_KB ")]
            peak_mb = int(peaks[-1]) / 1024 if peaks else float("nan")
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                return 1
            duration = soundfile.info(str(path)).duration
            transcript = json.loads(result.stdout)
            wer = word_error_rate([reference], [transcript["text"]]).rate
            rows.append((minutes, duration, peak_mb, seconds, 100 * wer))
            print(f"{duration / 60:5.1f} min: peak memory {peak_mb:7.0f} MB, {seconds:6.0f} s "
                  f"(real-time factor {seconds / duration:.3f}), WER {100 * wer:.2f}%", flush=True)
            if args.same_content:
                print_repetitions(transcript["words"], utterances, cycle_seconds, duration)
    print("\n| audio | peak memory | wall time | WER % |\n| ---: | ---: | ---: | ---: |")
    for minutes, duration, peak, seconds, wer in rows:
        print(f"| {duration / 60:.1f} min | {peak:.0f} MB | {seconds:.0f} s | {wer:.2f} |")
    if len(rows) >= 2:
        print(f"\npeak memory ratio {rows[-1][2] / rows[0][2]:.2f} (goal <= 1.5); "
              f"WER {rows[0][4]:.2f}% -> {rows[-1][4]:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
