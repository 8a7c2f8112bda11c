"""The chat serving layer: from a checked client body to a response.

Handlers stay thin; this is where a route is resolved, the persona applied,
the upstream called and its answer turned into what the client receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import orjson
from starlette.responses import Response

from .errors import BadGateway, GatewayTimeout
from .persona import upstream_body
from .relay import StreamOutcome, StreamRelay
from .rewrite import rewrite_model
from .routing import Route, RouteTable
from .upstream import UpstreamClient, passed_headers

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class ChatService:
    """Serves ``/v1/chat/completions`` for every route in a table."""

    def __init__(self, routes: RouteTable, clients: Mapping[str, UpstreamClient]) -> None:
        self.routes = routes
        self.clients = clients

    async def complete(self, body: dict[str, Any]) -> Response | StreamRelay:
        """Answer one checked chat request; raises :class:`ProxyError` before any byte is sent."""
        route = self.routes.resolve(body["model"])
        client = self.clients[route.upstream]
        s = route.settings
        payload = upstream_body(
            body, model=s.model, prompt=s.system_prompt, mode=s.system_prompt_mode, params=s.params
        )
        started = time.monotonic()
        response = await client.post("chat/completions", orjson.dumps(payload), stream=bool(payload.get("stream")))
        headers = passed_headers(response.headers)
        if _is_event_stream(response):
            return StreamRelay(
                response,
                model=route.name_json,
                idle_timeout=client.settings.idle_timeout,
                headers=headers,
                on_close=lambda outcome: _log_stream(route, started, outcome),
            )
        return await _relay_json(response, route, client.settings.idle_timeout, headers, started)


def _is_event_stream(response: httpx.Response) -> bool:
    # Like Open WebUI, trust the content type, not what was asked for.
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


async def _relay_json(
    response: httpx.Response, route: Route, idle_timeout: float, headers: dict[str, str], started: float
) -> Response:
    try:
        raw = await _read_body(response, idle_timeout)
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        # Never echo what came back: it may be an HTML error page from a middlebox.
        logger.warning("route %s: upstream sent a non-JSON body (%d bytes)", route.name, len(raw))
        raise BadGateway("The upstream sent a response that is not JSON.", code="upstream_invalid_response")
    body = rewrite_model(raw, route.name_json) if "model" in parsed else raw
    logger.info(
        "chat route=%s upstream=%s stream=no status=%d duration_ms=%.1f",
        route.name, route.upstream, response.status_code, (time.monotonic() - started) * 1000,
    )
    return Response(body, response.status_code, {**headers, "content-type": "application/json"})


async def _read_body(response: httpx.Response, idle_timeout: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    iterator = response.aiter_bytes().__aiter__()
    while True:
        try:
            with anyio.fail_after(idle_timeout):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return b"".join(chunks)
        except TimeoutError:
            raise GatewayTimeout(f"The upstream stopped sending its response for {idle_timeout:g} s.") from None
        except httpx.HTTPError:
            raise BadGateway("The upstream connection broke while sending its response.",
                             code="upstream_connection_error") from None
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise BadGateway("The upstream response is too large to relay.", code="upstream_response_too_large")
        chunks.append(chunk)


def _log_stream(route: Route, started: float, outcome: StreamOutcome) -> None:
    ttfb = (outcome.first_byte_at - started) * 1000 if outcome.first_byte_at else -1.0
    logger.info(
        "chat route=%s upstream=%s stream=yes events=%d done=%s ttfb_ms=%.1f duration_ms=%.1f%s",
        route.name, route.upstream, outcome.events, outcome.done, ttfb,
        (time.monotonic() - started) * 1000, f" error={outcome.error!r}" if outcome.error else "",
    )
