"""Compare: our model and PocketSphinx (its bundled US English model) on the same manifest, e.g. real-dev.

    pip install pocketsphinx        # or: pip install -e ".[bench]"
    python tools/compare_pocketsphinx.py --manifest recipes/librispeech/data/manifests/real-dev.jsonl
    python tools/compare_pocketsphinx.py --sets real-dev=M/real-dev.jsonl fsdd-dev=M/fsdd-dev.jsonl \
        --pocketsphinx-cache pocketsphinx.json        # one row per set, both recognisers
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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


def pocketsphinx_cached(paths, cache_path: Path | None) -> list[str]:
    """PocketSphinx's transcripts, read from (and added to) a JSON cache keyed by audio path: they do not change when
    our model does, and take 0.17 s per second of audio."""
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}
    missing = [p for p in paths if p not in cache]
    cache.update(zip(missing, pocketsphinx_transcripts(missing)))
    if cache_path and missing:
        cache_path.write_text(json.dumps(cache, indent=0) + "\n")
    return [cache[p] for p in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="one manifest: a table with real-time factors")
    parser.add_argument("--sets", nargs="+", metavar="NAME=MANIFEST",
                        help="several manifests: one row each, WER of both recognisers")
    parser.add_argument("--model", help="default: the bundled model, with its LM")
    parser.add_argument("--pocketsphinx-cache", help="JSON file keeping PocketSphinx's transcripts between runs")
    args = parser.parse_args()
    if bool(args.manifest) == bool(args.sets):
        parser.error("give --manifest or --sets")
    recognizer = load_model(args.model or default_model_path())
    cache = Path(args.pocketsphinx_cache) if args.pocketsphinx_cache else None
    if args.sets:
        print("| set | utterances | minutes | asr WER % | PocketSphinx 5 WER % |\n| --- | ---: | ---: | ---: | ---: |")
        for name, manifest in (spec.split("=", 1) for spec in args.sets):
            utterances = read_manifest(manifest)
            references = [u.text for u in utterances]
            ours = [t.text for t in recognizer.transcribe([u.audio for u in utterances])]
            theirs = pocketsphinx_cached([u.audio for u in utterances], cache)
            print(f"| {name} | {len(utterances)} | {sum(u.duration for u in utterances) / 60:.1f} | "
                  f"{100 * word_error_rate(references, ours).rate:.2f} | "
                  f"{100 * word_error_rate(references, theirs).rate:.2f} |", flush=True)
        return 0
    utterances = read_manifest(args.manifest)
    references = [u.text for u in utterances]
    audio_seconds = sum(u.duration for u in utterances)
    rows = []
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
