"""Transcripts in the response formats of OpenAI's transcription API, and errors in its error shape
(`{"error": {"message", "type", "param", "code"}}`), so OpenAI clients parse both."""

from __future__ import annotations

import math

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from asr.subtitles import cues, to_srt, to_webvtt
from asr.transcript import Transcript

UNCERTAIN_BELOW = 0.5  # a word's confidence under this is marked uncertain on the page


class ApiError(Exception):
    """A request answered with `status` and OpenAI's error shape; `headers` such as Retry-After."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _segments(transcript: Transcript) -> list[dict]:
    """Whisper-style segments: the transcript's subtitle cues, with our mean word confidence as an extra field."""
    segments = []
    for number, words in enumerate(cues(transcript.words)):
        confidence = sum(w.confidence for w in words) / len(words)
        segments.append({
            "id": number, "seek": 0, "start": words[0].start, "end": words[-1].end,
            "text": " ".join(w.text for w in words), "tokens": [], "temperature": 0.0,
            "avg_logprob": round(math.log(max(confidence, 1e-6)), 4), "compression_ratio": 1.0,
            "no_speech_prob": 0.0, "confidence": round(confidence, 4),
        })
    return segments


def transcript_response(transcript: Transcript, response_format: str, word_times: bool) -> Response:
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    if response_format == "json":
        return JSONResponse({"text": transcript.text, "usage": usage})
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript))
    if response_format == "vtt":
        return PlainTextResponse(to_webvtt(transcript), media_type="text/vtt")
    body = {"task": "transcribe", "language": "english", "duration": transcript.duration, "text": transcript.text,
            "segments": _segments(transcript), "confidence": transcript.confidence, "usage": usage}
    if word_times:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence,
                          "uncertain": w.confidence < UNCERTAIN_BELOW} for w in transcript.words]
    return JSONResponse(body)
