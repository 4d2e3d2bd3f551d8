"""The routes of `asr serve`, and the guards in front of them: the API key, the request size limit, the bounded
queue (`Batcher`), the per-request timeout, and one log line per request. Every failure is answered in OpenAI's
error shape with a 4xx (or 503/504 when the server is busy or slow), never a traceback."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from asr.audio import SAMPLE_RATE, load_audio
from asr.errors import AsrError
from asr.serve.batcher import Batcher, Overloaded
from asr.serve.requests import parse_transcription_request
from asr.serve.responses import ApiError, transcript_response
from asr.transcribe import Recognizer

log = logging.getLogger("asr.serve")
STATIC = Path(__file__).parent / "static"
OPENAI_ALIAS = "whisper-1"  # accepted as well, so applications written for OpenAI work without a change


@dataclass(frozen=True)
class ServeSettings:
    model_name: str = "asr"
    api_key: str | None = None
    max_upload_bytes: int = 25 * 1024 * 1024  # OpenAI's limit
    max_audio_seconds: float = 3600.0
    request_timeout: float = 600.0
    max_batch: int = 8
    max_queue: int = 32
    batch_wait: float = 0.01
    spool_dir: Path = Path(tempfile.gettempdir()) / "asr-serve"


class BodyTooLarge(Exception):
    pass


def too_large(size: str, max_bytes: int) -> ApiError:
    return ApiError(413, f"The request body ({size}) is over this server's limit of {max_bytes} bytes (asr serve "
                         "--max-upload-mb); send a shorter or more compressed file.", code="request_too_large")


class LimitBody:
    """ASGI middleware: a request whose body is (or declares itself) over `max_bytes` is answered 413 before the
    rest of it is read, so a huge upload costs neither memory nor disk."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            log.info("%s %s 413 body of %s bytes refused", scope["method"], scope["path"], declared.decode())
            return await too_large(f"{declared.decode()} bytes", self.max_bytes).response()(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge()
            return message
        started = False

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
        try:
            await self.app(scope, counted, watched_send)
        except BodyTooLarge:
            if not started:
                log.info("%s %s 413 body over %d bytes refused", scope["method"], scope["path"], self.max_bytes)
                await too_large(f"over {self.max_bytes} bytes", self.max_bytes).response()(scope, receive, send)


def remove_stale_spool_files(spool_dir: Path) -> int:
    """Delete the uploads a killed server left behind (named after their process, which is gone): nothing a
    crash leaves stays. Returns how many were removed."""
    removed = 0
    for path in spool_dir.glob("upload-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def create_app(recognizer: Recognizer, settings: ServeSettings = ServeSettings()) -> FastAPI:
    app = FastAPI(title="asr", docs_url=None, redoc_url=None, openapi_url=None)
    batcher = Batcher(recognizer.transcribe_waveforms, settings.max_batch, settings.max_queue, settings.batch_wait)
    served_models = (settings.model_name, OPENAI_ALIAS)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    if removed := remove_stale_spool_files(settings.spool_dir):
        log.info("removed %d upload(s) a stopped server left in %s", removed, settings.spool_dir)
    app.state.batcher = batcher
    long_seconds = recognizer.window.window_seconds

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        request.state.note = error.message
        return error.response()

    def body_over_limit(request: Request) -> Response:
        request.state.note = "body over the limit"
        return too_large(f"over {settings.max_upload_bytes} bytes", settings.max_upload_bytes).response()

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, error: BodyTooLarge):
        return body_over_limit(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return ApiError(error.status_code, str(error.detail), code="not_found" if error.status_code == 404
                        else None).response()

    @app.middleware("http")
    async def check_key_and_log(request: Request, call_next):
        started = time.monotonic()
        if settings.api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                response = ApiError(401, "Incorrect API key provided. Send it as 'Authorization: Bearer KEY' (the "
                                         "key asr serve was started with).", code="invalid_api_key").response()
                log.info("%s %s 401 wrong or missing API key", request.method, request.url.path)
                return response
        try:
            response = await call_next(request)
        except Exception as error:  # a bug of ours: one line in the log, a JSON 500 to the client, the server lives
            if _caused_by(error, BodyTooLarge):  # raised by LimitBody while the body was read
                return body_over_limit(request)
            log.error("%s %s 500 unexpected %s: %s", request.method, request.url.path, type(error).__name__, error)
            return ApiError(500, "The server failed on this request; its log has the cause.", kind="server_error",
                            code="internal_error").response()
        if request.url.path != "/health" and not request.url.path.startswith("/static/"):
            note = getattr(request.state, "note", "")
            log.info("%s %s %d %.2f s%s", request.method, request.url.path, response.status_code,
                     time.monotonic() - started, f" {note}" if note else "")
        return response

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": settings.model_name, "requests_admitted": batcher.admitted}

    def model_entry(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "asr"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_entry(name) for name in served_models]}

    @app.get("/v1/models/{name}")
    async def model(name: str):
        if name not in served_models:
            raise ApiError(404, f"The model '{name}' does not exist.", param="model", code="model_not_found")
        return model_entry(name)

    @app.post("/v1/audio/translations")
    async def translations():
        raise ApiError(400, "Translation is not supported: this model transcribes English only; use "
                            "/v1/audio/transcriptions.", code="unsupported_endpoint")

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=32)
        except MultiPartException as error:
            raise ApiError(400, f"The request is not a valid multipart form ({error.message}).") from None
        try:
            job = parse_transcription_request(form, served_models)
            # The client's file name, made safe for error messages, the log and the spool file's suffix.
            label = re.sub(r"[^\w.\- ]", "_", Path(job.upload.filename or "upload").name)[:100] or "upload"
            data = await job.upload.read()
            request.state.note = f"{label} {len(data)} bytes"
            samples = await run_in_threadpool(load_audio, data, max_seconds=settings.max_audio_seconds, name=label)
            spooled = None
            if len(samples) > long_seconds * SAMPLE_RATE:  # read in windows from a file, like `asr transcribe`
                spooled = settings.spool_dir / f"upload-{os.getpid()}-{time.monotonic_ns()}{Path(label).suffix[:10]}"
                await run_in_threadpool(spooled.write_bytes, data)
            try:
                work = (batcher.transcribe(run_alone=lambda: _transcribe_spooled(recognizer, spooled))
                        if spooled else batcher.transcribe(samples))
                transcript = await asyncio.wait_for(work, settings.request_timeout)
            finally:
                if spooled:
                    spooled.unlink(missing_ok=True)
        except AsrError as error:
            raise ApiError(400, str(error), param="file", code="invalid_value") from None
        except Overloaded as busy:
            raise ApiError(503, f"The server is busy ({settings.max_batch} requests running, {settings.max_queue} "
                                f"waiting); retry in {busy.retry_after} s.", kind="server_error",
                           code="overloaded", headers={"Retry-After": str(busy.retry_after)}) from None
        except TimeoutError:
            raise ApiError(504, f"The transcription took over {settings.request_timeout:g} s (asr serve "
                                "--request-timeout); send shorter audio.", kind="server_error",
                           code="timeout") from None
        finally:
            await form.close()
        request.state.note += f" {transcript.duration:.1f} s of audio"
        return transcript_response(transcript, job.response_format, job.word_times)

    # Outermost, so a body over the limit is refused before any route or form parser reads it.
    app.add_middleware(LimitBody, max_bytes=settings.max_upload_bytes)
    return app


def _caused_by(error: BaseException, kind: type) -> bool:
    """Whether `error` is `kind`, or a group of exceptions (as a task group raises) holding one."""
    if isinstance(error, BaseExceptionGroup):
        return any(_caused_by(inner, kind) for inner in error.exceptions)
    return isinstance(error, kind)


def _transcribe_spooled(recognizer: Recognizer, path: Path):
    try:
        return recognizer.transcribe_long(path)
    finally:
        path.unlink(missing_ok=True)
