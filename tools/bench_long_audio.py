"""Benchmark: peak memory and WER of transcribing one long file, 10 minutes against 60 minutes.

Builds each file by joining utterances of a manifest (generated speech) end to end with short pauses, in order,
with its reference transcript; then runs `asr transcribe` on it in a fresh process and reads that process's peak
resident memory. Goal: the 60-minute peak at most 1.5 times the 10-minute one, and no worse WER.

    python tools/bench_long_audio.py --manifest recipes/librispeech/data/manifests/test.jsonl --minutes 10 60
"""

from __future__ import annotations

import argparse
import resource
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


def build_long_file(utterances, minutes: float, path: Path) -> str:
    """Write `minutes` of joined speech to `path` (cycling through the utterances); return the reference text."""
    target = int(minutes * 60 * SAMPLE_RATE)
    pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    written, words = 0, []
    with soundfile.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as out:
        while written < target:
            for utterance in utterances:
                samples = load_audio(utterance.audio)
                out.write(samples)
                out.write(pause)
                written += len(samples) + len(pause)
                words.append(utterance.text)
                if written >= target:
                    break
    return " ".join(words)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `asr transcribe` flags")
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"joined-{minutes:g}min.wav"
            reference = build_long_file(utterances, minutes, path)
            command = [sys.executable, "-m", "asr", "transcribe", str(path), "--no-progress"]
            command += (["--model", args.model] if args.model else []) + args.extra
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            # ru_maxrss of children is the largest of any child so far: run the shortest file first.
            peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                return 1
            duration = soundfile.info(str(path)).duration
            wer = word_error_rate([reference], [result.stdout.strip()]).rate
            rows.append((minutes, duration, peak_mb, seconds, 100 * wer))
            print(f"{duration / 60:5.1f} min: peak memory {peak_mb:7.0f} MB, {seconds:6.0f} s "
                  f"(real-time factor {seconds / duration:.3f}), WER {100 * wer:.2f}%", flush=True)
    print("\n| audio | peak memory | wall time | WER % |\n| ---: | ---: | ---: | ---: |")
    for minutes, duration, peak, seconds, wer in rows:
        print(f"| {duration / 60:.1f} min | {peak:.0f} MB | {seconds:.0f} s | {wer:.2f} |")
    if len(rows) >= 2:
        print(f"\npeak memory ratio {rows[-1][2] / rows[0][2]:.2f} (goal <= 1.5); "
              f"WER {rows[0][4]:.2f}% -> {rows[-1][4]:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
