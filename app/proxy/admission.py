"""Where the HTTP path meets :mod:`app.clients`: scope, admission and the answers it turns into.

The serving core calls :meth:`Admission.admit` once a route is resolved and
gets a :class:`~app.clients.gate.Ticket` (or None for a client without
limits), and settles it when the request ends; everything about keys,
limits and stores stays behind the gate. A refusal becomes a 429 in
OpenAI's shape, a failed store in closed mode a 503 ``limits_unavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..clients.demand import choices, max_output, prompt_tokens
from ..clients.gate import Demand, Gate, Limited, LimitsUnavailable, Ticket
from ..clients.limits import TPM
from ..tuning.tokens import TokenCounter
from .apis import CHAT, Api
from .errors import QuotaExceeded, RateLimited, ServiceUnavailable, model_not_found
from .openwebui import MAX_NAME, caller_from
from .planning import Headers
from .routing import Route, Target


def body_user(body: dict[str, Any]) -> str | None:
    """The body's ``user`` field, bounded like Open WebUI's user header."""
    user = body.get("user")
    return user[:MAX_NAME] if isinstance(user, str) and user else None


def end_user(headers: Headers, body: dict[str, Any]) -> str | None:
    """Who is behind a request: Open WebUI's user header, which wins over the body's ``user``.

    Read as usage records read it (:func:`caller_from`), so a budget rebuilt from them finds the same user.
    """
    return caller_from(headers).user_id or body_user(body)


class Admission:
    """The gate as the serving core sees it; one per installed config."""

    def __init__(self, gate: Gate, counter: Callable[[], TokenCounter], default_max_tokens: int) -> None:
        self.gate = gate
        self.counter = counter
        self.default_max_tokens = default_max_tokens
        # Per route: the persona's own tokens (the largest target's) and the dearest prices of its models.
        self._routes: dict[str, tuple[int, float, float]] = {}
        # Per client: its settings if it has limits, and whether they need the request's worst case.
        self._clients = {name: (settings, settings.weighs_requests, settings.per_user.any)
                         for name, settings in gate.clients.items() if settings.limited}

    def allows(self, client: str | None, route: Route) -> bool:
        return self.gate.allows(client, route.name)

    async def admit(self, client: str | None, route: Route, body: dict[str, Any], headers: Headers,
                    api: Api = CHAT) -> Ticket | None:
        """Refuse a route outside the client's scope (as if it did not exist) or over a limit; else hold it."""
        if not self.gate.allows(client, route.name):
            raise model_not_found(body.get("model"))
        held = self._clients.get(client) if client is not None else None
        if held is None or client is None:
            return None
        settings, counts, per_user = held
        demand = self.demand(route, body, api) if counts else None
        try:
            return await self.gate.admit(client, settings, end_user(headers, body) if per_user else None, demand)
        except Limited as limited:
            if limited.quota:
                raise QuotaExceeded(limited.message, headers=limited.headers) from None
            err = RateLimited(limited.message, headers=limited.headers)
            err.type = "tokens" if limited.limit == TPM else "requests"
            raise err from None
        except LimitsUnavailable:
            raise ServiceUnavailable("persona-proxy cannot check this client's limits right now; retry shortly.",
                                     code="limits_unavailable", headers={"retry-after": "1"}) from None

    def demand(self, route: Route, body: dict[str, Any], api: Api) -> Demand:
        """The request's worst case; a request that names no maximum output is given the default one."""
        overhead, price_in, price_out = self._route_costs(route)
        output = max_output(body, route.settings.params)
        if output is None:
            # Sent upstream too: a reservation is only a bound if the model cannot write past it.
            body["max_tokens" if api is CHAT else "max_output_tokens"] = self.default_max_tokens
            output = self.default_max_tokens * choices(body, route.settings.params)
        return Demand(prompt_tokens(body, self.counter()) + overhead, output, price_in, price_out)

    def _route_costs(self, route: Route) -> tuple[int, float, float]:
        known = self._routes.get(route.name)
        if known is None:
            counter = self.counter()
            overhead = max((_overhead(t, counter) for t in (*route.targets, *route.canaries)), default=0)
            models = {t.model for t in (*route.targets, *route.canaries)}
            if route.settings.task_model:
                models.add(route.settings.task_model)
            known = self._routes[route.name] = (overhead, *self.gate.prices.bound(models))
        return known


def _overhead(target: Target, counter: TokenCounter) -> int:
    """The most prompt tokens a target adds to a request: its persona, few-shot, and a lorebook at its fullest."""
    tokens = counter.text(target.prompt or "") + sum(counter.text(m["content"]) + 4 for m in target.few_shot)
    persona = target.persona
    if persona is not None:
        tokens += counter.text(persona.post) + 4 + sum(lore.most_tokens + 4 * len(lore.contents)
                                                       for lore in persona.lore)
    return tokens
