"""A fixed, evenly spread subset of a manifest, for the per-epoch validation score during training."""

import argparse
import sys

from asr.data import read_manifest, write_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--utterances", type=int, default=300)
    args = parser.parse_args()
    utterances = read_manifest(args.manifest)
    step = max(1, len(utterances) // args.utterances)
    write_manifest(args.output, utterances[::step][:args.utterances])
    return 0


if __name__ == "__main__":
    sys.exit(main())
