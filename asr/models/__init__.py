"""The bundled default model: `default.pt`, with the tuned word LM it names (`default-lm.bin` and its word list)."""

from __future__ import annotations

from pathlib import Path

from asr.errors import AsrError

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = MODELS_DIR / "default.pt"


def default_model_path() -> Path:
    if not DEFAULT_MODEL.is_file():
        raise AsrError(f"{DEFAULT_MODEL}: this installation has no bundled default model; pass --model with a "
                       "model file (`asr train` makes one)")
    return DEFAULT_MODEL
