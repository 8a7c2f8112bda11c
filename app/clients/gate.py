"""The one place the HTTP path enters: admit a request with a reservation, settle it when it ends.

The gate knows the clients (scopes, limits), the prices and the store. The
proxy hands it who is calling and the request's worst case; it answers a
:class:`Ticket` (with the ``x-ratelimit-*`` headers for the answer) or raises
:class:`Limited`. When the store cannot be reached, ``on_store_error``
decides: ``open`` admits without counting (logged once per interval,
counted), ``closed`` raises :class:`LimitsUnavailable`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import secrets
import time
from collections.abc import Mapping
from typing import NamedTuple

from ..config.clients import ClientSettings, LimitsSettings
from ..ops.metrics import Metrics
from .demand import PriceBook
from .limits import BUDGET, PARALLEL, RPM, TPM, Admitted, Ask, Party, PartyState, Refused, Store, StoreUnavailable
from .words import headers_for, refusal_message

logger = logging.getLogger(__name__)
STORE_LOG_SECONDS = 10.0
# What each failure mode does while the store is not answering, as the logs say it.
FAILURE_MODES = {"open": "serving without limits", "closed": "answering 503 limits_unavailable"}
OVER_MARGIN_MS = 50


class Demand(NamedTuple):
    """A request's worst case, as the proxy counted it."""

    prompt_tokens: int
    max_output: int
    # The dearest input and output price (nano-USD a token) of the models that may serve it.
    price_in: float
    price_out: float


