"""Relaying upstream responses to the client.

:class:`StreamRelay` owns an open upstream response for the whole life of
the client's response: it relays SSE events as they arrive, watches for the
client going away, and closes the upstream in ``finally`` (shielded from
cancellation) on every path. Starlette's ``StreamingResponse`` is not used:
under ASGI 2.4 it notices a disconnect only when a send fails, and uvicorn's
send to a gone client silently succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from .errors import BadGateway, GatewayTimeout, ProxyError, sse_error_event
from .rewrite import rewrite_model
from .sse import SSEComment, SSEDecoder, SSEEvent, encode_comment, encode_event

logger = logging.getLogger(__name__)
T = TypeVar("T")

DONE = b"[DONE]"
STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``, cancelling it if the client disconnects first."""
    task = asyncio.ensure_future(work())
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            # Let the work's own cleanup (closing the upstream) finish first.
            await asyncio.wait((task,))
    if task.cancelled():
        raise ClientGone()
    return task.result()


class StreamOutcome:
    """What happened to one relayed stream, for the access log."""

    __slots__ = ("done", "error", "events", "first_byte_at")

    def __init__(self) -> None:
        self.events = 0
        self.done = False
        self.error: str | None = None
        self.first_byte_at: float | None = None


class StreamRelay:
    """An ASGI response relaying an upstream SSE stream event by event."""

    def __init__(
        self,
        upstream: httpx.Response,
        *,
        model: bytes,
        idle_timeout: float,
        headers: Mapping[str, str],
        on_close: Callable[[StreamOutcome], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.model = model
        self.idle_timeout = idle_timeout
        self.headers = {**headers, **STREAM_HEADERS}
        self.on_close = on_close
        self.outcome = StreamOutcome()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers()})
            async with anyio.create_task_group() as tg:

                async def pump() -> None:
                    await self._pump(send)
                    tg.cancel_scope.cancel()

                async def watch() -> None:
                    await wait_for_disconnect(receive)
                    self.outcome.error = self.outcome.error or "client disconnected"
                    tg.cancel_scope.cancel()

                tg.start_soon(pump)
                tg.start_soon(watch)
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            if self.on_close is not None:
                self.on_close(self.outcome)

    def _raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]

    async def _pump(self, send: Send) -> None:
        decoder = SSEDecoder()
        chunks = self.upstream.aiter_bytes().__aiter__()
        while not self.outcome.done:
            try:
                with anyio.fail_after(self.idle_timeout):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError:
                return await self._fail(send, GatewayTimeout(
                    f"The upstream sent nothing for {self.idle_timeout:g} s; the stream was closed."
                ))
            except httpx.HTTPError as exc:
                logger.warning("upstream stream broke: %s", type(exc).__name__)
                return await self._fail(send, BadGateway(
                    "The upstream connection broke mid-stream.", code="upstream_stream_error"
                ))
            try:
                out = self._frames(decoder.feed(chunk))
            except ProxyError as err:
                return await self._fail(send, err)
            if out:
                if self.outcome.first_byte_at is None:
                    self.outcome.first_byte_at = time.monotonic()
                await send({"type": "http.response.body", "body": out, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _frames(self, items: list[SSEEvent | SSEComment]) -> bytes:
        out: list[bytes] = []
        for item in items:
            if self.outcome.done:
                break
            if isinstance(item, SSEComment):
                out.append(encode_comment(item))
                continue
            self.outcome.events += 1
            if item.data == DONE:
                self.outcome.done = True
            elif item.data[:1] == b"{" or item.data.lstrip()[:1] == b"{":
                rewritten = rewrite_model(item.data, self.model)
                if rewritten is None:
                    raise _garbage()
                item.data = rewritten
                if item.data.startswith(b'{"error"'):
                    self.outcome.error = "upstream error event"
            else:
                raise _garbage()
            out.append(encode_event(item))
        return b"".join(out)

    async def _fail(self, send: Send, err: ProxyError) -> None:
        """End a started stream with an in-band error; never a fabricated [DONE]."""
        self.outcome.error = err.message
        await send({"type": "http.response.body", "body": sse_error_event(err), "more_body": False})


def _garbage() -> BadGateway:
    return BadGateway("The upstream sent an event that is not JSON; the stream was closed.",
                      code="upstream_invalid_response")

