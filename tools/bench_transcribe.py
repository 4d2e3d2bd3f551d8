"""Benchmark: real-time factor of transcription on this machine, fp32 and int8 weights, greedy and with the LM.

Each configuration transcribes the same utterances end to end through the Python API (reading audio, features,
the acoustic model, decoding) and prints the real-time factor (wall seconds / audio seconds; lower is faster) and
the WER. Goal for the default model on a 2-core CPU: at most 0.05 with int8 greedy, at most 0.1 with the LM.
`--passes 1 4` times the LM rows with one pass and with four voted passes (`asr transcribe --passes`);
`--lm-beam-sizes 1024 64` at two beams; `--default-only` times only what `asr transcribe` runs without flags;
`--min-seconds 1 --max-seconds 3` keeps only short utterances.

    python tools/bench_transcribe.py --manifest recipes/librispeech/data/manifests/test.jsonl --limit 200
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from asr.data import read_manifest
from asr.metrics import word_error_rate
from asr.models import default_model_path
from asr.transcribe import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: the bundled model, with its LM)")
    parser.add_argument("--manifest", required=True, help="utterances with references")
    parser.add_argument("--limit", type=int, default=200, help="first N utterances (0: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--passes", type=int, nargs="+", default=[None],
                        help="numbers of voted passes to time with the LM (default: the number stored with the "
                             "model, as `asr transcribe` runs it)")
    parser.add_argument("--lm-beam-sizes", type=int, nargs="+", default=[None],
                        help="beams to time with the LM (default: the one stored with the model)")
    parser.add_argument("--default-only", action="store_true",
                        help="only the default invocation (fp32 weights with the LM), as `asr transcribe` runs")
    parser.add_argument("--min-seconds", type=float, default=0.0, help="only utterances at least this long")
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="only utterances at most this long")
    args = parser.parse_args()

    model_path = args.model or default_model_path()
    utterances = [u for u in read_manifest(args.manifest) if args.min_seconds <= u.duration <= args.max_seconds]
    if args.limit:
        utterances = utterances[:args.limit]
    audio_seconds = sum(u.duration for u in utterances)
    references = [u.text for u in utterances]
    print(f"{len(utterances)} utterances, {audio_seconds / 60:.1f} min of audio; model {model_path}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"torch {torch.__version__}", flush=True)
    rows = []
    configurations = [(int8, with_lm, passes, beam) for int8 in (False, True) for with_lm in (False, True)
                      for passes in (args.passes if with_lm else [1])
                      for beam in (args.lm_beam_sizes if with_lm else [None])
                      if not args.default_only or (with_lm and not int8)]
    for int8, with_lm, passes, beam in configurations:
        recognizer = load_model(model_path, lm=None if with_lm else False, int8=int8, threads=args.threads,
                                passes=passes, beam_size=beam)
        if with_lm and recognizer.lm_decoder is None:
            print("the model names no LM (run `asr lm tune`); skipping the LM rows", flush=True)
            continue
        recognizer.transcribe([utterances[0].audio])  # warm up: numba's cached code, torch's kernels
        started = time.perf_counter()
        results = recognizer.transcribe([u.audio for u in utterances], batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        wer = word_error_rate(references, [r.text for r in results]).rate
        name = f"{'int8' if int8 else 'fp32'}, {'beam ' + str(recognizer.beam_size) + ' + LM' if with_lm else 'greedy'}"
        passes = len(recognizer.delays)
        name += f", {passes} passes" if passes > 1 else ""
        rows.append((name, seconds / audio_seconds, 100 * wer))
        print(f"{name:<22} RTF {seconds / audio_seconds:.4f}   WER {100 * wer:6.2f}%", flush=True)
    print("\n| weights, decoding | real-time factor | WER % |\n| --- | ---: | ---: |")
    for name, rtf, wer in rows:
        print(f"| {name} | {rtf:.4f} | {wer:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