class Limited(Exception):
    """Over a limit: the 429 to answer, in words and headers."""

    def __init__(self, message: str, limit: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.message, self.limit, self.headers = message, limit, headers

    @property
    def quota(self) -> bool:
        return self.limit == BUDGET


class LimitsUnavailable(Exception):
    """The store did not answer and ``on_store_error = "closed"``."""


class Ticket:
    """An admitted request's hold; settle it exactly once."""

    __slots__ = ("ask", "gate", "headers", "prompt_estimate", "settled")

    def __init__(self, gate: Gate, ask: Ask | None, headers: dict[str, str],
                 prompt_estimate: int = 0) -> None:
        self.gate = gate
        self.ask = ask  # None: admitted without counting (the store was down, failure mode open)
        self.headers = headers
        self.prompt_estimate = prompt_estimate  # the counted prompt, settled at when the upstream reports none
        self.settled = False

    def settle(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> None:
        if self.settled or self.ask is None:
            return
        self.settled = True
        if not self.ask.tokens:
            self.gate.store.settle(self.ask, 0, 0)  # no token or budget limit: only its hold to let go
            return
        cost = self.gate.prices.cost(model, prompt_tokens, completion_tokens) if model else 0
        self.gate.store.settle(self.ask, prompt_tokens + completion_tokens, cost)


class Gate:
    def __init__(self, clients: Mapping[str, ClientSettings], limits: LimitsSettings, prices: PriceBook,
                 store: Store, metrics: Metrics | None = None) -> None:
        self.clients = clients
        self.limits = limits
        self.prices = prices
        self.store = store
        self.metrics = metrics
        self._tickets = itertools.count()
        self._prefix = secrets.token_hex(4)
        self._store_failures = 0
        self._logged_at = -math.inf
        self._client_parties: dict[str, Party | None] = {}  # a client's own party never changes
        # Parties refused for rpm, until their window ends (Envoy's local over-limit cache): a looping
        # client's 429s then cost no round trip. Only rpm: a minute's request count never goes down,
        # while tokens and spend can (settlements give reservations back).
        self._over_rpm: dict[str, tuple[float, Refused]] = {}

    def allows(self, client: str | None, route: str) -> bool:
        """Whether a client's scope includes a route (keys with no client reach every route)."""
        settings = self.clients.get(client) if client is not None else None
        return settings is None or settings.routes is None or route in settings.routes

    def parties(self, client: str, settings: ClientSettings, end_user: str | None) -> tuple[Party, ...]:
        if client in self._client_parties:
            own = self._client_parties[client]
        else:
            own = self._client_parties[client] = Party.of("{" + client + "}", settings) if settings.any else None
        if end_user is None or not settings.per_user.any:
            return (own,) if own is not None else ()
        # Hashed: an end-user id is the client's to know, and may be long or odd; the key is neither.
        user = hashlib.blake2b(end_user.encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()
        theirs = Party.of("{" + client + "}:u:" + user, settings.per_user, per_user=True)
        return (own, theirs) if own is not None else (theirs,)

    async def admit(self, client: str, settings: ClientSettings, end_user: str | None,
                    demand: Demand | None) -> Ticket:
        """Admit a request of a limited client, or raise :class:`Limited` (or :class:`LimitsUnavailable`)."""
        parties = self.parties(client, settings, end_user)
        if not parties:
            return Ticket(self, None, {})
        tokens, cost = 0, 0
        if demand is not None:
            tokens = demand.prompt_tokens + demand.max_output
            cost = math.ceil(demand.prompt_tokens * demand.price_in + demand.max_output * demand.price_out)
        ask = Ask(parties, tokens, cost, f"{self._prefix}-{next(self._tickets):x}")
        if self._over_rpm:
            cached = self._still_over(ask)
            if cached is not None:
                raise self._refused(client, ask, cached)
        try:
            answer = await self.store.admit(ask)
        except StoreUnavailable as exc:
            return self._store_failed(client, exc)
        if isinstance(answer, Refused):
            if answer.limit == RPM and answer.reset_ms > OVER_MARGIN_MS:
                # Until a little before the window ends, so the cache never outlives it.
                until = time.monotonic() + (answer.reset_ms - OVER_MARGIN_MS) / 1000
                self._over_rpm[parties[answer.party].key] = (until, answer)
            raise self._refused(client, ask, answer)
        return Ticket(self, ask, headers_for(parties, answer.states), demand.prompt_tokens if demand else 0)

    def _still_over(self, ask: Ask) -> Refused | None:
        now = time.monotonic()
        for index, party in enumerate(ask.parties):
            held = self._over_rpm.get(party.key)
            if held is None:
                continue
            until, refused = held
            if now >= until:
                del self._over_rpm[party.key]
                continue
            return refused._replace(party=index, reset_ms=int((until - now) * 1000) + OVER_MARGIN_MS)
        return None

    def _refused(self, client: str, ask: Ask, refused: Refused) -> Limited:
        party = ask.parties[refused.party]
        message, headers = refusal_message(client, party, refused, ask)
        logger.warning("limited client=%s limit=%s%s", client, refused.limit, " per_user" if party.per_user else "",
                       extra={"fields": {"client": client, "limit": refused.limit, "per_user": party.per_user}})
        if self.metrics is not None:
            self.metrics.limited.labels(client, refused.limit, "user" if party.per_user else "client").inc()
        return Limited(message, refused.limit, headers)

    def _store_failed(self, client: str, exc: StoreUnavailable) -> Ticket:
        mode = self.limits.on_store_error
        self._store_failures += 1
        if self.metrics is not None:
            self.metrics.limits_store_errors.labels(mode).inc()
        now = time.monotonic()
        if now - self._logged_at >= STORE_LOG_SECONDS:
            self._logged_at = now
            logger.error("limits store unavailable (%s): %s (on_store_error = %r); %d request(s) affected since "
                         "the last line", exc, FAILURE_MODES[mode], mode, self._store_failures)
            self._store_failures = 0
        if mode == "closed":
            raise LimitsUnavailable(client)
        return Ticket(self, None, {})

    async def states(self, client: str, settings: ClientSettings) -> tuple[PartyState, ...]:
        """The client's own counters now (not its end users'), for `persona-proxy clients` and the console."""
        return await self.store.states(self.parties(client, settings, None))


__all__ = ["BUDGET", "PARALLEL", "RPM", "TPM", "Admitted", "Demand", "Gate", "Limited", "LimitsUnavailable",
           "Ticket"]
