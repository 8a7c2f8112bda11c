"""What a store is asked and what it answers: pure data, shared by both stores.

A request is counted against one or two *parties*: its client, and its end
user under that client when the client has ``per_user`` limits. An
:class:`Ask` carries each party's limits with the request's reservation;
a store answers :class:`Admitted` (each party's counters after it) or
:class:`Refused` (which party, which limit, when it resets). Money is counted
in integer nano-dollars, so counters never drift the way summed floats do.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

from ..config.clients import LimitFields

NANO = 1_000_000_000
# Kinds of limit, as messages, metrics and `persona-proxy clients` name them.
RPM, TPM, PARALLEL, BUDGET = "rpm", "tpm", "max_parallel", "budget_usd"


class Party(NamedTuple):
    """One counted party: a client, or one end user of a client."""

    key: str  # the store's key for it; never a raw end-user id
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget: int | None  # nano-USD per period
    period: str  # day | month
    per_user: bool = False

    @classmethod
    def of(cls, key: str, limits: LimitFields, per_user: bool = False) -> Party:
        budget = math.floor(limits.budget_usd * NANO) if limits.budget_usd is not None else None
        return cls(key, limits.rpm, limits.tpm, limits.max_parallel, budget, limits.budget_period, per_user)


class Ask(NamedTuple):
    """One request's admission: its parties, its worst case, and the ticket it is held under."""

    parties: tuple[Party, ...]
    tokens: int  # counted prompt tokens plus the largest output the request allows
    cost: int  # the worst case's price, nano-USD
    ticket: str


class PartyState(NamedTuple):
    """A party's counters, as a store has them (after this request, when admitting it)."""

    requests: int  # requests in the current minute
    tokens: int  # tokens in the current minute (settled and reserved)
    window_reset_ms: int  # until the minute ends
    spent: int  # nano-USD in the current budget period (settled and reserved)
    period_reset_s: int  # until the budget period ends
    in_flight: int


class Admitted(NamedTuple):
    states: tuple[PartyState, ...]


class Refused(NamedTuple):
    party: int  # index into the ask's parties
    limit: str  # RPM | TPM | PARALLEL | BUDGET
    reset_ms: int  # until the limit can admit it again (0: unknown, e.g. max_parallel)
    too_large: bool = False  # the request alone exceeds the limit: waiting will not help
    used: int = 0  # the refused counter's value (requests, tokens, requests in flight, nano-USD)


class StoreUnavailable(Exception):
    """The counters could not be reached in time; the failure mode decides what happens."""


class Store(Protocol):
    async def admit(self, ask: Ask) -> Admitted | Refused: ...

    def settle(self, ask: Ask, tokens: int, cost: int) -> None:
        """Replace the reservation with what was used; never blocks the caller."""

    async def states(self, parties: tuple[Party, ...]) -> tuple[PartyState, ...]: ...

    async def close(self) -> None: ...


def duration(ms: int) -> str:
    """A reset time the way OpenAI writes it in ``x-ratelimit-reset-*``: ``120ms``, ``6.5s``, ``1m30s``."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    head = f"{hours}h{minutes}m" if hours else f"{minutes}m"
    return f"{head}{rest}s"


def reset_words(ms: int) -> str:
    """When a limit resets, for a message: 'in 42 s', 'in 3 h 5 min', 'in 12 days'."""
    seconds = max(math.ceil(ms / 1000), 1)
    if seconds < 120:
        return f"in {seconds} s"
    if seconds < 7200:
        return f"in {math.ceil(seconds / 60)} min"
    if seconds < 172_800:
        hours, minutes = divmod(seconds // 60, 60)
        return f"in {hours} h {minutes} min"
    return f"in {math.ceil(seconds / 86_400)} days"
