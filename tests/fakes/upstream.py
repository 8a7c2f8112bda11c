"""A fake OpenAI server: a real HTTP server on loopback, scripted per test.

Tests ``enqueue`` replies; unscripted chat requests get a default answer.
Every request is recorded (method, path, headers, body) so tests can check
exactly what the proxy sent upstream. Stream replies are lists of byte
chunks, :class:`Gate` objects that hold the stream until the test opens
them, and :class:`Pause` objects.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .servers import ServerThread


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Gate:
    """Holds a stream until the test calls :meth:`open`."""

    event: threading.Event = field(default_factory=threading.Event)
    timeout: float = 10.0

    def open(self) -> None:
        self.event.set()


@dataclass
class Pause:
    seconds: float


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None
    chunks: list[bytes | Gate | Pause] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    # Hold the response headers until this gate opens (or the client hangs up).
    hold: Gate | None = None


def completion(model: str = "upstream-model", content: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        **extra,
    }


def chunk(model: str = "upstream-model", content: str | None = None, finish: str | None = None,
          role: str | None = None) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    obj = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk", "created": 1700000000,
           "model": model, "system_fingerprint": "fp_fake",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def usage_chunk(model: str = "upstream-model") -> bytes:
    obj = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk", "created": 1700000000,
           "model": model, "choices": [],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def default_stream(model: str, words: tuple[str, ...] = ("Hel", "lo", "!")) -> list[bytes | Gate | Pause]:
    return [chunk(model, "", role="assistant"), *(chunk(model, w) for w in words),
            chunk(model, finish="stop"), b"data: [DONE]\n\n"]


def response_obj(model: str = "upstream-model", text: str = "Hello!", **extra: Any) -> dict[str, Any]:
    """A Responses API answer, shaped as OpenAI's (``model`` after nested fields, as OpenAI writes it)."""
    return {
        "id": "resp_fake1", "object": "response", "created_at": 1700000000, "status": "completed",
        "error": None, "incomplete_details": None, "instructions": None, "max_output_tokens": None,
        "model": model,
        "output": [{"type": "message", "id": "msg_fake1", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12},
        **extra,
    }


def response_event(kind: str, sequence: int, **fields: Any) -> bytes:
    event = {"type": kind, "sequence_number": sequence, **fields}
    return f"event: {kind}\ndata: ".encode() + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


def response_events(model: str = "upstream-model", words: tuple[str, ...] = ("Hel", "lo", "!"),
                    terminal: bool = True) -> list[bytes | Gate | Pause]:
    """A Responses event stream for one text answer (without its terminal event when ``terminal`` is off)."""
    text = "".join(words)
    running = {**response_obj(model, text), "status": "in_progress", "output": [], "usage": None}
    item = {"type": "message", "id": "msg_fake1", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    done_part = {**part, "text": text}
    events: list[bytes | Gate | Pause] = [
        response_event("response.created", 0, response=running),
        response_event("response.in_progress", 1, response=running),
        response_event("response.output_item.added", 2, output_index=0, item=item),
        response_event("response.content_part.added", 3, item_id="msg_fake1", output_index=0, content_index=0,
                       part=part)]
    seq = 4
    for word in words:
        events.append(response_event("response.output_text.delta", seq, item_id="msg_fake1", output_index=0,
                                     content_index=0, delta=word, logprobs=[]))
        seq += 1
    events += [
        response_event("response.output_text.done", seq, item_id="msg_fake1", output_index=0, content_index=0,
                       text=text, logprobs=[]),
        response_event("response.content_part.done", seq + 1, item_id="msg_fake1", output_index=0,
                       content_index=0, part=done_part),
        response_event("response.output_item.done", seq + 2, output_index=0,
                       item={**item, "status": "completed", "content": [done_part]})]
    if terminal:
        events.append(response_event("response.completed", seq + 3, response=response_obj(model, text)))
    return events


def error_reply(status: int, message: str, type_: str = "invalid_request_error",
                code: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply(status=status, body=json.dumps(body).encode(), headers=headers or {})


class _PlayedResponse(StreamingResponse):
    """A stream whose generator is always closed when the response ends.

    Starlette leaves a generator that was suspended at ``yield`` when the
    client hung up to the garbage collector, so its ``finally`` (which
    records the hang-up) would run at some unknown later time.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


class FakeOpenAI:
    """The scripted fake; use as a context manager or through the fixture."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # monotonic times at which a client (the proxy) hung up mid-stream
        self.disconnects: list[float] = []
        self.models: list[dict[str, Any]] = [{"id": "upstream-model", "object": "model", "created": 1,
                                              "owned_by": "fake"}]
        self._queue: deque[Reply] = deque()
        self._by_model: dict[str, deque[Reply]] = {}
        # What unscripted chat and responses requests are answered with, whole and streamed.
        self.content = "Hello!"
        self.words: tuple[str, ...] = ("Hel", "lo", "!")
        self._server = ServerThread(self._app())

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def responses_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/responses")]

    def speak(self, text: str) -> FakeOpenAI:
        """Answer every unscripted request with ``text`` (streams in three pieces)."""
        third = max(1, len(text) // 3)
        self.content, self.words = text, (text[:third], text[third:2 * third], text[2 * third:])
        return self

    def enqueue(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def enqueue_for(self, model: str, *replies: Reply) -> None:
        """Replies for requests naming ``model`` only (before the shared queue)."""
        self._by_model.setdefault(model, deque()).extend(replies)

    def start(self) -> FakeOpenAI:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _app(self) -> Any:
        from starlette.applications import Starlette

        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))
        # Scripts are for chat and responses requests; model lists always get the default answer.
        scripted = request.url.path.endswith(("/chat/completions", "/responses"))
        own = self._by_model.get(_model_of(body)) if scripted and self._by_model else None
        if own:
            reply = own.popleft()
        else:
            reply = self._queue.popleft() if scripted and self._queue else self._default(request, body)
        if reply.hold is not None and not await self._wait(request, reply.hold):
            return Response(status_code=499)
        headers = dict(reply.headers)
        if reply.chunks is not None:
            return _PlayedResponse(self._play(request, reply.chunks), reply.status, headers,
                                   media_type=reply.content_type or "text/event-stream")
        return Response(reply.body or b"", reply.status, headers,
                        media_type=reply.content_type or "application/json")

    async def _play(self, request: Request, chunks: list[bytes | Gate | Pause]) -> Any:
        finished = False
        try:
            for item in chunks:
                if isinstance(item, Gate):
                    if not await self._wait(request, item):
                        break  # the gate never opened: end the stream short
                elif isinstance(item, Pause):
                    await asyncio.sleep(item.seconds)
                else:
                    yield item
            finished = True
        finally:
            # Starlette cancels this generator when the client (the proxy) hangs up.
            if not finished:
                self.disconnects.append(time.monotonic())

    async def _wait(self, request: Request, gate: Gate) -> bool:
        deadline = time.monotonic() + gate.timeout
        while not gate.event.is_set():
            if await request.is_disconnected():
                self.disconnects.append(time.monotonic())
                return False
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _default(self, request: Request, body: bytes) -> Reply:
        if request.url.path.endswith("/models"):
            return Reply(body=json.dumps({"object": "list", "data": self.models}).encode())
        payload = json.loads(body or b"{}")
        model = payload.get("model", "upstream-model")
        if request.url.path.endswith("/responses"):
            if payload.get("stream"):
                return Reply(chunks=response_events(model, self.words))
            return Reply(body=json.dumps(response_obj(model, self.content)).encode())
        if payload.get("stream"):
            chunks = default_stream(model, self.words)
            if (payload.get("stream_options") or {}).get("include_usage"):
                chunks.insert(-1, usage_chunk(model))  # as OpenAI: after the last choice, before [DONE]
            return Reply(chunks=chunks)
        return Reply(body=json.dumps(completion(model, self.content)).encode())


def _model_of(body: bytes) -> str | None:
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return None
    return model if isinstance(model, str) else None
