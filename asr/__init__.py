"""asr: speech recognition with a deep bidirectional LSTM trained with CTC.

    import asr
    recognizer = asr.load_model()            # the bundled default model and its LM; or load_model("model.pt")
    print(recognizer.transcribe("speech.wav").text)
    print(asr.transcribe("speech.wav").text)  # the same in one call
"""

from asr.errors import AsrError, AudioError, CheckpointError, ConfigError, ManifestError
from asr.transcribe import Recognizer, Transcript, Word, load_model, transcribe

__version__ = "0.1.0"

__all__ = ["AsrError", "AudioError", "CheckpointError", "ConfigError", "ManifestError", "Recognizer", "Transcript",
           "Word", "load_model", "transcribe", "__version__"]
