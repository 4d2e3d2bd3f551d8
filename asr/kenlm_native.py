"""KenLM for the compiled beam search, called from numba without the interpreter (asr/kenlm_bridge.cc).

The `kenlm` package answers from Python only, so the search used to stop whenever it met a (LM state, word) pair
its cache had not seen, return to Python for the answer and run the frame again: on unseen speech that was most of
the search's time (BENCHMARKS.md). With the bridge, numba asks KenLM itself, in a tenth of a microsecond.

The bridge is compiled once, with KenLM's own sources from PyPI (about 20 seconds, g++), into
~/.cache/asr/kenlm-<version>/ (or $ASR_CACHE): `python -m asr.kenlm_native`, which tools/setup.sh runs. Nothing
compiles it behind a user's back: without it the search asks through Python as before, with the same results.
ASR_NATIVE_LM=0 turns it off.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from asr.errors import AsrError, one_line
from asr.kenlm_binary import COMPILE_FLAGS, cache_dir, compiler, kenlm_version, unpack_source

log = logging.getLogger(__name__)
LIBRARY_NAME = "libasr_kenlm.so"  # as compiled, before it is moved into the cache

# The signatures numba calls (the search passes these ctypes functions in as arguments).
SCORE_TYPE = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_uint64, ctypes.c_int64, ctypes.c_uint32)
NEXT_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64)
# Stand-ins of the same types for a search without the bridge: never called (its context is 0), they keep one
# compiled search for both ways.
NO_SCORE = SCORE_TYPE(lambda context, state, word: 0.0)
NO_NEXT = NEXT_TYPE(lambda context: 0)


def _bridge_source():
    return resources.files("asr") / "kenlm_bridge.cc"


def library_path(version: str | None = None) -> Path:
    """Where the bridge built from this KenLM version and this bridge source is kept (a changed bridge is built
    anew, never mistaken for an older one)."""
    digest = hashlib.sha256(_bridge_source().read_bytes()).hexdigest()[:12]
    return cache_dir() / f"kenlm-{version or kenlm_version()}" / f"libasr_kenlm-{digest}.so"


def build(version: str | None = None) -> Path:
    """Compile the bridge with KenLM's sources (once; later calls return the cached library)."""
    version = version or kenlm_version()
    target = library_path(version)
    if target.is_file():
        return target
    cxx = compiler()
    bridge = _bridge_source()
    with tempfile.TemporaryDirectory() as tmp:
        log.info("compiling the KenLM bridge for the beam search (once, about 20 seconds)")
        source, files = unpack_source(version, Path(tmp))
        shutil.copyfile(str(bridge), source / "asr_kenlm_bridge.cc")
        command = [cxx, *COMPILE_FLAGS, "-fPIC", "-shared", "asr_kenlm_bridge.cc", *files, "-o", LIBRARY_NAME,
                   "-lrt", "-lpthread"]
        result = subprocess.run(command, cwd=source, capture_output=True, text=True)
        if result.returncode != 0:
            last = one_line(result.stderr, last=True, limit=None, empty="?")
            raise AsrError(f"compiling the KenLM bridge failed ({last}); the search still works without it")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        shutil.move(str(source / LIBRARY_NAME), partial)
        os.replace(partial, target)  # a half-copied library is never taken for a built one
    return target


_library = None
_library_lock = threading.Lock()


def _load_library():
    """The compiled bridge, or None (not built, turned off, or not loadable here)."""
    global _library
    with _library_lock:
        if _library is None:
            _library = False
            path = library_path() if os.environ.get("ASR_NATIVE_LM", "1") != "0" else None
            if path is not None and path.is_file():
                try:
                    _library = _declare(ctypes.CDLL(str(path)))
                except (OSError, AttributeError) as error:
                    log.warning("%s: cannot load the KenLM bridge (%s); LM questions go through Python", path,
                                one_line(error))
        return _library or None


def _declare(lib):
    c = ctypes
    for name, result, arguments in (
            ("asr_lm_load", c.c_void_p, [c.c_char_p, c.c_char_p, c.c_int64]),
            ("asr_lm_free", None, [c.c_void_p]),
            ("asr_lm_indices", None, [c.c_void_p, c.c_char_p, c.c_int64, c.POINTER(c.c_uint32)]),
            ("asr_lm_context_new", c.c_uint64, [c.c_void_p]),
            ("asr_lm_context_copy", c.c_uint64, [c.c_uint64]),
            ("asr_lm_context_free", None, [c.c_uint64]),
            ("asr_lm_context_states", c.c_int64, [c.c_uint64]),
            ("asr_lm_context_keep", None, [c.c_uint64, c.POINTER(c.c_int64), c.c_int64])):
        function = getattr(lib, name)
        function.restype, function.argtypes = result, arguments
    lib.score = SCORE_TYPE(("asr_lm_score", lib))
    lib.next_state = NEXT_TYPE(("asr_lm_last_next", lib))
    return lib


class NativeModel:
    """A KenLM model opened through the bridge (the file is memory-mapped: a second opening costs little)."""

    def __init__(self, lib, path: Path):
        error = ctypes.create_string_buffer(512)
        handle = lib.asr_lm_load(os.fsencode(path), error, len(error))
        if not handle:
            raise AsrError(f"{path}: the KenLM bridge cannot open it ({error.value.decode(errors='replace')})")
        self.lib, self.handle = lib, handle
        self.score, self.next_state = lib.score, lib.next_state

    def indices(self, words: list[str]) -> np.ndarray:
        """KenLM's index of each word (<unk>'s for a word it does not know)."""
        out = np.zeros(len(words), dtype=np.uint32)
        joined = "\n".join(words).encode("utf-8")
        self.lib.asr_lm_indices(self.handle, joined, len(words), out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)))
        return out

    def new_context(self) -> "Context":
        return Context(self)

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.asr_lm_free(self.handle)
            self.handle = None


class Context:
    """One search's LM states, numbered from 0 (the start of a sentence): the search keeps only their numbers."""

    def __init__(self, model: NativeModel, copy_of: "Context | None" = None):
        self.model = model  # kept alive as long as a context uses it
        lib = model.lib
        self.handle = lib.asr_lm_context_copy(copy_of.handle) if copy_of else lib.asr_lm_context_new(model.handle)
        if not self.handle:
            raise MemoryError("no memory for a KenLM search context")

    def copy(self) -> "Context":
        return Context(self.model, copy_of=self)

    def __len__(self) -> int:
        return self.model.lib.asr_lm_context_states(self.handle)

    def keep(self, numbers: list[int]) -> None:
        """Forget every state but these (sorted, 0 first), renumbered 0, 1, ... in their order."""
        kept = np.ascontiguousarray(numbers, dtype=np.int64)
        self.model.lib.asr_lm_context_keep(self.handle, kept.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)),
                                           len(kept))

    def __del__(self):
        if getattr(self, "handle", None):
            self.model.lib.asr_lm_context_free(self.handle)
            self.handle = None


def open_model(path: str | os.PathLike) -> NativeModel | None:
    """`path` through the bridge, or None when the bridge is not built (the search then asks through Python)."""
    lib = _load_library()
    return NativeModel(lib, Path(path)) if lib is not None else None


def main() -> int:
    try:
        path = build()
    except AsrError as error:
        print(f"asr: error: {error}", file=sys.stderr)
        return 2
    print(f"KenLM bridge: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
