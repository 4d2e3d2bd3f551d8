"""Benchmark: peak memory and WER of transcribing one long file, 10 minutes against 60 minutes.

Builds each file by joining utterances of a manifest (generated speech) end to end with short pauses, with its
reference transcript; the utterances are shuffled once (`--seed`), and every file takes them from the start of that
order, so the files mix the same voices and conditions and the longer file contains the shorter; then runs
`asr transcribe` on it in a fresh process and reads that process's peak resident memory. Goal: the 60-minute peak at
most 1.5 times the 10-minute one, and no worse WER.

Longer files hold other sentences too, some harder than others, so their WER differs for that reason alone.
`--same-content` takes every file from the first file's utterances, repeated: then only the length differs, and
the WER of each repetition inside the longer file is printed too, with the WER of the same utterances decoded one
by one. Where a pass of the utterances starts in the file (after silence, or after the last pass) changes where
the model finds pauses near it, so how the next minute is cut into stretches, and that moves a repetition's WER
by a few words either way; `--seeds 0 1 2` builds files from three orders of the utterances to show that spread.

    python tools/bench_long_audio.py --manifest recipes/librispeech/data/manifests/test.jsonl --minutes 10 60
    python tools/bench_long_audio.py --manifest recipes/librispeech/data/manifests/test.jsonl --same-content \
        --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import read_manifest, write_manifest
from asr.evaluate import evaluate_manifest
from asr.metrics import word_error_rate
from asr.models import default_model_path

PAUSE_SECONDS = 0.4
# With --same-content each pass through the sentences is padded to a whole number of this many seconds: a multiple of
# the acoustic model's output frame (40 ms at subsampling 4, 80 ms at 8), so every repetition meets the same frame
# phase. Without it, repetitions alternated between two phases, and the model's outputs differ enough between those
# to move the WER by 3 points (45.1 / 48.5 / 45.5 / 48.1 / 45.3 / 47.7% by repetition).
CYCLE_MULTIPLE_SECONDS = 0.08
PEAK_REPORTING_CLI = ("import resource, sys\nfrom asr.cli import main\ncode = main(sys.argv[1:])\n"
                      "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
                      "sys.exit(code)")


def build_long_file(utterances, minutes: float, path: Path, cycle_multiple: int = 0) -> str:
    """Write `minutes` of joined speech to `path` (cycling through the utterances, each pass padded with silence to a
    multiple of `cycle_multiple` samples when given); return the reference text."""
    target = int(minutes * 60 * SAMPLE_RATE)
    pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    written, words = 0, []
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
    return " ".join(words)


def print_repetitions(reference: str, hypothesis: str, words_per_pass: int) -> None:
    """WER of each whole repetition of the utterances within one file. The hypothesis is aligned with the whole
    reference, and each error is counted in the repetition of the reference word it falls on (an insertion: the
    word after it), so a word near a join counts where it belongs whatever time it was given."""
    alignment = jiwer.process_words(reference, hypothesis).alignments[0]
    whole = len(reference.split()) // words_per_pass
    errors = [0] * (whole + 1)
    for chunk in alignment:
        if chunk.type != "equal":
            words = max(chunk.ref_end_idx - chunk.ref_start_idx, chunk.hyp_end_idx - chunk.hyp_start_idx)
            errors[min(chunk.ref_start_idx // words_per_pass, whole)] += words
    rates = [f"{100 * count / words_per_pass:.2f}" for count in errors[:whole]]
    print(f"         WER of each repetition: {', '.join(rates)}")


def separate_utterances_wer(utterances, model: str | None) -> float:
    """WER of the utterances each decoded as its own file, the way `asr evaluate` scores a manifest: what the long
    files would score if joining the utterances and cutting them apart again cost nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "utterances.jsonl"
        write_manifest(manifest, utterances)
        report = evaluate_manifest(model or default_model_path(), manifest, show_progress=False)
    return 100 * report.wer.rate


