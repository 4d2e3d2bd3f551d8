"""The one thread that runs the model. Requests wait in a bounded queue; short ones that arrive together are
transcribed as one padded batch (one LSTM pass, one decoder batch), which raises throughput on a busy server
(tools/bench_serve.py measures it). A full queue is refused at once, never made to wait without bound."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from asr.transcript import Transcript

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Every batch slot and queue place is taken; `retry_after` is a fair guess of seconds until one frees."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    samples: np.ndarray | None  # 16 kHz audio for the batched path
    run_alone: Callable[[], Transcript] | None  # a long file: transcribed by itself, in windows
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    """`transcribe_batch(waveforms) -> transcripts` runs in one worker thread, at most `max_batch` requests at a
    time; at most `max_queue` more wait. The worker waits up to `batch_wait` seconds after the first request for
    others to join its batch."""

    def __init__(self, transcribe_batch: Callable[[Sequence[np.ndarray]], list[Transcript]], max_batch: int = 8,
                 max_queue: int = 32, batch_wait: float = 0.01):
        self.transcribe_batch = transcribe_batch
        self.max_batch, self.max_queue, self.batch_wait = max_batch, max_queue, batch_wait
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._admitted = 0  # queued or running
        self._lock = threading.Lock()
        self._seconds_per_request = 1.0  # a running mean, for Retry-After
        self._held_back: Job | None = None  # a long job met while filling a batch: first in the next round
        self._worker = threading.Thread(target=self._work, name="asr-serve-model", daemon=True)
        self._worker.start()

    @property
    def admitted(self) -> int:
        return self._admitted

    async def transcribe(self, samples: np.ndarray | None = None,
                         run_alone: Callable[[], Transcript] | None = None) -> Transcript:
        """The transcript of `samples` (batched with others), or of `run_alone()` run by itself. Raises
        `Overloaded` when the queue is full, and whatever the transcription raised."""
        with self._lock:
            if self._admitted >= self.max_batch + self.max_queue:
                waiting = self._admitted - self.max_batch + 1
                raise Overloaded(max(1, round(self._seconds_per_request * waiting / self.max_batch)))
            self._admitted += 1
        loop = asyncio.get_running_loop()
        job = Job(samples, run_alone, loop.create_future(), loop)
        self._jobs.put(job)
        try:
            return await job.future
        finally:
            if not job.future.done():  # the caller gave up (timeout, disconnect): the worker skips the job
                job.future.cancel()

    def close(self) -> None:
        self._jobs.put(None)

    def _next_batch(self) -> list[Job] | None:
        first = self._held_back or self._jobs.get()
        self._held_back = None
        if first is None or first.run_alone is not None:
            return None if first is None else [first]
        batch, deadline = [first], time.monotonic() + self.batch_wait
        while len(batch) < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:  # closing: finish this batch, then stop
                self._jobs.put(None)
                break
            if job.run_alone is not None:
                self._held_back = job
                break
            batch.append(job)
        return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [job for job in batch if not job.future.cancelled()]
            started = time.monotonic()
            try:
                if not live:
                    continue
                if live[0].run_alone is not None:
                    results: list[Transcript | BaseException] = [live[0].run_alone()]
                else:
                    results = list(self.transcribe_batch([job.samples for job in live]))
            except Exception as error:  # the requests fail, the worker lives on
                results = [error] * len(live)
            finally:
                with self._lock:
                    self._admitted -= len(batch)
            if live:
                spent = (time.monotonic() - started) / len(live)
                self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * spent
            for job, result in zip(live, results):
                try:
                    job.loop.call_soon_threadsafe(_settle, job.future, result)
                except RuntimeError:  # its event loop has closed (the server is stopping): nobody is waiting
                    pass


def _settle(future: asyncio.Future, result) -> None:
    if future.done():  # cancelled meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
