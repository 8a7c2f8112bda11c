"""SIGTERM: stop accepting, let streams finish within the grace period, then end them cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..conftest import FT_MODEL
from ..fakes.servers import free_port
from ..fakes.upstream import Gate, Reply, chunk


def start_proxy(tmp_path: Path, upstream_url: str, port: int) -> subprocess.Popen[str]:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[server]
port = {port}
shutdown_grace = 1.0

[upstreams.fake]
base_url = "{upstream_url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
""", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--config", str(config)],
                            env={**os.environ, "PERSONA_PROXY_API_KEYS": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.1)


async def stream(url: str, started: asyncio.Event) -> str:
    body = {"model": "maid", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    text = ""
    async with httpx.AsyncClient(timeout=15) as http, http.stream("POST", url, json=body) as resp:
        async for line in resp.aiter_lines():
            text += line + "\n"
            if line.startswith("data: "):
                started.set()
    return text


def test_sigterm_drains_streams_then_ends_the_rest_with_an_error_event(tmp_path, fake):
    finishing, stuck = Gate(timeout=10), Gate(timeout=10)
    fake.enqueue(
        Reply(chunks=[chunk(FT_MODEL, "a", role="assistant"), finishing, chunk(FT_MODEL, "b"), b"data: [DONE]\n\n"]),
        Reply(chunks=[chunk(FT_MODEL, "a", role="assistant"), stuck, chunk(FT_MODEL, "never")]),
    )
    port = free_port()
    proc = start_proxy(tmp_path, fake.url, port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def scenario() -> tuple[str, str, bool, float]:
        a_started, b_started = asyncio.Event(), asyncio.Event()
        a = asyncio.ensure_future(stream(url, a_started))
        await a_started.wait()
        b = asyncio.ensure_future(stream(url, b_started))
        await b_started.wait()
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        await asyncio.sleep(0.3)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        finishing.open()
        return await a, await b, refused, sent

    try:
        finished, cut, refused, sent = asyncio.run(scenario())
        proc.wait(timeout=10)
        exited = time.monotonic()
    finally:
        stuck.open()
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
    assert refused, "new connections were still accepted after SIGTERM"
    assert finished.rstrip().endswith("data: [DONE]") and '"b"' in finished
    last = [line for line in cut.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["code"] == "shutting_down"
    assert "[DONE]" not in cut and "never" not in cut
    assert exited - sent < 1.0 + 3, output
    assert "Application shutdown complete" in output
