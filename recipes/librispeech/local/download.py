"""Stage 0 (LibriSpeech): download and unpack the official archives, checksums verified, resumable.

Skips an archive already unpacked, resumes a partial download (HTTP Range), and refuses an archive whose MD5
differs from the publisher's list (https://www.openslr.org/resources/12/md5sum.txt).
"""

import argparse
import sys
import tarfile
from pathlib import Path

from asr.fetch import fetch, file_digest

BASE_URL = "https://www.openslr.org/resources/12"
MD5 = {  # from the publisher's md5sum.txt
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1", "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9", "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522", "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder that will hold LibriSpeech/<split>/")
    parser.add_argument("--splits", nargs="+", required=True, choices=sorted(MD5))
    args = parser.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        if (root / "LibriSpeech" / split).is_dir():
            print(f"{split}: already unpacked, skipped")
            continue
        archive = root / f"{split}.tar.gz"
        if not archive.exists():
            fetch(f"{BASE_URL}/{split}.tar.gz", archive)
        digest = file_digest(archive, "md5")
        if digest != MD5[split]:
            print(f"error: {archive}: MD5 {digest} differs from the published {MD5[split]}; delete it and rerun",
                  file=sys.stderr)
            return 2
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        print(f"{split}: unpacked into {root / 'LibriSpeech' / split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
