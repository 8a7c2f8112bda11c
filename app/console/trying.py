"""The try-it panel for an admin: a conversation with a route, or one of its targets, streamed.

Planned and sent as ``persona-proxy chat`` sends a turn (``evals.talk.open_reply``),
on the runtime's own upstream clients; the upstream's events reach the page as they come.
Nothing is recorded. A key holder's page talks to ``/v1/chat/completions``
with its own key instead, so its limits and usage apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from ..evals.talk import open_reply
from ..proxy.errors import InvalidRequest, NotFound
from ..proxy.lifecycle import Lifecycle
from ..proxy.routing import Route, RouteTable, Target
from ..proxy.upstream import UpstreamClient

MAX_MESSAGES = 100
MAX_CHARS = 32_000


def parse(body: bytes, routes: RouteTable, lifecycle: Lifecycle) -> tuple[Route, Target, list[dict[str, str]]]:
    """The route, target and messages a try-it request names (400/404 in OpenAI's shape otherwise)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body must be JSON: {\"route\": ..., \"messages\": [...]}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    name = data.get("route")
    route = next((r for r in routes if r.name == name), None)
    if route is None:
        raise NotFound(f"No route named {str(name)[:100]!r}.", param="route", code="model_not_found")
    wanted = data.get("target")
    if wanted:
        target = next((t for t in route.every_target if t.name == wanted), None)
        if target is None:
            raise NotFound(f"Route {route.name} has no target {str(wanted)[:100]!r}.", param="target")
    else:
        target = lifecycle.usable(route)[0]
    return route, target, _messages(data.get("messages"))


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value or len(value) > MAX_MESSAGES:
        raise InvalidRequest(f"messages must be a list of 1 to {MAX_MESSAGES} messages.", param="messages")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant") \
                or not isinstance(item.get("content"), str) or len(item["content"]) > MAX_CHARS:
            raise InvalidRequest("Each message is {\"role\": \"user\" or \"assistant\", \"content\": text} of at "
                                 f"most {MAX_CHARS} characters.", param="messages")
        out.append({"role": item["role"], "content": item["content"]})
    return out


async def open_stream(route: Route, target: Target, messages: list[dict[str, str]],
                      clients: Mapping[str, UpstreamClient]) -> AsyncIterator[bytes]:
    """Open the upstream stream (errors before its first byte are raised here) and relay its bytes."""
    response = await open_reply(route, target, list(messages), clients.__getitem__)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        finally:
            await response.aclose()

    return relay()
