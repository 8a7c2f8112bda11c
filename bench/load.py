"""Load generation: wrk from a second process, and a raw-socket TTFB probe."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("post.lua")


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int


def chat_body(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": "你好，請幫我泡一杯茶。"}]}, ensure_ascii=False)


def responses_body(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "stream": stream, "input": "你好，請幫我泡一杯茶。"}, ensure_ascii=False)


def wrk(url: str, body: str, key: str | None, connections: int, seconds: float) -> LoadResult:
    # One wrk thread per core it may use: two threads sharing a core measure
    # their own scheduling delays as latency.
    threads = 1 if connections == 1 else max(1, min(2, len(os.sched_getaffinity(0))))
    env = {**os.environ, "BENCH_BODY": body, "BENCH_KEY": key or ""}
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(LUA), url],
        env=env, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    match = re.search(r"BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) status_errors=(\d+) "
                      r"p50=(\d+) p90=(\d+) p99=(\d+)", out)
    if not match:
        raise RuntimeError("wrk printed no result:\n" + out[-2000:])
    requests, duration, errors, status_errors, p50, p90, p99 = map(int, match.groups())
    return LoadResult(requests / (duration / 1e6), p50 / 1e3, p90 / 1e3, p99 / 1e3, errors + status_errors)


def ttfb(host: str, port: int, path: str, body: str, key: str | None, count: int) -> list[float]:
    """Time to the first response *body* byte, in ms, for ``count`` sequential requests on one connection.

    For a stream that is the first event, which is what a chat user waits for.
    """
    payload = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n" + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n")
    request = head.encode() + payload
    samples: list[float] = []
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            length, chunked = _read_head(reader)
            if chunked:
                size = int(reader.readline().split(b";")[0], 16)
                reader.read(1)
                samples.append((time.perf_counter() - started) * 1000)
                reader.read(size + 1)
                _drain_chunks(reader)
            elif length:
                reader.read(1)
                samples.append((time.perf_counter() - started) * 1000)
                reader.read(length - 1)
            else:
                raise RuntimeError("response without a body")
    return samples


def _read_head(reader) -> tuple[int | None, bool]:  # type: ignore[no-untyped-def]
    status_line = reader.readline()
    if not status_line.startswith(b"HTTP/1.1 2"):
        raise RuntimeError(f"unexpected response: {status_line!r}")
    length, chunked = None, False
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    return length, chunked


def _drain_chunks(reader) -> None:  # type: ignore[no-untyped-def]
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        reader.read(size + 2)
        if size == 0:
            return


def summarize(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
