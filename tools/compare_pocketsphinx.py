"""Compare: our model and PocketSphinx (its bundled US English model) on the same manifest, e.g. real-dev.

    pip install pocketsphinx        # or: pip install -e ".[bench]"
    python tools/compare_pocketsphinx.py --manifest recipes/librispeech/data/manifests/real-dev.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from asr.audio import load_audio
from asr.data import read_manifest
from asr.metrics import word_error_rate
from asr.models import default_model_path
from asr.text import normalize_text
from asr.transcribe import load_model


def pocketsphinx_transcripts(paths) -> list[str]:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    texts = []
    for path in paths:
        pcm = (np.clip(load_audio(path), -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        texts.append(normalize_text(hypothesis.hypstr) if hypothesis else "")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", help="default: the bundled model, with its LM")
    args = parser.parse_args()
    utterances = read_manifest(args.manifest)
    references = [u.text for u in utterances]
    audio_seconds = sum(u.duration for u in utterances)
    rows = []
    recognizer = load_model(args.model or default_model_path())
    started = time.perf_counter()
    ours = [t.text for t in recognizer.transcribe([u.audio for u in utterances])]
    rows.append(("asr (" + ("with its LM" if recognizer.lm_decoder else "greedy") + ")", ours,
                 time.perf_counter() - started))
    started = time.perf_counter()
    rows.append(("PocketSphinx 5 (en-us)", pocketsphinx_transcripts([u.audio for u in utterances]),
                 time.perf_counter() - started))
    print(f"{len(utterances)} utterances, {audio_seconds / 60:.1f} min\n")
    print("| recogniser | WER % | substitutions / deletions / insertions | real-time factor |\n| --- | ---: | --- | ---: |")
    for name, texts, seconds in rows:
        rate = word_error_rate(references, texts)
        print(f"| {name} | {100 * rate.rate:.2f} | {rate.substitutions} / {rate.deletions} / {rate.insertions} | "
              f"{seconds / audio_seconds:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
