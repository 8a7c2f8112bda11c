"""Memory held by many open, idle streams.

A tiny asyncio upstream answers every request with one SSE event and then
holds the stream open; clients open N streams through the proxy, wait for
each first event, and the proxy's RSS is read while they are all open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable

from .upstream import MODEL

FIRST_EVENT = ("data: " + json.dumps({
    "id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
}) + "\n\n").encode()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + f"{len(FIRST_EVENT):x}\r\n".encode() + FIRST_EVENT + b"\r\n")
        await writer.drain()
        await reader.read()  # until the proxy hangs up
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class HoldingUpstream:
    """Runs the holding server on its own loop in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> HoldingUpstream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(
            asyncio.start_server(_hold, "127.0.0.1", self.port, backlog=4096), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def open_idle_streams(port: int, key: str, count: int, measure: Callable[[], float]) -> tuple[int, float]:
    """Open ``count`` streams through the proxy; return how many got their first event, and RSS then."""
    body = json.dumps({"model": "hold", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    writers: list[asyncio.StreamWriter] = []
    sem = asyncio.Semaphore(100)

    async def one() -> bool:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write(request)
            await writer.drain()
            data = b""
            while b"data:" not in data:
                more = await asyncio.wait_for(reader.read(4096), 30)
                if not more:
                    return False
                data += more
            return True

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    ok = sum(r is True for r in results)
    await asyncio.sleep(1)
    rss = measure()
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return ok, rss
