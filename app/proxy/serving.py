"""The chat serving layer: from a checked client body to a relayed answer.

This is where a route is resolved, the persona applied, the upstream called
under a :class:`~app.proxy.guard.Guard`, and its answer relayed. Everything that
can fail before the first byte raises :class:`ProxyError`; after it, errors
travel inside the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Send

from ..ops.logs import REQUEST_ID
from ..ops.metrics import Metrics
from ..ops.usage import Completed, reported_tokens
from .access import write_access_line
from .admission import Admission, body_user
from .apis import CHAT, Api
from .errors import ProxyError, ServiceUnavailable
from .guard import ClientGone, Guard, PhaseTimeout
from .lifecycle import Lifecycle
from .planning import Headers, Plan, ask_for_usage, plan_request, should_fail_over, signals_retirement
from .preview import body_preview
from .relay import StreamRelay, raw_headers, timeout_error
from .routing import Route, RouteTable, Target
from .succession import Succession, Turn
from .transport import UpstreamResponse
from .upstream import UpstreamClient, passed_headers

logger = logging.getLogger(__name__)
TARGET_HEADER = "x-persona-target"


class ChatService:
    """Serves every route of a table, for each API (chat completions, responses)."""

    def __init__(self, routes: RouteTable, clients: Mapping[str, UpstreamClient],
                 *, forward_user_id: bool = False, lifecycle: Lifecycle | None = None,
                 record: Callable[[Completed], None] | None = None, metrics: Metrics | None = None,
                 succession: Succession | None = None, admission: Admission | None = None) -> None:
        self.routes = routes
        self.admission = admission
        self.succession = succession
        self.clients = clients
        self.forward_user_id = forward_user_id
        self.lifecycle = lifecycle or Lifecycle()
        self.failovers: Counter[str] = Counter()
        self.record = record
        self.metrics = metrics

    async def serve(self, body: dict[str, Any], headers: Headers, receive: Receive, send: Send,
                    key_id: str | None = None, api: Api = CHAT, client: str | None = None) -> None:
        """Answer one checked request; raises :class:`ProxyError` before any byte is sent."""
        route = self.routes.resolve(body["model"])
        ticket = await self.admission.admit(client, route, body, headers, api) if self.admission else None
        exchange = _Exchange(route, key_id, self.metrics, wants_stream=bool(body.get("stream")), api=api)
        if ticket is not None:
            exchange.limit_headers = ticket.headers
        exchange.client_name = client
        exchange.body_user = body_user(body)
        # One call out for the plan (canary, shadows, sampling) and one after the reply, on routes that have them.
        turn = exchange.turn = self.succession.start(route, body, headers, key_id, api) \
            if route.succession and self.succession is not None else None
        try:
            async with Guard(receive) as guard:
                upstream = await self._open(route, body, headers, guard, exchange, turn.canary if turn else None)
                try:
                    await exchange.relay(upstream, send, guard)
                finally:
                    await upstream.aclose()
        except ClientGone:
            exchange.error, exchange.error_code = "client disconnected", "client_disconnected"
        except ProxyError as err:
            exchange.status, exchange.error, exchange.error_code = err.status, err.message, err.code
            err.logged = exchange.plan is not None  # the access line below tells of it
            if ticket is not None:
                err.headers.update(ticket.headers)
            raise
        except asyncio.CancelledError:
            # The server is shutting down and its grace period is over.
            await exchange.interrupted(send)
            raise
        except PhaseTimeout as timeout:
            late = timeout_error(timeout.phase, timeout.seconds)
            exchange.error_code = late.code
            if exchange.stream is None or not exchange.stream.started:
                exchange.status, exchange.error = late.status, late.message
                raise late from None
            await exchange.stream.fail(send, late)
        finally:
            if ticket is not None:
                ticket.settle(exchange.model, *exchange.used(ticket.prompt_estimate))
            exchange.log()
            if self.record is not None and exchange.plan is not None:
                self.record(exchange.completed())
            if turn is not None:
                turn.finish(exchange.plan.target if exchange.plan else None, exchange.captured())

    async def _open(self, route: Route, body: dict[str, Any], headers: Headers, guard: Guard,
                    exchange: _Exchange, canary: Target | None = None) -> UpstreamResponse:
        """The first target's open response that answers; later targets only after a target failure.

        A conversation's canary comes first; if it fails, the route's own order follows.
        """
        targets = self.lifecycle.usable(route)
        if canary is not None and self.lifecycle.available(canary):
            targets = [canary, *targets]
        for position, target in enumerate(targets):
            try:
                plan = plan_request(route, target, body, headers, forward_user_id=self.forward_user_id,
                                    api=exchange.api)
                client = self.clients[plan.upstream]
                api = exchange.api.effective(client.settings)
                exchange.plan, exchange.client, exchange.failover, exchange.via = plan, client, position > 0, api
                sent = api.convert(plan.body)
                if body.get("stream") and client.settings.stream_usage and api.path == "chat/completions":
                    exchange.strip_usage = ask_for_usage(sent)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("upstream request target=%s body=%s", target.label, body_preview(sent))
                guard.expect("first_byte", client.settings.first_byte_timeout)
                return await client.post(api.path, orjson.dumps(sent), stream=bool(body.get("stream")),
                                         request_id=REQUEST_ID.get())
            except ProxyError as err:
                last = position == len(targets) - 1
                if last or not should_fail_over(err, on_rate_limit=route.settings.failover_on_rate_limit):
                    raise
                if signals_retirement(err):
                    self.lifecycle.mark_retired(target)
                self.failovers[route.name] += 1
                logger.warning("failover route=%s from=%s to=%s reason=%r", route.name, target.label,
                               targets[position + 1].label, err.message[:200])
        raise AssertionError("a route has at least one target")


class _Exchange:
    """One request's relay state, kept for the access log, metrics and usage records."""

    def __init__(self, route: Route, key_id: str | None, metrics: Metrics | None, *, wants_stream: bool,
                 api: Api) -> None:
        self.route = route
        self.wants_stream = wants_stream
        self.api = self.via = api
        self.key_id = key_id
        self.metrics = metrics
        self.client: UpstreamClient | None = None
        self.plan: Plan | None = None
        self.failover = False
        self.strip_usage = False
        self.usage: dict[str, Any] | None = None
        self.error_code: str | None = None
        self.started = time.monotonic()
        self.status = 0
        self.stream: StreamRelay | None = None
        self.responded = False
        self.error: str | None = None
        self.turn: Turn | None = None
        self.body: bytes | None = None  # a whole answer as the client got it, when its turn measures it
        self.size = 0  # a whole answer's length
        self.client_name: str | None = None
        self.limit_headers: dict[str, str] | None = None  # a limited client's x-ratelimit-* headers
        self.body_user: str | None = None  # the end user when Open WebUI's header does not name one

    async def relay(self, upstream: UpstreamResponse, send: Send, guard: Guard) -> None:
        assert self.client is not None and self.plan is not None
        self.status = upstream.status_code
        headers = passed_headers(upstream.headers)
        headers[TARGET_HEADER] = self.plan.target.label
        if self.limit_headers is not None:
            # A limited client is told of its own limits, not of the operator's upstream account.
            for name in [n for n in headers if n.startswith("x-ratelimit-")]:
                del headers[name]
            headers.update(self.limit_headers)
        idle = self.client.settings.idle_timeout
        # Like Open WebUI, trust the content type, not what was asked for.
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            self.stream = self.via.relay(upstream, model=self.route.name_json, idle_timeout=idle,
                                         secret=self.client.secret, strip_usage=self.strip_usage,
                                         request=self.plan.body)
            if self.turn is not None and self.turn.measure:
                self.stream.captured = []
            gauge = self.metrics.streams_of(self.route.name) if self.metrics else None
            if gauge is not None:
                gauge.inc()
            try:
                await self.stream.run(send, guard, headers)
            finally:
                if gauge is not None:
                    gauge.dec()
            return
        body, self.usage = await self.via.read(upstream, guard, idle, self.route.name_json, self.plan.body)
        self.responded = True
        self.size = len(body)
        if self.turn is not None and self.turn.measure:
            self.body = body
        await send({"type": "http.response.start", "status": upstream.status_code,
                    "headers": [*raw_headers(headers), (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def interrupted(self, send: Send) -> None:
        """Tell the client why its answer stops here, in whatever form it is getting it."""
        err = ServiceUnavailable("persona-proxy is shutting down; retry the request.", code="shutting_down",
                                 headers={"retry-after": "1"})
        self.error = err.message
        try:
            if self.stream is not None and self.stream.started:
                await self.stream.fail(send, err)
            elif self.stream is None and not self.responded:
                body = orjson.dumps(err.body())
                await send({"type": "http.response.start", "status": err.status,
                            "headers": [(b"content-type", b"application/json"), *raw_headers(err.headers)]})
                await send({"type": "http.response.body", "body": body})
        except OSError:
            pass  # the client is gone too

    def captured(self) -> bytes | None:
        """The whole reply as its client received it, when it was captured and completed without error."""
        if self.error or self.error_code or self.status >= 400:
            return None
        stream = self.stream
        if stream is None:
            return self.body
        if stream.captured is None or stream.error or not stream.started:
            return None
        return b"".join(stream.captured)

    def tokens(self) -> tuple[int | None, int | None]:
        """Prompt and completion tokens the upstream reported, in either API's words."""
        return reported_tokens(self.stream.usage if self.stream is not None else self.usage)

    @property
    def model(self) -> str | None:
        """The model id the upstream was asked for (what [prices] are keyed by)."""
        return str(self.plan.body.get("model") or self.plan.target.model) if self.plan is not None else None

    def used(self, prompt_estimate: int) -> tuple[int, int]:
        """Tokens to settle at: as reported, else as far as can be told (a client that hung up mid-stream)."""
        prompt, completion = self.tokens()
        if prompt is not None and completion is not None:
            return prompt, completion
        if self.plan is None or not 0 < self.status < 400:
            return prompt or 0, completion or 0  # nothing was generated, or the upstream refused it
        if completion is None:
            # A streamed chunk carries about a token; a whole answer about four bytes of JSON a token.
            completion = self.stream.events if self.stream is not None else self.size // 4
        return (prompt if prompt is not None else prompt_estimate), completion

    def completed(self) -> Completed:
        """This request's usage record (positional: it is built once per request)."""
        plan = self.plan
        assert plan is not None
        stream = self.stream
        prompt_tokens, completion_tokens = self.tokens()
        error_code = self.error_code
        first = None
        if stream is not None:
            first = stream.first_byte_at
            if error_code is None and stream.error:
                error_code = "stream_error"
        now = time.monotonic()
        return Completed(
            time.time(), self.route.name, plan.upstream, str(plan.body.get("model") or plan.target.model),
            "task" if plan.task else "chat", self.wants_stream, self.status, error_code, self.key_id,
            plan.caller.user_id or self.body_user, prompt_tokens, completion_tokens,
            (first - self.started) * 1000 if first else None, (now - self.started) * 1000, self.failover,
            self.api.name, plan.target.role, self.turn.conversation if self.turn is not None else None,
            self.client_name)

    def log(self) -> None:
        if self.plan is not None and logger.isEnabledFor(logging.INFO):
            write_access_line(self, self.plan)
