"""The one place decoding, transcription and server options are checked: every limit the CLI's --help names and the API
enforces, so an absurd value is refused in one line before any work starts.

Each `check_*` returns the value (converted) or raises `AsrError` naming the option, the value and the range.
"""

from __future__ import annotations

import math
import re

from asr.errors import AsrError

MAX_BEAM_SIZE = 4096  # wider beams gained under 0.1 point on dev and cost time in proportion
MAX_PASSES = 16  # voted passes; each is a full transcription
MAX_THREADS = 256
MAX_BATCH_SIZE = 256  # files or utterances decoded together
MAX_WEIGHT = 100.0  # |LM weight|, |word bonus|, blank penalty; tuned values lie within a few units
MAX_UNK_PENALTY = 1000.0  # the unknown-word penalty lies in [-1000, 0]
DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AsrError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise AsrError(f"{name} must be a whole number from {low} to {high}, not {value!r}") from None
    if number != value and not isinstance(value, str) or not low <= number <= high:
        raise AsrError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return number


def check_float(name: str, value, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise AsrError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise AsrError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")
    return number


def check_beam_size(value) -> int:
    return check_int("beam size", value, 1, MAX_BEAM_SIZE)


def check_passes(value) -> int:
    return check_int("passes", value, 1, MAX_PASSES)


def check_threads(value) -> int:
    return check_int("threads", value, 1, MAX_THREADS)


def check_batch_size(value) -> int:
    return check_int("batch size", value, 1, MAX_BATCH_SIZE)


def check_lm_weight(value) -> float:
    return check_float("LM weight", value, -MAX_WEIGHT, MAX_WEIGHT)


def check_word_bonus(value) -> float:
    return check_float("word bonus", value, -MAX_WEIGHT, MAX_WEIGHT)


def check_unk_penalty(value) -> float:
    return check_float("unknown-word penalty", value, -MAX_UNK_PENALTY, 0.0)


def check_blank_penalty(value) -> float:
    return check_float("blank penalty", value, 0.0, MAX_WEIGHT)


def check_device(value) -> str:
    if value is None:
        return "auto"
    if not isinstance(value, str) or not DEVICE.match(value):
        raise AsrError(f"device must be cpu, cuda, cuda:N or auto, not {value!r}")
    return value


# asr serve
MAX_UPLOAD_MB = 2048.0
MAX_QUEUE = 4096


def check_port(value) -> int:
    return check_int("port", value, 1, 65535)


def check_upload_mb(value) -> float:
    return check_float("upload limit (MB)", value, 0.001, MAX_UPLOAD_MB)


def check_audio_seconds(value) -> float:
    return check_float("audio length limit (seconds)", value, 0.1, 3 * 3600.0)  # asr.audio.MAX_SECONDS


def check_timeout(value) -> float:
    return check_float("request timeout (seconds)", value, 0.1, 86400.0)


def check_queue(value) -> int:
    return check_int("queue length", value, 0, MAX_QUEUE)
