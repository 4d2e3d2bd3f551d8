"""Join manifests into one training mix, each repeated a whole number of times (a small corpus heard more often than
its share of hours), and print the hours and speakers each source brings: the data mix of a run.

    python local/mix_manifests.py --output data/natural/manifests/train-mix.jsonl \
        --input speechocean762=data/natural/manifests/speechocean762-train.jsonl:3 classic=data/manifests/train.jsonl
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from asr.cli import EXIT_BAD_INPUT
from asr.data import read_manifest, write_manifest
from asr.errors import AsrError


def parse_input(spec: str) -> tuple[str, Path, int]:
    """NAME=MANIFEST[:REPEATS] -> (name, path, repeats)."""
    name, _, rest = spec.partition("=")
    path, _, repeats = rest.rpartition(":") if rest.rpartition(":")[2].isdigit() else (rest, "", "1")
    if not name or not path or int(repeats) < 1:
        raise AsrError(f"--input {spec!r}: expected NAME=MANIFEST or NAME=MANIFEST:REPEATS (REPEATS 1 or more)")
    return name, Path(path), int(repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="NAME=MANIFEST[:REPEATS]")
    parser.add_argument("--output", required=True, help="mixed manifest to write")
    parser.add_argument("--summary", help="also write the mix (hours, utterances, speakers per source) as JSON here")
    args = parser.parse_args()
    try:
        mixed, summary = [], {}
        for name, path, repeats in map(parse_input, args.input):
            utterances = read_manifest(path)
            for copy in range(repeats):
                # A repeated utterance gets its own id, so nothing downstream mistakes it for a duplicate line.
                mixed.extend(u if copy == 0 else dataclasses.replace(u, id=f"{u.id}#{copy}") for u in utterances)
            hours = sum(u.duration for u in utterances) / 3600
            summary[name] = {"manifest": str(path), "utterances": len(utterances), "hours": round(hours, 3),
                             "speakers": len({u.speaker for u in utterances}), "repeats": repeats,
                             "hours_per_epoch": round(hours * repeats, 3)}
            print(f"{name}: {len(utterances)} utterances, {hours:.2f} h, {summary[name]['speakers']} speakers, "
                  f"x{repeats} = {hours * repeats:.2f} h per epoch")
        write_manifest(args.output, mixed)
    except AsrError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    total = sum(s["hours_per_epoch"] for s in summary.values())
    print(f"mix: {len(mixed)} utterances, {total:.2f} h per epoch -> {args.output}")
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
