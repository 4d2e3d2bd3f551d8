import builtins

import numpy as np
import pytest

from asr import torchaudio_backend
from asr.audio import resample
from asr.errors import AsrError


@pytest.fixture
def broken_torchaudio(monkeypatch):
    """torchaudio as a build for another torch release imports (2.11.1 with torch 2.11.0): the loader's OSError,
    re-raised by torchaudio as one that names only the library."""
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name.startswith("torchaudio"):
            library = "/venv/torchaudio/lib/libtorchaudio.so"
            loader_error = OSError(f"{library}: undefined symbol: torch_exception_get_what_without_backtrace")
            raise OSError(f"Could not load this library: {library}") from loader_error
        return real_import(name, *args, **kwargs)

    torchaudio_backend.torchaudio.cache_clear()
    monkeypatch.setattr(builtins, "__import__", failing_import)
    yield
    monkeypatch.undo()
    torchaudio_backend.torchaudio.cache_clear()  # so later tests load the real one


def test_a_torchaudio_that_cannot_load_is_one_line_naming_the_pair_to_install(broken_torchaudio):
    with pytest.raises(AsrError) as raised:
        resample(np.zeros(2205, dtype=np.float32), 22050, 16000)
    message = str(raised.value)
    assert "\n" not in message
    assert "undefined symbol" in message
    assert "pip install torch==2.11.0 torchaudio==2.11.0" in message


def test_the_pinned_torchaudio_loads():
    torchaudio_backend.torchaudio.cache_clear()
    module = torchaudio_backend.torchaudio()
    assert hasattr(module.functional, "resample") and hasattr(module.transforms, "MelSpectrogram")
