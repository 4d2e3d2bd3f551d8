"""asr: speech recognition with a deep bidirectional LSTM trained with CTC.

    import asr
    recognizer = asr.load_model("model.pt")
    print(recognizer.transcribe("speech.wav").text)
"""

from asr.errors import AsrError, AudioError, CheckpointError, ConfigError, ManifestError
from asr.transcribe import Recognizer, Transcript, Word, load_model

__version__ = "0.1.0"

__all__ = ["AsrError", "AudioError", "CheckpointError", "ConfigError", "ManifestError", "Recognizer", "Transcript",
           "Word", "load_model", "__version__"]