def file_utterances(all_utterances, seed: int, same_content: bool, shortest_minutes: float):
    """The utterances in the order one seed shuffles them; with `same_content`, only enough for the shortest file."""
    order = np.random.default_rng(seed).permutation(len(all_utterances))
    utterances = [all_utterances[i] for i in order]
    if same_content:
        total = 0.0
        for count, utterance in enumerate(utterances, 1):
            total += utterance.duration + PAUSE_SECONDS
            if total >= shortest_minutes * 60:
                break
        utterances = utterances[:count]
    return utterances


def transcribe_in_child(path: Path, model: str | None, extra: list[str]) -> tuple[dict, float, float]:
    """`asr transcribe --format json` of one file in a fresh process: (transcript, peak resident MB, seconds)."""
    # The child reports its own peak resident memory (getrusage of a child process is a running maximum).
    command = [sys.executable, "-c", PEAK_REPORTING_CLI, "transcribe", str(path), "--no-progress"]
    command += (["--model", model] if model else []) + extra + ["--format", "json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"asr transcribe {path} failed:\n{result.stderr}")
    peaks = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK_KB ")]
    return json.loads(result.stdout), int(peaks[-1]) / 1024 if peaks else float("nan"), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="orders of the utterances; each builds its own files (default: 0)")
    parser.add_argument("--same-content", action="store_true",
                        help="build every file by repeating the utterances of the shortest")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more `asr transcribe` flags (the one-by-one WER, which they would not apply to, is "
                             "then left out)")
    args = parser.parse_args()

    all_utterances = read_manifest(args.manifest)
    cycle_multiple = int(round(CYCLE_MULTIPLE_SECONDS * SAMPLE_RATE)) if args.same_content else 0
    rows = []  # (seed, minutes, peak MB, seconds, WER %)
    for seed in args.seeds:
        utterances = file_utterances(all_utterances, seed, args.same_content, min(args.minutes))
        words_per_pass = len(" ".join(u.text for u in utterances).split())
        print(f"seed {seed}: {len(utterances)} utterances")
        with tempfile.TemporaryDirectory() as tmp:
            for minutes in args.minutes:
                path = Path(tmp) / f"joined-{minutes:g}min.wav"
                reference = build_long_file(utterances, minutes, path, cycle_multiple)
                try:
                    transcript, peak_mb, seconds = transcribe_in_child(path, args.model, args.extra)
                except RuntimeError as error:
                    print(error, file=sys.stderr)
                    return 1
                duration = soundfile.info(str(path)).duration
                wer = 100 * word_error_rate([reference], [transcript["text"]]).rate
                rows.append((seed, duration / 60, peak_mb, seconds, wer))
                print(f"{duration / 60:5.1f} min: peak memory {peak_mb:7.0f} MB, {seconds:6.0f} s "
                      f"(real-time factor {seconds / duration:.3f}), WER {wer:.2f}%", flush=True)
                if args.same_content:
                    print_repetitions(reference, transcript["text"], words_per_pass)
        if args.same_content and not args.extra:
            print(f"         the same utterances decoded one by one (as `asr evaluate` does): WER "
                  f"{separate_utterances_wer(utterances, args.model):.2f}%", flush=True)
    print("\n| seed | audio | peak memory | wall time | WER % |\n| ---: | ---: | ---: | ---: | ---: |")
    for seed, minutes, peak, seconds, wer in rows:
        print(f"| {seed} | {minutes:.1f} min | {peak:.0f} MB | {seconds:.0f} s | {wer:.2f} |")
    if len(args.minutes) >= 2:
        per_seed = [rows[i:i + len(args.minutes)] for i in range(0, len(rows), len(args.minutes))]
        ratios = [files[-1][2] / files[0][2] for files in per_seed]
        changes = [files[-1][4] - files[0][4] for files in per_seed]
        print(f"\nlongest against shortest file: peak memory ratio {max(ratios):.2f} at most (goal <= 1.5); "
              f"WER change {', '.join(f'{c:+.2f}' for c in changes)} points, mean {np.mean(changes):+.2f} "
              f"(goal <= 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
