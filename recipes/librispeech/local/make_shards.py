"""Stage 3: WebDataset tar shards of the training manifest, grouped by duration."""

import argparse
import sys

from asr.data import read_manifest
from asr.shards import write_shards


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--shard-mb", type=float, default=256, help="largest shard size (default: 256 MB)")
    args = parser.parse_args()
    index = write_shards(read_manifest(args.manifest), args.output_dir, max_shard_mb=args.shard_mb)
    print(f"{len(index['shards'])} shards, {index['utterances']} utterances, {index['hours']:.2f} h "
          f"({index['skipped']} unreadable skipped) -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
