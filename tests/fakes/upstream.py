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
        self._server = ServerThread(self._app())

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def enqueue(self, *replies: Reply) -> None:
        self._queue.extend(replies)

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
        # Scripts are for chat requests; model lists always get the default answer.
        scripted = self._queue and request.url.path.endswith("/chat/completions")
        reply = self._queue.popleft() if scripted else self._default(request, body)
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
        if payload.get("stream"):
            return Reply(chunks=default_stream(model))
        return Reply(body=json.dumps(completion(model)).encode())


