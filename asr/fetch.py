"""Downloads that survive an interrupted connection: a partial file is continued where it stopped."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from asr.errors import AsrError


def fetch(url: str, target: str | Path) -> None:
    """Download `url` to `target`, continuing a partial `target.part` where it stopped (HTTP Range)."""
    from tqdm import tqdm

    target = Path(target)
    partial = target.with_suffix(target.suffix + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if have and response.status != 206:  # the server ignored the range: start over
                have = 0
            total = have + int(response.headers.get("Content-Length", 0))
            with open(partial, "ab" if have else "wb") as out, tqdm(total=total, initial=have, unit="B",
                                                                      unit_scale=True, desc=target.name) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as error:
        raise AsrError(f"{url}: download failed ({error}); rerun to continue from {partial}") from None
    partial.rename(target)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read a megabyte at a time (archives are gigabytes)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
