"""Errors raised at the public boundary of `asr`.

Every error names the file (or input) at fault and says what to do about it, so the CLI can print it as one line
and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class AsrError(Exception):
    """Base class: a problem with the user's input, reported as one line."""


class AudioError(AsrError):
    """Audio that cannot be read or is unusable (missing, not audio, empty, NaN, too long)."""

    def __init__(self, source: str | Path, problem: str, hint: str = ""):
        self.source = str(source)
        message = f"{self.source}: {problem}"
        super().__init__(f"{message}; {hint}" if hint else message)


class ManifestError(AsrError):
    """A manifest or transcript file with a missing or malformed entry."""


class CheckpointError(AsrError):
    """A model or training-state file that is missing, damaged, or from another format version."""


class ConfigError(AsrError):
    """An unknown or ill-typed configuration key or value."""


def one_line(source: BaseException | str, *, last: bool = False, limit: int | None = 160,
             empty: str | None = None) -> str:
    """One line of an error's message (or of a tool's stderr) for a one-line report: the first, or with `last`
    the last (where tracebacks and build tools put what went wrong), at most `limit` characters (None: all).
    With no text: `empty`, else the exception's type name."""
    lines = str(source).strip().splitlines()
    if not lines:
        return empty if empty is not None else type(source).__name__
    return lines[-1 if last else 0][:limit]
