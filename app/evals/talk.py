"""Talking to one target of a route, streamed, through the proxy's own request planning."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from ..config import Config
from ..proxy.planning import plan_request
from ..proxy.routing import Route, Target
from ..proxy.runtime import client_for
from ..proxy.sse import SSEDecoder, SSEEvent
from ..proxy.transport import UpstreamResponse
from ..proxy.upstream import UpstreamClient


class Conversation:
    """A multi-turn chat with one target; :meth:`say` streams the reply's text."""

    def __init__(self, config: Config, route: Route, target: Target) -> None:
        self.config, self.route, self.target = config, route, target
        self.messages: list[dict[str, Any]] = []
        self._clients: dict[str, UpstreamClient] = {}

    def _client(self, name: str) -> UpstreamClient:
        if name not in self._clients:
            self._clients[name] = client_for(self.config, name)
        return self._clients[name]

    async def say(self, text: str) -> AsyncIterator[str]:
        """Stream the reply to ``text``; the turn is kept only with what arrived of the reply."""
        self.messages.append({"role": "user", "content": text})
        reply: list[str] = []
        try:
            response = await open_reply(self.route, self.target, list(self.messages), self._client)
            try:
                decoder = SSEDecoder()
                async for chunk in response.aiter_bytes():
                    for event in decoder.feed(chunk):
                        piece = _text(event)
                        if piece:
                            reply.append(piece)
                            yield piece
            finally:
                await response.aclose()
        finally:
            # Even a reply cut short (Ctrl-C) stays in the history, as the user saw it.
            self.messages.append({"role": "assistant", "content": "".join(reply)})

    async def close(self) -> None:
        """Close this turn's connections (the next turn opens new ones, in its own event loop)."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


async def open_reply(route: Route, target: Target, messages: list[dict[str, Any]],
                     client: Callable[[str], UpstreamClient]) -> UpstreamResponse:
    """A streamed reply of ``target`` to ``messages``, planned as the proxy plans that target's requests
    (persona, few-shot, defaults); ``client(upstream)`` gives the client to send it on. Open, unread."""
    body = {"model": route.name, "stream": True, "messages": messages}
    plan = plan_request(route, target, body, [], forward_user_id=False)
    return await client(plan.upstream).post("chat/completions", orjson.dumps(plan.body), stream=True)


def _text(event: object) -> str:
    if not isinstance(event, SSEEvent) or not event.data.startswith(b"{"):
        return ""
    chunk = orjson.loads(event.data)
    if "error" in chunk:
        raise RuntimeError(str((chunk["error"] or {}).get("message") or "the upstream reported an error"))
    choices = chunk.get("choices") or [{}]
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""
