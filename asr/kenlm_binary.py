"""ARPA -> KenLM binary, which loads in milliseconds (memory-mapped) where ARPA text takes seconds to parse.

The `kenlm` package on PyPI queries models but leaves out KenLM's `build_binary` program. We use one on PATH if
there is one; otherwise we compile it once from the `kenlm` source distribution on PyPI (it needs only g++, about
half a minute), into ~/.cache/asr/kenlm-<version>/ (or $ASR_CACHE).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from importlib import metadata
from pathlib import Path

from asr.errors import AsrError, one_line

log = logging.getLogger(__name__)
PYPI_SIMPLE = "https://pypi.org/simple/kenlm/"


def cache_dir() -> Path:
    return Path(os.environ.get("ASR_CACHE", Path.home() / ".cache" / "asr"))


def kenlm_version() -> str:
    try:
        return metadata.version("kenlm")
    except metadata.PackageNotFoundError:
        raise AsrError("the kenlm package is not installed; `pip install kenlm`") from None


def _download_source(version: str, folder: Path) -> Path:
    """The kenlm sdist from PyPI, checked against the sha256 the index publishes."""
    try:
        with urllib.request.urlopen(PYPI_SIMPLE, timeout=60) as response:
            index = response.read().decode()
    except OSError as error:
        raise AsrError(f"cannot reach {PYPI_SIMPLE} to fetch KenLM's source ({error}); put build_binary on PATH, "
                       "or use the ARPA file as it is") from None
    match = re.search(rf'href="([^"]*/kenlm-{re.escape(version)}\.tar\.gz)#sha256=([0-9a-f]+)"', index)
    if not match:
        raise AsrError(f"no source distribution of kenlm {version} on {PYPI_SIMPLE}; put build_binary on PATH")
    url, sha256 = match.groups()
    archive = folder / f"kenlm-{version}.tar.gz"
    with urllib.request.urlopen(url, timeout=120) as response:
        archive.write_bytes(response.read())
    if hashlib.sha256(archive.read_bytes()).hexdigest() != sha256:
        raise AsrError(f"{url}: the download does not match its published sha256; try again")
    return archive


COMPILE_FLAGS = ["-I.", "-O3", "-DNDEBUG", "-DKENLM_MAX_ORDER=6", "-w"]


def unpack_source(version: str, folder: Path) -> tuple[Path, list[str]]:
    """KenLM's source from PyPI, unpacked into `folder` -> (its root, the library's .cc files relative to it):
    the query and build_binary code, without Boost (as KenLM's compile_query_only.sh takes it)."""
    with tarfile.open(_download_source(version, folder)) as archive:
        archive.extractall(folder, filter="data")
    source = folder / f"kenlm-{version}"
    files = [str(p.relative_to(source)) for directory in ("util/double-conversion", "util", "lm")
             for p in sorted((source / directory).glob("*.cc")) if not p.name.endswith(("test.cc", "main.cc"))]
    return source, files


def compiler() -> str:
    found = shutil.which(os.environ.get("CXX", "g++"))
    if found is None:
        raise AsrError("compiling KenLM needs a C++ compiler (g++) once; install it (apt-get install g++)")
    return found


def compile_build_binary(version: str | None = None) -> Path:
    """Compile KenLM's build_binary from its PyPI source, without Boost (as KenLM's compile_query_only.sh does)."""
    version = version or kenlm_version()
    target = cache_dir() / f"kenlm-{version}" / "build_binary"
    if target.is_file():
        return target
    try:
        cxx = compiler()
    except AsrError:
        raise AsrError("building a KenLM binary needs a C++ compiler (g++) once; install it, or use the ARPA "
                       "file") from None
    with tempfile.TemporaryDirectory() as tmp:
        log.info("compiling KenLM %s build_binary (once, about half a minute)", version)
        source, files = unpack_source(version, Path(tmp))
        command = [cxx, *COMPILE_FLAGS, "lm/build_binary_main.cc", *files, "-o", "build_binary", "-lrt",
                   "-lpthread"]
        result = subprocess.run(command, cwd=source, capture_output=True, text=True)
        if result.returncode != 0:
            last = one_line(result.stderr, last=True, limit=None, empty="?")
            raise AsrError(f"compiling KenLM's build_binary failed ({last}); use the ARPA file instead")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source / "build_binary"), target)
    return target


def build_binary_program() -> Path:
    found = shutil.which("build_binary")
    return Path(found) if found else compile_build_binary()


def arpa_to_binary(arpa: str | os.PathLike, output: str | os.PathLike, quantize_bits: int = 8) -> Path:
    """Convert an ARPA file to a KenLM trie binary, probabilities and backoffs quantised to `quantize_bits`
    (0: unquantised). Writes `output` and its word list `output.words` (the decoder needs the words, and a binary
    cannot list them)."""
    from asr.lm import words_file_of
    from asr.ngram import arpa_vocabulary

    arpa, output = Path(arpa), Path(output)
    words = arpa_vocabulary(arpa)
    program = build_binary_program()
    tmp = output.with_name(output.name + ".tmp")
    # -a 255: the most pointer compression KenLM offers. Lossless, and a quarter smaller for our pruned 4-gram
    # (48 -> 37 MB), for lookups about half as fast, which beam search hardly notices next to the acoustic model.
    command = [str(program), "-S", "20%", "-a", "255"]
    if quantize_bits:
        command += ["-q", str(quantize_bits), "-b", str(quantize_bits)]
    command += ["trie", str(arpa), str(tmp)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = one_line(result.stderr, last=True, limit=None, empty="?")
        tmp.unlink(missing_ok=True)
        raise AsrError(f"{arpa}: KenLM build_binary failed: {last}")
    words_file = words_file_of(output)
    words_file.with_name(words_file.name + ".tmp").write_text("\n".join(words) + "\n", encoding="utf-8")
    os.replace(words_file.with_name(words_file.name + ".tmp"), words_file)
    os.replace(tmp, output)
    return output
