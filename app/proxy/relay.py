"""Relaying an open upstream response to the client, streamed or whole.

The caller owns the upstream response and closes it; these functions only
read from it under the exchange's :class:`~app.proxy.guard.Guard` and write ASGI
messages. Once a stream has started, every failure travels inside it as an
OpenAI error event, and ``data: [DONE]`` is only ever the upstream's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from starlette.types import Send

from .burst import relay_burst
from .errors import BadGateway, GatewayTimeout, ProxyError, sse_error_event
from .guard import Guard
from .rewrite import ModelRewriter, rewrite_model
from .sse import SSEComment, SSEDecoder, SSEEvent, encode_comment, encode_event
from .transport import UpstreamResponse
from .upstream import redact

logger = logging.getLogger(__name__)

DONE = b"[DONE]"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
STREAM_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class StreamRelay:
    """Relays one upstream SSE stream event by event, rewriting ``model``."""

    def __init__(self, upstream: UpstreamResponse, *, model: bytes, idle_timeout: float,
                 secret: bytes | None = None, strip_usage: bool = False) -> None:
        self.upstream = upstream
        self.secret = secret
        # The proxy asked for the usage chunk itself: the client did not, so it never sees it.
        self.strip_usage = strip_usage
        self.usage: dict[str, Any] | None = None
        self.rewrite = ModelRewriter(model)
        self.idle_timeout = idle_timeout
        self.started = False
        self.events = 0
        self.done = False
        self.error: str | None = None
        self.failure: ProxyError | None = None
        self.first_byte_at: float | None = None
        # The bytes the client got, kept when live fidelity measures this reply (measured after it ends).
        self.captured: list[bytes] | None = None
        # Plain chat streams may take whole bursts at once; subclasses that read each event do not.
        self.bursts = type(self)._frame is StreamRelay._frame and type(self)._event is StreamRelay._event

    async def run(self, send: Send, guard: Guard, headers: Mapping[str, str]) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*raw_headers(headers), *STREAM_HEADERS]})
        self.started = True
        decoder = SSEDecoder()
        chunks = self.upstream.aiter_bytes().__aiter__()
        while not self.done:
            guard.expect("upstream_idle", self.idle_timeout)
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except httpx.HTTPError as exc:
                logger.warning("upstream stream broke: %s", type(exc).__name__)
                return await self.fail(send, BadGateway(
                    "The upstream connection broke mid-stream.", code="upstream_stream_error"))
            out = self._relay_chunk(decoder, chunk)
            if out:
                if self.first_byte_at is None:
                    self.first_byte_at = time.monotonic()
                if self.captured is not None:
                    self.captured.append(out)
                guard.expect("client_write", self.idle_timeout)
                await send({"type": "http.response.body", "body": out, "more_body": True})
            if self.failure is not None:
                # The events before the bad one were sent above; the error follows them.
                return await self.fail(send, self.failure)
        await send({"type": "http.response.body", "body": self.closing(), "more_body": False})

    def _relay_chunk(self, decoder: SSEDecoder, chunk: bytes) -> bytes:
        """The client's bytes for one network chunk: whole plain bursts in one pass, the rest event by event."""
        if not self.bursts:
            return self._frames(decoder.feed(chunk))
        head = b""
        if not decoder.idle or self.rewrite.prefix is None:
            # Finish the pending event (or learn the prefix from the first one) the careful way.
            end = chunk.find(b"\n\n")
            if end < 0:
                return self._frames(decoder.feed(chunk))
            head = self._frames(decoder.feed(chunk[: end + 2]))
            chunk = chunk[end + 2 :]
            if self.done or self.failure is not None or not chunk:
                return head
        last = chunk.rfind(b"\n\n")
        end = last + 2  # just after the last whole event
        prefix = self.rewrite.prefix
        burst = None
        if last >= 0 and prefix is not None and decoder.idle:
            burst = relay_burst(chunk[:end], *prefix, strip_null_usage=self.strip_usage, secret=self.secret)
        if burst is None:
            return head + self._frames(decoder.feed(chunk))
        self.events += burst.events
        self.done = burst.done
        rest = chunk[end:]
        # Nothing after [DONE] is relayed; a partial event waits in the decoder for the next chunk.
        tail = self._frames(decoder.feed(rest)) if rest and not self.done else b""
        return head + burst.data + tail

    def closing(self) -> bytes:
        """What follows the upstream's last event when its stream ends (chat: nothing)."""
        return b""

    def _frames(self, items: list[SSEEvent | SSEComment]) -> bytes:
        """The client's bytes for these events; a bad event stops here and is kept in ``failure``."""
        out: list[bytes] = []
        for item in items:
            if self.done:
                break
            try:
                frame = self._frame(item)
            except ProxyError as err:
                self.failure = err
                break
            if frame:
                out.append(frame)
        return b"".join(out)

    def _frame(self, item: SSEEvent | SSEComment) -> bytes:
        if isinstance(item, SSEComment):
            return encode_comment(item)
        self.events += 1
        # Per event, so a key split across network chunks is still caught.
        item.data = redact(item.data, self.secret)
        if item.data == DONE:
            self.done = True
        elif item.data.lstrip()[:1] == b"{":
            data = self._event(item.data)
            if data is None:
                return b""
            item.data = data
        else:
            raise not_json()
        return encode_event(item)

    def _event(self, data: bytes) -> bytes | None:
        """One JSON event as the client gets it (None: left out); notes errors and usage."""
        rewritten = self.rewrite(data)
        if rewritten is None:
            raise not_json()
        if rewritten.startswith(b'{"error"'):
            self.error = "upstream error event"
        elif b'"usage"' in rewritten:
            return self._take_usage(rewritten)
        return rewritten

    def _take_usage(self, data: bytes) -> bytes | None:
        """Note a chunk's usage; what the client gets of it (None: nothing).

        When the proxy asked for usage on the client's behalf, the client sees
        no ``usage`` anywhere: some servers (LiteLLM) put it on a chunk that
        also carries a delta, so that chunk is passed on without it.
        """
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        if not isinstance(event, dict) or "usage" not in event:
            return data
        if isinstance(event["usage"], dict):
            self.usage = event["usage"]
        if not self.strip_usage:
            return data
        if not event.get("choices"):
            return None
        del event["usage"]
        return orjson.dumps(event)

    async def fail(self, send: Send, err: ProxyError) -> None:
        """End a started stream with an in-band error; never a fabricated [DONE]."""
        self.error = err.message
        await send({"type": "http.response.body", "body": self.error_frame(err), "more_body": False})

    def error_frame(self, err: ProxyError) -> bytes:
        return sse_error_event(err)


