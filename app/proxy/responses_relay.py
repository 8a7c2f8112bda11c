"""Relaying Responses API answers: from a Responses upstream, or translated from a chat one.

Both relays keep :class:`~app.proxy.relay.StreamRelay`'s plumbing (guard,
redaction, SSE decoding, timing) and change only what an event means: which
ones carry ``model``, which end the stream, where usage is, what an error
looks like. A stream that ends without a terminal event ends with an
``error`` event, never with a made-up ``response.completed``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import BadGateway, ProxyError
from .guard import Guard
from .relay import DONE, StreamRelay, not_json, read_json
from .responses import LIFECYCLE, TERMINAL, error_event, rewrite_event_model
from .sse import SSEComment, SSEEvent, encode_comment
from .translate import chat_to_response, sse
from .translate_stream import ChatToResponses
from .transport import UpstreamResponse
from .upstream import redact

CUT = "The upstream ended the stream before the response was complete."


class ResponsesRelay(StreamRelay):
    """A Responses upstream's event stream, with ``response.model`` set to the route name."""

    def __init__(self, upstream: UpstreamResponse, *, model: bytes, idle_timeout: float,
                 secret: bytes | None = None, strip_usage: bool = False) -> None:
        super().__init__(upstream, model=model, idle_timeout=idle_timeout, secret=secret)
        self.name = orjson.loads(model)
        self.terminal = False

    def _event(self, data: bytes) -> bytes | None:
        # Deltas, the bulk of a stream, name no model and are passed on as they came.
        if b'"response":' not in data and b'"error"' not in data:
            return data
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise not_json() from None
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "error" or (isinstance(event, dict) and "error" in event and kind is None):
            self.error = "upstream error event"
        if kind not in LIFECYCLE:
            return data
        if kind in TERMINAL:
            self.terminal = True
            usage = event["response"].get("usage") if isinstance(event.get("response"), dict) else None
            self.usage = usage if isinstance(usage, dict) else None
            if kind == "response.failed":
                self.error = "response.failed"
        return rewrite_event_model(data, self.name)

    def closing(self) -> bytes:
        if self.terminal or self.error or self.done:
            return b""
        self.error = CUT
        return error_event("upstream_stream_error", CUT, self.events)

    def error_frame(self, err: ProxyError) -> bytes:
        return error_event(err.code, err.message, self.events)


class TranslatingRelay(StreamRelay):
    """A chat upstream's chunk stream, told as Responses events."""

    def __init__(self, upstream: UpstreamResponse, *, model: bytes, idle_timeout: float, request: dict[str, Any],
                 secret: bytes | None = None) -> None:
        super().__init__(upstream, model=model, idle_timeout=idle_timeout, secret=secret)
        self.translator = ChatToResponses(request, orjson.loads(model))

    def _frame(self, item: SSEEvent | SSEComment) -> bytes:
        if isinstance(item, SSEComment):
            return encode_comment(item)
        self.events += 1
        item.data = redact(item.data, self.secret)
        if item.data.strip() == DONE:
            events = self.translator.finish()
            self.done = True
        else:
            events = self.translator.feed(self._chunk(item.data))
        self.usage = self.translator.chat_usage
        return b"".join(sse(event) for event in events)

    def _chunk(self, data: bytes) -> dict[str, Any]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise not_json() from None
        if not isinstance(chunk, dict):
            raise not_json()
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise BadGateway(str(error.get("message") or "The upstream reported an error mid-stream."),
                             code=str(error.get("code") or "upstream_stream_error"))
        return chunk

    def closing(self) -> bytes:
        if self.translator.finished or self.error:
            return b""
        # A chat stream that ends without [DONE] but with its finish reason is complete.
        if self.translator.finish_reason is not None:
            return b"".join(sse(event) for event in self.translator.finish())
        self.error = CUT
        return sse(self.translator.error("upstream_stream_error", CUT))

    def error_frame(self, err: ProxyError) -> bytes:
        return sse(self.translator.error(err.code, err.message))


async def read_translated(upstream: UpstreamResponse, guard: Guard, idle_timeout: float, model: bytes,
                          request: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
    """A chat upstream's whole answer as a response object, and its (chat) usage."""
    raw, usage = await read_json(upstream, guard, idle_timeout, model)
    response = chat_to_response(orjson.loads(raw), request, orjson.loads(model))
    return orjson.dumps(response), usage
