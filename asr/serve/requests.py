"""The form fields of `POST /v1/audio/transcriptions`, checked as OpenAI checks them: a missing or invalid value,
or a field the API does not have, is a 400 naming the field; a field we cannot honour is a 400 that says so."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile

from asr.serve.responses import ApiError

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
# Fields of OpenAI's transcription API that are accepted and have no effect here: decoding is deterministic and
# the model cannot be prompted (the LM weighs every transcript the same way).
IGNORED_FIELDS = ("prompt", "temperature", "chunking_strategy")
KNOWN_FIELDS = {"file", "model", "language", "response_format", "stream", "include[]", "include",
                "timestamp_granularities[]", "timestamp_granularities", "known_speaker_names[]",
                "known_speaker_references[]", *IGNORED_FIELDS}
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")  # ISO-639-1


@dataclass(frozen=True)
class TranscriptionRequest:
    upload: UploadFile
    model: str
    response_format: str
    word_times: bool


def _one(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str):
        raise ApiError(400, f"Invalid value for '{name}': give it once, as text.", param=name, code="invalid_value")
    return values[0].strip()


def parse_transcription_request(form: FormData, served_models: tuple[str, ...]) -> TranscriptionRequest:
    unknown = sorted(set(form.keys()) - KNOWN_FIELDS)
    if unknown:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0],
                       code="unknown_parameter")
    uploads = form.getlist("file")
    if not uploads or not isinstance(uploads[0], UploadFile):
        raise ApiError(400, "Missing required parameter: 'file' (the audio file, sent as a multipart upload).",
                       param="file", code="missing_required_parameter")
    if len(uploads) > 1:
        raise ApiError(400, "Give one 'file' per request.", param="file", code="invalid_value")
    model = _one(form, "model")
    if not model:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if model not in served_models:
        raise ApiError(404, f"The model '{model}' does not exist. This server has: {', '.join(served_models)}.",
                       param="model", code="model_not_found")
    response_format = _one(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(400, f"Invalid value: '{response_format}'. Supported values are: 'json', 'text', 'srt', "
                            "'verbose_json', and 'vtt'.", param="response_format", code="invalid_value")
    language = _one(form, "language")
    if language and not LANGUAGE_CODE.match(language):
        raise ApiError(400, f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 "
                            "format.", param="language", code="invalid_language_format")
    if language and language != "en":
        raise ApiError(400, f"Unsupported language '{language}': this model transcribes English ('en') only.",
                       param="language", code="unsupported_language")
    temperature = _one(form, "temperature")
    if temperature is not None:
        try:
            valid = 0.0 <= float(temperature) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise ApiError(400, f"Invalid 'temperature': {temperature!r}; give a number from 0 to 1.",
                           param="temperature", code="invalid_value")
    if (_one(form, "stream") or "false").lower() not in ("false", "0"):
        raise ApiError(400, "Streaming is not supported by this model; leave 'stream' unset.", param="stream",
                       code="unsupported_value")
    for name in ("include[]", "include", "known_speaker_names[]", "known_speaker_references[]"):
        if form.getlist(name):
            raise ApiError(400, f"'{name}' is not supported by this model.", param=name, code="unsupported_value")
    granularities = form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    for value in granularities:
        if value not in ("word", "segment"):
            raise ApiError(400, f"Invalid value: '{value}'. Supported values are: 'word' and 'segment'.",
                           param="timestamp_granularities", code="invalid_value")
    if granularities and response_format != "verbose_json":
        raise ApiError(400, "timestamp_granularities is only supported with response_format 'verbose_json'.",
                       param="timestamp_granularities", code="invalid_value")
    return TranscriptionRequest(uploads[0], model, response_format, "word" in granularities)
