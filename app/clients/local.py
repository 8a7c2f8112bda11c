"""Counters in this process: exact for one worker, gone at exit (budgets are rebuilt from usage records).

Check and increment happen with no ``await`` between them, so on one event
loop they are one step, like the Redis script. Windows and periods are the
same as there: the clock's minute, and the UTC day or month.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .limits import BUDGET, PARALLEL, RPM, TPM, Admitted, Ask, Party, PartyState, Refused


def period_bounds(now: float, period: str) -> tuple[int, int]:
    """The budget period holding ``now``: its start and end, in Unix seconds (UTC)."""
    day = int(now // 86_400)
    if period == "day":
        return day * 86_400, (day + 1) * 86_400
    date = dt.datetime.fromtimestamp(now, dt.UTC)
    start = dt.datetime(date.year, date.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(date.year + date.month // 12, date.month % 12 + 1, 1, tzinfo=dt.UTC)
    return int(start.timestamp()), int(end.timestamp())


@dataclass(slots=True)
class _Counters:
    minute: int = -1
    requests: int = 0
    tokens: int = 0
    period: int = -1  # the period's start
    spent: int = 0
    holds: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # ticket: minute, tokens, period, cost

    def roll(self, minute: int, period: int) -> None:
        if minute != self.minute:
            self.minute, self.requests, self.tokens = minute, 0, 0
        if period != self.period:
            self.period, self.spent = period, 0


class LocalStore:
    """The in-process store; ``clock`` is injectable so tests can cross a minute or a month."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._counters: dict[str, _Counters] = {}
        self._periods: dict[str, tuple[int, int]] = {}  # the current day and month, recomputed when they end

    def _period(self, now: float, kind: str) -> tuple[int, int]:
        bounds = self._periods.get(kind)
        if bounds is None or not bounds[0] <= now < bounds[1]:
            bounds = self._periods[kind] = period_bounds(now, kind)
        return bounds

    async def admit(self, ask: Ask) -> Admitted | Refused:
        now = self.clock()
        minute = int(now // 60)
        window_reset = int(((minute + 1) * 60 - now) * 1000)
        rolled = []
        for index, party in enumerate(ask.parties):
            counters = self._counters.get(party.key)
            if counters is None:
                counters = self._counters[party.key] = _Counters()
            start, end = self._period(now, party.period)
            counters.roll(minute, start)
            refusal = _refusal(index, party, counters, ask, window_reset, int((end - now) * 1000))
            if refusal is not None:
                return refusal
            rolled.append((counters, end))
        states = []
        for counters, end in rolled:
            counters.requests += 1
            counters.tokens += ask.tokens
            counters.spent += ask.cost
            counters.holds[ask.ticket] = (counters.minute, ask.tokens, counters.period, ask.cost)
            states.append(PartyState(counters.requests, counters.tokens, window_reset, counters.spent,
                                     int(end - now), len(counters.holds)))
        return Admitted(tuple(states))

    def settle(self, ask: Ask, tokens: int, cost: int) -> None:
        for party in ask.parties:
            counters = self._counters.get(party.key)
            hold = counters.holds.pop(ask.ticket, None) if counters is not None else None
            if counters is None or hold is None:
                continue
            minute, reserved_tokens, period, reserved_cost = hold
            if counters.minute == minute:
                counters.tokens += tokens - reserved_tokens
            if counters.period == period:
                counters.spent += cost - reserved_cost

    async def states(self, parties: tuple[Party, ...]) -> tuple[PartyState, ...]:
        now = self.clock()
        minute = int(now // 60)
        found = []
        for party in parties:
            counters = self._counters.get(party.key, _Counters())
            start, end = self._period(now, party.period)
            same_minute, same_period = counters.minute == minute, counters.period == start
            found.append(PartyState(counters.requests if same_minute else 0, counters.tokens if same_minute else 0,
                                    int(((minute + 1) * 60 - now) * 1000), counters.spent if same_period else 0,
                                    int(end - now), len(counters.holds)))
        return tuple(found)

    def restore(self, spent: Iterable[tuple[Party, int]]) -> None:
        """Start each party's budget period at what the usage records say it spent."""
        now = self.clock()
        for party, nano in spent:
            counters = self._counters.setdefault(party.key, _Counters())
            counters.roll(int(now // 60), self._period(now, party.period)[0])
            counters.spent += nano

    async def close(self) -> None:
        return None


def _refusal(index: int, party: Party, counters: _Counters, ask: Ask, window_reset: int,
             period_reset: int) -> Refused | None:
    if party.rpm is not None and counters.requests + 1 > party.rpm:
        return Refused(index, RPM, window_reset, False, counters.requests)
    if party.tpm is not None and counters.tokens + ask.tokens > party.tpm:
        return Refused(index, TPM, window_reset, ask.tokens > party.tpm, counters.tokens)
    if party.max_parallel is not None and len(counters.holds) + 1 > party.max_parallel:
        return Refused(index, PARALLEL, 0, False, len(counters.holds))
    if party.budget is not None and counters.spent + ask.cost > party.budget:
        return Refused(index, BUDGET, period_reset, ask.cost > party.budget, counters.spent)
    return None
