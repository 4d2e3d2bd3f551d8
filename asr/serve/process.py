"""`asr serve` started in a child process on a free localhost port and waited for until it answers: what the tests
and tools/bench_serve.py run, as a user would start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`asr serve OPTIONS` with TMPDIR (and so its spool folder, `spool`) under `folder` and its log in `log`.
    Raises RuntimeError with the log when it does not answer /health within `timeout` seconds."""

    def __init__(self, folder: Path, options: list[str], port: int | None = None, env: dict | None = None,
                 timeout: float = 120):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.spool = folder / "asr-serve"
        self.log = folder / f"serve-{self.port}.log"
        with self.log.open("a") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--port", str(self.port), *options],
                                            env={**os.environ, **(env or {}), "TMPDIR": str(folder)}, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(f"asr serve did not start:\n{self.log.read_text()}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
