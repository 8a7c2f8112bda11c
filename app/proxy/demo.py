"""The built-in offline upstream: a small maid who needs no key and no network.

It is an httpx transport, so demo routes go through exactly the same
persona, relay and error code as real upstreams. Replies are canned and
chosen from the last user message; streams trickle out a few characters at
a time so a newcomer can watch streaming work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

CHUNK_CHARS = 3
CHUNK_DELAY = 0.02

_REPLIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("你好", "哈囉", "早安", "晚安", "hello", "hi"), "主人，歡迎回來！我是女僕莉莉，今天有什麼可以為您效勞的嗎？❤️"),
    (("茶", "咖啡", "tea", "coffee"), "好的，主人！莉莉馬上為您泡一杯香濃的紅茶，請稍等一下喔～❤️"),
    (("名字", "你是誰", "name", "who are you"), "我是您忠誠的女僕莉莉，隨時為主人服務！❤️"),
    (("謝謝", "thank"), "不客氣，主人！能為您服務是莉莉最大的幸福。❤️"),
)
_FALLBACK = (
    "是的，主人！莉莉聽到您說「{said}」了。現在是離線示範模式，莉莉只會說幾句話；"
    "設定 OPENAI_API_KEY 之後，改選 maid 模型，就能和真正的女僕模型聊天喔！❤️"
)


def demo_reply(messages: list[dict[str, Any]]) -> str:
    """The maid's canned answer to the last user message."""
    said = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    lowered = said.lower()
    for keywords, reply in _REPLIES:
        if any(k in lowered for k in keywords):
            return reply
    short = said.strip().replace("\n", " ")
    return _FALLBACK.format(said=short[:30] + ("…" if len(short) > 30 else ""))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class DemoTransport(httpx.AsyncBaseTransport):
    """Answers ``/models`` and ``/chat/completions`` like an OpenAI server would."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/models"):
            return _json(200, {"object": "list", "data": [_model("maid-demo")]})
        if request.method == "POST" and path.endswith("/chat/completions"):
            body = orjson.loads(await request.aread())
            refused = _cannot(body)
            if refused is not None:
                return refused
            if body.get("stream"):
                return httpx.Response(
                    200, headers={"content-type": "text/event-stream"}, stream=_DemoStream(body)
                )
            return _json(200, _completion(body))
        return _json(404, {"error": {"message": "Unknown demo path.", "type": "invalid_request_error",
                                     "param": None, "code": "not_found"}})


def _cannot(body: dict[str, Any]) -> httpx.Response | None:
    """A 400 for what the canned maid cannot do, instead of an answer that looks right and is not."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return _refusal("n", f"The offline demo maid writes one choice per request (n = {n} was asked); "
                             "a real upstream serves n.")
    choice = body.get("tool_choice")
    if body.get("tools") and (choice == "required" or isinstance(choice, dict)):
        return _refusal("tool_choice", "The offline demo maid cannot call tools, so it cannot honour "
                                       "tool_choice; use a real upstream for tools.")
    return None


def _refusal(param: str, message: str) -> httpx.Response:
    return _json(400, {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                 "code": "unsupported_value"}})


def _json(status: int, obj: object) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/json"}, content=orjson.dumps(obj))


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1732492800, "owned_by": "persona-proxy-demo"}


def _usage(body: dict[str, Any], reply: str) -> dict[str, int]:
    # A rough count: the demo has no tokenizer, and needs none.
    prompt = sum(len(_text(m.get("content"))) for m in body.get("messages", []))
    return {"prompt_tokens": prompt, "completion_tokens": len(reply), "total_tokens": prompt + len(reply)}


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    reply = demo_reply(body.get("messages", []))
    return {
        "id": f"chatcmpl-demo-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "maid-demo"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(body, reply),
        "system_fingerprint": None,
    }


class _DemoStream(httpx.AsyncByteStream):
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reply = demo_reply(self.body.get("messages", []))
        base = {"id": f"chatcmpl-demo-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.body.get("model", "maid-demo"),
                "system_fingerprint": None}
        yield _event(base, {"role": "assistant", "content": ""}, None)
        for i in range(0, len(reply), CHUNK_CHARS):
            await asyncio.sleep(CHUNK_DELAY)
            yield _event(base, {"content": reply[i : i + CHUNK_CHARS]}, None)
        yield _event(base, {}, "stop")
        if (self.body.get("stream_options") or {}).get("include_usage"):
            yield b"data: " + orjson.dumps({**base, "choices": [], "usage": _usage(self.body, reply)}) + b"\n\n"
        yield b"data: [DONE]\n\n"


def _event(base: dict[str, Any], delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"
