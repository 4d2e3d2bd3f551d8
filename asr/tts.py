"""Offline text-to-speech through the Debian engines espeak-ng, flite and festival.

A `Voice` is one fixed way of speaking: engine, voice, accent, pitch and rate. `synthesize` runs the engine in a
subprocess and returns 16 kHz mono float32 samples.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, resample
from asr.errors import AsrError

# The program each engine runs, and the Debian package that provides it (tools/install_tts.sh installs them all).
ENGINE_PROGRAMS = {"espeak-ng": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"),
                   "festival": ("text2wave", "festival")}
FESTIVAL_VOICE_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                           "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}


class EngineMissing(AsrError):
    """A text-to-speech engine or voice is not installed."""


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng, flite or festival
    name: str  # espeak-ng variant (m3, f2, klatt, ...), flite voice (slt, ...) or festival voice
    accent: str = ""  # espeak-ng language, e.g. en-us, en-gb-scotland; "" for the others
    pitch: float = 1.0  # relative to the voice's own (espeak-ng maps 1.0 to its default 50)
    rate: float = 1.0  # speaking rate relative to the voice's own

    @property
    def key(self) -> str:
        accent = f"{self.accent}:" if self.accent else ""
        return f"{self.engine}:{accent}{self.name}:p{self.pitch:.2f}:r{self.rate:.2f}"


def check_engine(engine: str, voice_name: str | None = None) -> None:
    """Raise `EngineMissing`, naming the Debian package to install, if `engine` (or its voice) is absent."""
    program, package = ENGINE_PROGRAMS[engine]
    if shutil.which(program) is None:
        raise EngineMissing(f"text-to-speech engine {engine}: program {program} not found; install the Debian "
                            f"package {package} (sudo bash tools/install_tts.sh installs every engine)")
    if engine == "festival" and voice_name in FESTIVAL_VOICE_PACKAGES:
        folders = list(Path("/usr/share/festival/voices").glob(f"*/{voice_name}"))
        if not folders:
            raise EngineMissing(f"festival voice {voice_name} not found; install the Debian package "
                                f"{FESTIVAL_VOICE_PACKAGES[voice_name]} (tools/install_tts.sh)")


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """Speak `text` with `voice` -> float32 samples at 16 kHz."""
    check_engine(voice.engine, voice.name)
    if voice.engine == "espeak-ng":
        wav = _espeak(voice, text)
    elif voice.engine == "flite":
        wav = _through_file(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / voice.rate:.3f}",
                             "--setf", f"int_f0_target_mean={_FLITE_F0[voice.name] * voice.pitch:.1f}",
                             "-f", "{text}", "-o", "{wav}"], text)
    elif voice.engine == "festival":
        # Festival's diphone voices take no simple pitch control; pitch is applied below by resampling.
        wav = _through_file(["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                             f"(Parameter.set 'Duration_Stretch {1 / voice.rate:.3f})", "{text}", "-o", "{wav}"],
                            text)
    else:
        raise ValueError(f"unknown engine {voice.engine!r}")
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)
    if voice.engine == "festival" and voice.pitch != 1.0:
        rate = int(round(rate * voice.pitch))  # played faster: higher and a little quicker, like a smaller vocal tract
    if samples.size == 0:
        raise AsrError(f"{voice.key}: the engine produced no audio for {text[:60]!r}")
    return resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples


_FLITE_F0 = {"awb": 100.0, "rms": 95.0, "slt": 170.0, "kal16": 105.0, "kal": 105.0}


def _espeak(voice: Voice, text: str) -> bytes:
    words_per_minute = int(round(170 * voice.rate))
    pitch = int(np.clip(round(50 * voice.pitch), 0, 99))
    return _run(["espeak-ng", "-v", f"{voice.accent or 'en-us'}+{voice.name}", "-s", str(words_per_minute),
                 "-p", str(pitch), "--stdout", "--stdin"], text.encode())


def _through_file(template: list[str], text: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="asr-tts-") as folder:
        text_path, wav_path = Path(folder) / "text.txt", Path(folder) / "speech.wav"
        text_path.write_text(text + "\n")
        _run([part.replace("{text}", str(text_path)).replace("{wav}", str(wav_path)) for part in template])
        return wav_path.read_bytes()


def _run(command: list[str], stdin: bytes | None = None) -> bytes:
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise AsrError(f"{command[0]} failed ({result.stderr.decode(errors='replace').strip()[:200]})")
    return result.stdout
