"""Shadow targets: a sample of requests also answered by a successor the client never hears from.

A shadow request is planned exactly as that target would serve the client
(persona, few-shot, params; the client's stream flag), sent on a connection
pool of its own no larger than the shadow's ``max_in_flight``, and read to
the end in a task of its own. Nothing of it reaches the client: not its
status, its body, its time or its failure. A request that finds the shadow
full is not shadowed (and counted). Each shadow call leaves a usage row
with ``kind = "shadow"``, and its reply is measured against the reply the
client got.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import orjson

from ...ops.metrics import Metrics
from ...ops.usage import Completed, reported_tokens
from ..apis import Api
from ..errors import BadGateway, ProxyError
from ..lifecycle import utc_today
from ..planning import Headers, ask_for_usage, plan_request
from ..routing import Route, Target
from ..upstream import UpstreamClient
from .live import LiveFidelity, Reply
from .replies import reply_of

logger = logging.getLogger(__name__)

MAX_SHADOW_BYTES = 16 * 1024 * 1024


ShadowClients = dict[tuple[str, int], UpstreamClient]


def shadow_clients(routes: Iterable[Route], client: Callable[[str, int], UpstreamClient]) -> ShadowClients:
    """One small pool per shadow target, so shadows never take a connection a client could need.

    ``client(upstream, max_connections)`` makes a client as the runtime makes its own.
    """
    return {(route.name, target.index): client(target.upstream, target.max_in_flight)
            for route in routes for target in route.shadows}


class Shadows:
    """Starts, bounds and, at shutdown, cancels the shadow calls of every route."""

    def __init__(self, metrics: Metrics, record: Callable[[Completed], None] | None, live: LiveFidelity | None,
                 *, forward_user_id: bool = False, sample: Callable[[], float] = random.random) -> None:
        self.metrics = metrics
        self.record = record
        self.live = live
        self.forward_user_id = forward_user_id
        self.clients: ShadowClients = {}
        self._sample = sample
        self._in_flight: Counter[tuple[str, int]] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, turn: Any, route: Route, body: dict[str, Any], headers: Headers, key_id: str | None,
                 api: Api) -> bool:
        """Start the sampled shadows of this request; True when at least one started."""
        started = False
        today = utc_today()
        for target in route.shadows:
            if self._sample() >= target.share or (target.shutdown_date is not None and target.shutdown_date <= today):
                continue
            slot = (route.name, target.index)
            client = self.clients.get(slot)
            if client is None:
                continue  # a reload is swapping the pools in
            if self._in_flight[slot] >= target.max_in_flight:
                self.metrics.shadow_skipped.labels(route.name, target.name).inc()
                continue
            self._in_flight[slot] += 1
            headers = list(headers)  # the ASGI scope's list outlives nothing of ours
            task = asyncio.get_running_loop().create_task(
                self._run(turn, route, target, client, body, headers, key_id, api))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            started = True
        return started

    async def _run(self, turn: Any, route: Route, target: Target, client: UpstreamClient, body: dict[str, Any],
                   headers: Headers, key_id: str | None, api: Api) -> None:
        call = _Call(route, target, body, api, key_id, turn)
        try:
            plan = plan_request(route, target, body, headers, forward_user_id=self.forward_user_id, api=api)
            call.user_id, call.model = plan.caller.user_id, str(plan.body.get("model") or target.model)
            await call.fetch(client, plan.body)
            if self.live is not None and turn.route.profile is not None and call.status < 400:
                await turn.done.wait()  # the served reply, to compare with (made before any shadow starts)
                # The text was read with the usage above: the measurer does not parse the bytes again.
                self.live.add(Reply(time.time(), route.name, target.name, "shadow", call.format, call.stream,
                                    turn.conversation, turn.request_id, b"", turn.route.profile, served=turn.served,
                                    _text=call.text, _read=True))
        except asyncio.CancelledError:
            call.error_code = "shutting_down"
            raise
        except ProxyError as err:
            call.status, call.error_code = err.status, err.code
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            call.status, call.error_code = call.status or 502, "shadow_" + type(exc).__name__
        finally:
            self._in_flight[(route.name, target.index)] -= 1
            if self.record is not None:
                self.record(call.completed(client.name))

    async def close(self) -> None:
        """Cancel every shadow call: the grace period is for clients, and shadows have none."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Call:
    """One shadow call's state, for its usage row."""

    def __init__(self, route: Route, target: Target, body: dict[str, Any], api: Api, key_id: str | None,
                 turn: Any) -> None:
        self.route, self.target, self.api, self.key_id, self.turn = route, target, api, key_id, turn
        self.stream = bool(body.get("stream"))
        self.model = target.model
        self.user_id: str | None = None
        self.format = api.name
        self.status = 0
        self.error_code: str | None = None
        self.usage: dict[str, Any] | None = None
        self.text: str | None = None
        self.started = time.monotonic()
        self.first_byte: float | None = None

    async def fetch(self, client: UpstreamClient, planned: dict[str, Any]) -> None:
        """Read the whole answer under the upstream's own timeouts: its text and usage."""
        via = self.api.effective(client.settings)
        sent = via.convert(planned)
        self.format = "chat" if via.path == "chat/completions" else "responses"
        if self.stream and self.format == "chat" and client.settings.stream_usage:
            ask_for_usage(sent)
        settings = client.settings
        async with asyncio.timeout(settings.first_byte_timeout):
            response = await client.post(via.path, orjson.dumps(sent), stream=self.stream,
                                       request_id=self.turn.request_id)
        chunks: list[bytes] = []
        size = 0
        try:
            self.status = response.status_code
            iterator = response.aiter_bytes().__aiter__()
            while True:
                async with asyncio.timeout(settings.idle_timeout):
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                if self.first_byte is None:
                    self.first_byte = time.monotonic()
                size += len(chunk)
                if size > MAX_SHADOW_BYTES:
                    raise BadGateway("The shadow's answer is too large.", code="shadow_response_too_large")
                chunks.append(chunk)
        finally:
            await response.aclose()
        raw = b"".join(chunks)
        self.text, self.usage = reply_of(raw, self.format, self.stream)
        if self.text is None and not self.stream and raw[:1] != b"{":
            self.status, self.error_code = 502, "upstream_invalid_response"

    def completed(self, upstream: str) -> Completed:
        now = time.monotonic()
        return Completed(
            time.time(), self.route.name, upstream, self.model, "shadow", self.stream, self.status, self.error_code,
            self.key_id, self.user_id, *reported_tokens(self.usage),
            (self.first_byte - self.started) * 1000 if self.stream and self.first_byte else None,
            (now - self.started) * 1000, False, self.api.name, "shadow", self.turn.conversation)

