"""`asr serve` through the official openai client, as an application uses it: every response format, word times,
the API key, the size limit, bad audio and bad parameters in OpenAI's error shape; and the batcher, the timeout and
the body limit on their own."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import API_KEY

openai = pytest.importorskip("openai")
SPEECH = Path(__file__).parent.parent / "examples" / "speech.flac"
REFERENCE = (SPEECH.parent / "speech.txt").read_text().strip()


def client(url: str, key: str = API_KEY):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def transcribe(url: str, path: Path = SPEECH, **options):
    with open(path, "rb") as audio:
        return client(url).audio.transcriptions.create(model="asr", file=audio, **options)


def test_every_response_format(server):
    url, _, _ = server
    assert transcribe(url).text == REFERENCE
    assert transcribe(url, response_format="text").strip() == REFERENCE
    srt = transcribe(url, response_format="srt")
    assert srt.startswith("1\n00:00:00,") and "-->" in srt and "ARRANGED" in srt
    vtt = transcribe(url, response_format="vtt")
    assert vtt.startswith("WEBVTT") and "-->" in vtt and "ARRANGED" in vtt
    verbose = transcribe(url, response_format="verbose_json", timestamp_granularities=["word"])
    assert verbose.text == REFERENCE and verbose.language == "english" and verbose.duration == pytest.approx(5.03, 0.01)
    assert [w.word for w in verbose.words] == REFERENCE.split()
    assert all(0 <= w.start <= w.end <= verbose.duration for w in verbose.words)
    assert all(0 <= w.model_extra["confidence"] <= 1 for w in verbose.words)  # our extra field
    assert " ".join(s.text for s in verbose.segments) == REFERENCE
    plain_verbose = transcribe(url, response_format="verbose_json")  # segments only unless words are asked for
    assert plain_verbose.segments and not plain_verbose.words


def test_the_openai_model_name_and_models_list(server):
    url, _, _ = server
    with open(SPEECH, "rb") as audio:
        assert client(url).audio.transcriptions.create(model="whisper-1", file=audio).text == REFERENCE
    assert [m.id for m in client(url).models.list()] == ["asr", "whisper-1"]


def test_api_key_is_checked(server):
    url, _, _ = server
    for key in ("wrong", ""):
        with pytest.raises(openai.AuthenticationError) as caught, open(SPEECH, "rb") as audio:
            client(url, key or "x" * 0 or "none").audio.transcriptions.create(model="asr", file=audio)
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    request = urllib.request.Request(f"{url}/v1/models")  # no Authorization header at all
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 401 and json.load(caught.value)["error"]["code"] == "invalid_api_key"


def test_size_limit(server, tmp_path):
    url, _, _ = server
    big = tmp_path / "big.wav"
    soundfile.write(big, np.zeros(16000 * 40, dtype=np.float32), 16000)  # 1.3 MB, over the 1 MB limit
    with pytest.raises(openai.APIStatusError) as caught:
        transcribe(url, big)
    assert caught.value.status_code == 413 and caught.value.code == "request_too_large"
    assert "--max-upload-mb" in caught.value.message


def test_bad_audio_and_bad_parameters(server, tmp_path):
    url, process, _ = server
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples")
    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(url, not_audio)
    error = caught.value.body
    assert error["param"] == "file" and "notes.wav: not a readable audio file" in error["message"]
    assert "BytesIO" not in error["message"]
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(openai.BadRequestError, match="no audio samples|too short"):
        transcribe(url, empty)
    bad = {"response_format": "xml", "language": "fr", "temperature": 7}
    for name, value in bad.items():
        with pytest.raises(openai.BadRequestError) as caught:
            transcribe(url, **{name: value})
        assert caught.value.body["param"] == name
    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(url, timestamp_granularities=["word"])  # word times need verbose_json, as at OpenAI
    assert caught.value.body["param"] == "timestamp_granularities"
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: colour"):
        transcribe(url, extra_body={"colour": "blue"})
    with pytest.raises(openai.NotFoundError) as caught, open(SPEECH, "rb") as audio:
        client(url).audio.transcriptions.create(model="gpt-4o-transcribe", file=audio)
    assert caught.value.code == "model_not_found"
    assert process.poll() is None and transcribe(url).text == REFERENCE  # still serving


def test_long_upload_is_read_in_windows_and_leaves_no_file(server, tmp_path):
    url, _, spool = server
    speech, rate = soundfile.read(SPEECH, dtype="float32")
    pause = np.zeros(rate // 2, dtype=np.float32)
    long = tmp_path / "long.flac"
    soundfile.write(long, np.concatenate([speech, pause] * 5), rate)  # 28 s: over the 20 s window
    verbose = transcribe(url, long, response_format="verbose_json", timestamp_granularities=["word"])
    assert verbose.duration > 20 and verbose.text.count("ARRANGED") >= 4
    assert not list(spool.glob("upload-*"))


def test_concurrent_requests_share_the_model(server):
    url, _, _ = server
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: transcribe(url).text, range(8)))
    assert texts == [REFERENCE] * 8


# The pieces on their own, without a model.

def test_batcher_joins_requests_that_arrive_together_and_refuses_beyond_its_queue():
    from asr.serve.batcher import Batcher, Overloaded
    from asr.transcript import Transcript

    batches, release = [], threading.Event()

    def fake_transcribe(waveforms):
        batches.append(len(waveforms))
        release.wait(5)
        return [Transcript(str(len(w)), (), 1.0, len(w) / 16000) for w in waveforms]

    batcher = Batcher(fake_transcribe, max_batch=4, max_queue=2, batch_wait=0.2)

    async def scenario():
        first = [asyncio.ensure_future(batcher.transcribe(np.zeros(n, np.float32))) for n in (1, 2, 3, 4)]
        await asyncio.sleep(0.3)  # the first batch is running: 4 in it
        waiting = [asyncio.ensure_future(batcher.transcribe(np.zeros(n, np.float32))) for n in (5, 6)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded) as refused:
            await batcher.transcribe(np.zeros(7, np.float32))
        assert refused.value.retry_after >= 1
        release.set()
        return [t.text for t in await asyncio.gather(*first, *waiting)]

    assert asyncio.run(scenario()) == ["1", "2", "3", "4", "5", "6"]
    assert batches == [4, 2]
    batcher.close()


def test_batcher_survives_a_failing_batch():
    from asr.serve.batcher import Batcher
    from asr.transcript import Transcript

    calls = []

    def flaky(waveforms):
        calls.append(len(waveforms))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return [Transcript("ok", (), 1.0, 0.1) for _ in waveforms]

    batcher = Batcher(flaky, max_batch=2, batch_wait=0.0)

    async def scenario():
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.transcribe(np.zeros(10, np.float32))
        return (await batcher.transcribe(np.zeros(10, np.float32))).text

    assert asyncio.run(scenario()) == "ok"
    batcher.close()


def test_batcher_outlives_a_request_whose_event_loop_closed():
    from asr.serve.batcher import Batcher
    from asr.transcript import Transcript

    release = threading.Event()

    def slow(waveforms):
        release.wait(5)
        return [Transcript("ok", (), 1.0, 0.1) for _ in waveforms]

    batcher = Batcher(slow, max_batch=2, batch_wait=0.0)

    async def leave_early():  # the loop closes while the worker still transcribes
        asyncio.ensure_future(batcher.transcribe(np.zeros(10, np.float32)))
        await asyncio.sleep(0.2)

    asyncio.run(leave_early())
    release.set()
    time.sleep(0.2)  # the worker settles into the closed loop

    async def ask():
        return (await asyncio.wait_for(batcher.transcribe(np.zeros(10, np.float32)), 5)).text

    assert asyncio.run(ask()) == "ok"  # the worker lived on
    batcher.close()


class SlowRecognizer:
    """Stands in for a `Recognizer`: answers every waveform after `seconds`."""

    def __init__(self, seconds: float):
        from asr.long_audio import WindowConfig

        self.seconds, self.window = seconds, WindowConfig()

    def transcribe_waveforms(self, waveforms):
        from asr.transcript import Transcript

        time.sleep(self.seconds)
        return [Transcript("SLOW", (), 1.0, len(w) / 16000) for w in waveforms]


def test_timeout_answers_504_and_a_chunked_body_over_the_limit_413(tmp_path):
    from fastapi.testclient import TestClient

    from asr.serve.app import ServeSettings, create_app

    settings = ServeSettings(request_timeout=0.2, max_upload_bytes=200_000, spool_dir=tmp_path)
    app = create_app(SlowRecognizer(1.0), settings)
    with TestClient(app) as http:
        answer = http.post("/v1/audio/transcriptions", data={"model": "asr"},
                           files={"file": ("speech.flac", SPEECH.read_bytes())})
        assert answer.status_code == 504 and answer.json()["error"]["code"] == "timeout"

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(30):
                yield b"x" * 10_000
        answer = http.post("/v1/audio/transcriptions", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"


def test_a_killed_servers_uploads_are_removed_at_start(tmp_path):
    from asr.serve.app import remove_stale_spool_files

    dead, alive = tmp_path / "upload-999999999-1.wav", tmp_path / f"upload-{__import__('os').getpid()}-2.wav"
    dead.write_bytes(b"half")
    alive.write_bytes(b"in use")
    assert remove_stale_spool_files(tmp_path) == 1
    assert not dead.exists() and alive.exists()


def test_serve_options_are_checked():
    from asr.cli import main

    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--max-upload-mb", "-1"]) == 2
