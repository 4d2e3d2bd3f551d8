"""Benchmark: how much a model's WER depends on where speech falls against its output frames.

A model that subsamples its 10 ms features sees the same sentence differently when the audio starts a few
milliseconds later. This delays every utterance by each of `--shifts-ms` (silence prepended) and prints the WER of
each shift; the spread is how much two otherwise identical recordings can differ.

    python tools/bench_frame_phase.py --manifest recipes/librispeech/data/manifests/test.jsonl
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import read_manifest
from asr.metrics import word_error_rate
from asr.models import default_model_path
from asr.transcribe import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--manifest", required=True, help="utterances with references")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    parser.add_argument("--shifts-ms", type=int, nargs="+", default=[0, 10, 20, 30],
                        help="delays to try, in milliseconds (default: 0 10 20 30)")
    parser.add_argument("--lm", action="store_true", help="decode with the model's LM (default: greedy, faster)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    model_path = args.model or default_model_path()
    recognizer = load_model(model_path, lm=None if args.lm else False)
    utterances = read_manifest(args.manifest)[:args.limit or None]
    waveforms = [load_audio(u.audio) for u in tqdm(utterances, desc="reading audio", unit="file")]
    order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))  # similar lengths pad less
    references = [utterances[i].text for i in order]
    print(f"{len(utterances)} utterances; model {model_path}; "
          f"{'beam ' + str(recognizer.beam_size) + ' + LM' if args.lm else 'greedy'}", flush=True)
    rows = []
    for shift in args.shifts_ms:
        silence = np.zeros(shift * SAMPLE_RATE // 1000, dtype=np.float32)
        hypotheses = []
        for first in tqdm(range(0, len(order), args.batch_size), desc=f"delay {shift} ms", unit="batch"):
            batch = [np.concatenate([silence, waveforms[i]]) for i in order[first:first + args.batch_size]]
            with torch.inference_mode():
                log_probs = recognizer.log_probs(batch)
            durations = [len(w) / SAMPLE_RATE for w in batch]
            hypotheses += [t.text for t in recognizer.decode_many(log_probs, durations, [""] * len(batch))]
        rows.append((shift, 100 * word_error_rate(references, hypotheses).rate))
        print(f"delay {shift:3d} ms: WER {rows[-1][1]:6.2f}%", flush=True)
    print("\n| delay (ms) | WER % |\n| ---: | ---: |")
    for shift, wer in rows:
        print(f"| {shift} | {wer:.2f} |")
    spread = max(wer for _, wer in rows) - min(wer for _, wer in rows)
    print(f"\nspread: {spread:.2f} WER points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
