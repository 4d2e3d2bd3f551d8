"""WER of a decoded synthetic set broken down by how its audio was made: engine, speaking rate, noise, reverberation,
telephone band.

Reads an errors file written by the recipe's stage 8 (`exp/*/decode/SET-MODE.errors.txt`, one `ID  errors E/N`
line per utterance) and the corpus's `metadata.jsonl` (written by `asr corpus synth`), and prints a table per
condition: where a model trained on the synthetic corpus fails.

    cd recipes/librispeech
    python ../../tools/wer_by_condition.py --errors exp/base/decode/test-beam64-LM.errors.txt \
        --metadata data/synthetic/metadata.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from asr.errors import AsrError
from asr.evaluate import read_errors_file


def noise_band(entry: dict) -> str:
    if not entry["noise"]:
        return "none"
    return "SNR under 10 dB" if entry["snr_db"] < 10 else "SNR 10-20 dB" if entry["snr_db"] < 20 else "SNR 20 dB +"


CONDITIONS = {
    "engine": lambda entry: entry["engine"],
    "speaking rate": lambda entry: f"{entry['rate']:.2f}",
    "noise": noise_band,
    "reverberation": lambda entry: "yes" if entry["rt60"] > 0 else "no",
    "telephone band": lambda entry: "yes" if entry["telephone"] else "no",
    # Kokoro corpora only (older metadata has neither): a lossy codec, a microphone's colouring.
    "codec": lambda entry: entry.get("codec") or "none",
    "microphone colouring": lambda entry: "yes" if entry.get("mic_highpass_hz") or entry.get("mic_presence_db")
    else "no",
    "accented Kokoro voice in the mix": lambda entry: "n/a" if entry["engine"] != "kokoro" else "yes" if any(
        part[:2] not in ("af", "am", "bf", "bm") for part in entry["name"].split("+")) else "no",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--errors", required=True, help="an errors file of the recipe's stage 8")
    parser.add_argument("--metadata", required=True, help="the synthetic corpus's metadata.jsonl")
    args = parser.parse_args()

    try:
        errors = read_errors_file(args.errors)
    except AsrError as error:
        raise SystemExit(f"wer_by_condition: {error}") from None
    metadata = {}
    with open(args.metadata, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            if entry["id"] in errors:
                metadata[entry["id"]] = entry
    missing = len(errors) - len(metadata)
    if len(metadata) == 0:
        raise SystemExit(f"{args.metadata}: none of the utterances of {args.errors}; is it the same corpus?")
    print(f"{len(metadata)} utterances of {args.errors}" + (f" ({missing} not in the metadata, left out)"
                                                           if missing else ""))
    for name, condition in CONDITIONS.items():
        totals = defaultdict(lambda: [0, 0, 0])  # utterances, word errors, reference words
        for utterance_id, entry in metadata.items():
            total = totals[condition(entry)]
            total[0] += 1
            total[1] += errors[utterance_id][0]
            total[2] += errors[utterance_id][1]
        print(f"\n| {name} | utterances | WER % |\n| --- | ---: | ---: |")
        for value, (count, word_errors, words) in sorted(totals.items()):
            print(f"| {value} | {count} | {100 * word_errors / max(words, 1):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