def not_json() -> BadGateway:
    return BadGateway("The upstream sent an event that is not JSON; the stream was closed.",
                      code="upstream_invalid_response")


async def read_json(upstream: UpstreamResponse, guard: Guard, idle_timeout: float,
                    model: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """The upstream's whole JSON answer with ``model`` rewritten, and its usage; never echoes a bad body."""
    chunks: list[bytes] = []
    size = 0
    iterator = upstream.aiter_bytes().__aiter__()
    while True:
        guard.expect("upstream_idle", idle_timeout)
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            break
        except httpx.HTTPError:
            raise BadGateway("The upstream connection broke while sending its response.",
                             code="upstream_connection_error") from None
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise BadGateway("The upstream response is too large to relay.", code="upstream_response_too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    parsed = _json_object(raw)
    rewritten = rewrite_model(raw, model) if parsed is not None else None
    if parsed is None or rewritten is None:
        # Never echo what came back: it may be an HTML error page from a middlebox.
        logger.warning("upstream sent a non-JSON body (%d bytes)", len(raw))
        raise BadGateway("The upstream sent a response that is not JSON.", code="upstream_invalid_response")
    usage = parsed.get("usage")
    return rewritten, usage if isinstance(usage, dict) else None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def timeout_error(phase: str, seconds: float) -> GatewayTimeout:
    """What a guard's phase timeout means to the client."""
    messages = {
        "first_byte": f"The upstream sent no response within {seconds:g} s.",
        "upstream_idle": f"The upstream sent nothing for {seconds:g} s; the response was cut off.",
        "client_write": f"The client did not read for {seconds:g} s.",
    }
    return GatewayTimeout(messages.get(phase, f"Timed out after {seconds:g} s."))
