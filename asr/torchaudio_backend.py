"""The one place `asr` imports torchaudio (resampling and the mel filterbank), so it could be replaced here.

torchaudio ships compiled code built against one torch release: a mismatched pair imports with an OSError about
an undefined symbol deep inside torch. That is turned into one line saying which versions to install.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from types import ModuleType

from asr.errors import AsrError, one_line


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def torchaudio() -> ModuleType:
    """torchaudio with its `functional` and `transforms` loaded, or an AsrError naming the versions to install."""
    try:
        import torchaudio as module
        import torchaudio.functional  # noqa: F401  (loads the compiled extension)
        import torchaudio.transforms  # noqa: F401
    except (ImportError, OSError) as error:
        while error.__cause__ is not None:  # torchaudio re-raises the loader's error as "Could not load ..."
            error = error.__cause__
        detail = one_line(error, last=True, limit=None)
        raise AsrError(f"torchaudio {_version('torchaudio')} cannot be loaded with torch {_version('torch')} "
                       f"({detail}); install the pair asr pins: pip install torch==2.11.0 torchaudio==2.11.0") from None
    return module
