"""The gate: a party over its rpm is refused locally until its window ends (Envoy's over-limit cache)."""

from __future__ import annotations

import contextlib
import time

from app.clients.demand import PriceBook
from app.clients.gate import Gate, Limited
from app.clients.limits import RPM, Admitted, Ask, Party, PartyState, Refused
from app.config.clients import ClientSettings, LimitsSettings


class CountingStore:
    """A store that refuses after ``limit`` admissions and counts how often it is asked."""

    def __init__(self, limit: int, reset_ms: int) -> None:
        self.limit, self.reset_ms, self.asked = limit, reset_ms, 0

    async def admit(self, ask: Ask) -> Admitted | Refused:
        self.asked += 1
        if self.asked > self.limit:
            return Refused(0, RPM, self.reset_ms, False, self.limit)
        return Admitted((PartyState(self.asked, 0, self.reset_ms, 0, 1000, 1),))

    def settle(self, ask: Ask, tokens: int, cost: int) -> None:
        pass

    async def states(self, parties: tuple[Party, ...]) -> tuple[PartyState, ...]:
        return ()

    async def close(self) -> None:
        pass


def gate_over(store: CountingStore) -> tuple[Gate, ClientSettings]:
    settings = ClientSettings(key_env="K", rpm=2)
    return Gate({"bot": settings}, LimitsSettings(), PriceBook({}), store), settings


async def test_a_party_over_its_rpm_is_refused_without_asking_the_store_until_the_window_ends():
    store = CountingStore(limit=2, reset_ms=400)
    gate, settings = gate_over(store)
    for _ in range(2):
        await gate.admit("bot", settings, None, None)
    refusals = []
    for _ in range(5):
        try:
            await gate.admit("bot", settings, None, None)
        except Limited as limited:
            refusals.append(limited)
    assert len(refusals) == 5 and store.asked == 3  # one refusal from the store, four from the cache
    assert all(r.limit == RPM and "2 requests per minute (rpm)" in r.message for r in refusals)
    assert all(0 < int(r.headers["retry-after"]) <= 1 for r in refusals)
    time.sleep(0.4)
    store.limit = 100  # the window is over: the store is asked again
    await gate.admit("bot", settings, None, None)
    assert store.asked == 4


async def test_a_window_about_to_end_is_not_cached():
    store = CountingStore(limit=0, reset_ms=30)
    gate, settings = gate_over(store)
    for _ in range(3):
        with contextlib.suppress(Limited):
            await gate.admit("bot", settings, None, None)
    assert store.asked == 3
