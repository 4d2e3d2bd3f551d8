"""Load test of `asr serve` on this machine: N clients send a file over and over for M seconds; prints requests per
second, p50/p95 latency, errors and the server's memory at start and end. Each --max-batch value is a separate
server, so batching can be compared with none. --kill-test then kills a server in the middle of a long request,
shows what the client gets, restarts it and checks that nothing was left behind.

    python tools/bench_serve.py --clients 8 --seconds 30 --max-batch 1 8 --kill-test

The server runs the bundled model with its LM, as `asr serve` does without flags. Every request goes through the
real HTTP stack (multipart upload, audio decoding, model, LM search, JSON answer).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import openai
import soundfile

from asr.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server(ServerProcess):
    def __init__(self, folder: Path, options: list[str], port: int | None = None):
        try:
            super().__init__(folder, options, port)
        except RuntimeError as error:
            raise SystemExit(str(error)) from None


def client_for(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=300)


def post(client: openai.OpenAI, audio: bytes, name: str) -> str:
    """One transcription through the official client, as an application sends it."""
    return client.audio.transcriptions.create(model="asr", file=(name, audio)).text


def load_test(server: Server, audio: bytes, name: str, clients: int, seconds: float) -> dict:
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop():
        client = client_for(server.url)
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                post(client, audio, name)
                ok, problem = True, ""
            except openai.OpenAIError as error:
                ok, problem = False, f"{type(error).__name__}: {error}"
            with lock:
                (latencies.append(time.monotonic() - started) if ok else errors.append(problem))

    rss_start = rss_mb(server.process.pid)
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "errors": errors,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
            "rss_start": rss_start, "rss_end": rss_mb(server.process.pid)}


def kill_test(spool_root: Path, extra: list[str]) -> None:
    """A request in flight when the server dies: the client must get an error at once (not hang), the restarted
    server must remove the upload the dead one left, and answer the same request."""
    speech, rate = soundfile.read(ROOT / "examples" / "speech.flac", dtype="float32")
    long = np.concatenate([np.concatenate([speech, np.zeros(rate // 2, np.float32)])] * 24)  # 2.2 minutes
    path = spool_root / "long.flac"
    soundfile.write(path, long, rate)
    audio = path.read_bytes()
    server = Server(spool_root, extra)
    outcome: dict = {}

    def request():
        started = time.monotonic()
        try:
            outcome["answer"] = f"a transcript of {len(post(client_for(server.url), audio, 'long.flac').split())} words"
        except openai.OpenAIError as error:
            outcome["answer"] = f"{type(error).__name__}: {error}"
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=request)
    thread.start()
    deadline = time.monotonic() + 30
    while not list(server.spool.glob("upload-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the server is working on it (the upload is spooled to disk)
    time.sleep(1.0)
    server.process.kill()
    server.process.wait()
    killed_at = time.monotonic()
    thread.join()
    left = sorted(p.name for p in server.spool.glob("upload-*"))
    print(f"kill -9 mid-request: the client got {outcome['answer']!r} "
          f"{time.monotonic() - killed_at:.2f} s after the kill; upload left by the dead server: {left or 'none'}")
    restarted = Server(spool_root, extra, port=server.port)
    remaining = sorted(p.name for p in restarted.spool.glob("upload-*"))
    words = len(post(client_for(restarted.url), audio, "long.flac").split())
    print(f"restarted on the same port: uploads left after start: {remaining or 'none'}; the same request again: "
          f"{words} words; uploads left after it: "
          f"{sorted(p.name for p in restarted.spool.glob('upload-*')) or 'none'}")
    restarted.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(ROOT / "examples" / "speech.flac"), help="audio each client sends")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--seconds", type=float, default=30, help="how long each load test runs (default: 30)")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 8],
                        help="asr serve --max-batch values to compare (default: 1 8)")
    parser.add_argument("--kill-test", action="store_true", help="also kill a server mid-request and restart it")
    parser.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[],
                        help="further `asr serve` options, e.g. --int8 (last on the line)")
    args = parser.parse_args()
    audio, name = Path(args.file).read_bytes(), Path(args.file).name
    seconds_of_audio = soundfile.info(args.file).duration
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.clients} clients for "
          f"{args.seconds:g} s, each sending {name} ({seconds_of_audio:.1f} s of audio) again and again")
    print("| --max-batch | requests | requests/s | audio s/s | p50 latency | p95 latency | errors | server memory "
          "start → end |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for max_batch in args.max_batch:
            server = Server(Path(folder), ["--max-batch", str(max_batch), *args.serve_args])
            post(client_for(server.url), audio, name)  # one request first: numba compiles, caches warm up
            result = load_test(server, audio, name, args.clients, args.seconds)
            server.stop()
            print(f"| {max_batch} | {result['requests']} | {result['rps']:.2f} | {result['rps'] * seconds_of_audio:.1f} "
                  f"| {result['p50']:.2f} s | {result['p95']:.2f} s | {len(result['errors'])} | "
                  f"{result['rss_start']:.0f} → {result['rss_end']:.0f} MB |", flush=True)
            for problem in result["errors"][:3]:
                print(f"  error: {problem}")
        if args.kill_test:
            kill_test(Path(folder), args.serve_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
