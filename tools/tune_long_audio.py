"""Choose how long files are cut into stretches to decode: WER of joined files for each setting, on a dev manifest.

Builds files of `--minutes` of joined utterances (as tools/bench_long_audio.py does, one file per seed), runs the
windowed first pass of `asr.long_audio` once per file, then for each setting cuts the joined outputs at pauses
(`pause_segments`: minimum pause, minimum stretch), runs each stretch again on its own audio with a margin around
its speech (`rerun_on_segments`) and decodes it, and prints the WER of every file and their mean, beside the WER
of the same utterances decoded one by one: what the long files would score if joining them and cutting them apart
again cost nothing. Tune on dev, not on the test set the model card reports.

    python tools/tune_long_audio.py --manifest recipes/librispeech/data/manifests/dev.jsonl \\
        --min-pause 0.3 0.4 0.5 --min-segment 1 2 --margin 0.04 0.3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.data import read_manifest
from asr.long_audio import LongAudioFile, pause_segments, rerun_on_segments, windowed_log_probs
from asr.metrics import word_error_rate
from asr.models import default_model_path
from asr.transcribe import load_model
from bench_long_audio import CYCLE_MULTIPLE_SECONDS, build_long_file, file_utterances


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, help="utterances to join (a dev set)")
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="orders of the utterances, one file each (default: 0 1 2 3)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each file (default: 10)")
    parser.add_argument("--min-pause", type=float, nargs="+", default=[0.4], help="seconds (default: 0.4)")
    parser.add_argument("--min-segment", type=float, nargs="+", default=[1.0], help="seconds (default: 1)")
    parser.add_argument("--margin", type=float, nargs="+", default=[0.3], help="seconds (default: 0.3)")
    args = parser.parse_args()

    recognizer = load_model(args.model or default_model_path())
    blank, frame_seconds = recognizer.vocabulary.blank, recognizer.frame_seconds
    all_utterances = read_manifest(args.manifest)
    cycle_multiple = int(round(CYCLE_MULTIPLE_SECONDS * SAMPLE_RATE))
    with tempfile.TemporaryDirectory() as tmp:
        files = []  # (path, reference, windowed log-probs)
        one_by_one = []
        for seed in args.seeds:
            utterances = file_utterances(all_utterances, seed, True, args.minutes)
            path = Path(tmp) / f"joined-{seed}.wav"
            reference = build_long_file(utterances, args.minutes, path, cycle_multiple)
            with LongAudioFile(path) as audio:
                joined = windowed_log_probs(audio, lambda samples: recognizer.log_probs([samples])[0], blank,
                                            frame_seconds, recognizer.window, recognizer.model.config.outputs_per_step)
            files.append((path, reference, joined))
            separate = " ".join(t.text for _, t in recognizer.transcribe_files([u.audio for u in utterances]))
            one_by_one.append(100 * word_error_rate([reference], [separate]).rate)
            print(f"seed {seed}: {len(utterances)} utterances, decoded one by one: WER {one_by_one[-1]:.2f}%",
                  flush=True)
        print(f"one by one: mean WER {np.mean(one_by_one):.2f}%\n")
        print("| min pause (s) | min segment (s) | margin (s) | WER % of each file | mean |")
        print("| ---: | ---: | ---: | --- | ---: |")
        for min_pause, min_segment, margin in itertools.product(args.min_pause, args.min_segment, args.margin):
            rates = []
            for path, reference, joined in files:
                segments = pause_segments(joined.numpy(), blank, frame_seconds, min_pause, min_segment)
                with LongAudioFile(path) as audio:
                    refined = rerun_on_segments(audio, joined, segments, blank, recognizer.log_probs, frame_seconds,
                                                recognizer.window.window_seconds, margin_seconds=margin)
                pieces = recognizer.hypotheses([refined[begin:end] for begin, end in segments])
                text = " ".join(recognizer.vocabulary.decode(piece.tokens) for piece in pieces)
                rates.append(100 * word_error_rate([reference], [" ".join(text.split())]).rate)
            print(f"| {min_pause:g} | {min_segment:g} | {margin:g} | {', '.join(f'{r:.2f}' for r in rates)} "
                  f"| {np.mean(rates):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
