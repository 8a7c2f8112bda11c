"""Both stores keep the same books: the in-process one and Redis's scripts (a real redis-server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import secrets

import pytest

from app.clients.limits import BUDGET, NANO, PARALLEL, RPM, TPM, Admitted, Ask, Party, Refused
from app.clients.local import LocalStore, period_bounds
from app.clients.redis_store import RedisStore
from app.clients.scripts import PERIOD

from ..clock import fresh_minute

TICKETS = itertools.count()


def party(key: str = "{bot}", *, rpm: int | None = None, tpm: int | None = None, par: int | None = None,
          budget_usd: float | None = None, period: str = "month") -> Party:
    budget = int(budget_usd * NANO) if budget_usd is not None else None
    return Party(key, rpm, tpm, par, budget, period)


def ask(*parties: Party, tokens: int = 0, cost: int = 0) -> Ask:
    return Ask(parties, tokens, cost, f"t{next(TICKETS)}")


@pytest.fixture(params=["local", "redis"])
async def store(request: pytest.FixtureRequest):
    fresh_minute(room=3)  # every test here reads its counters back within the same window
    if request.param == "local":
        yield LocalStore()
        return
    # A shared server when one is named (CI starts one; or point it at Valkey), else one of the test's own.
    url = os.environ.get("PERSONA_PROXY_TEST_REDIS_URL") or request.getfixturevalue("redis_server").url
    store = RedisStore(url, timeout=0.5, prefix=f"test-{secrets.token_hex(4)}")
    yield store
    await store.close()


async def test_rpm_admits_exactly_the_limit_and_names_it(store):
    limited = party(rpm=3)
    answers = [await store.admit(ask(limited)) for _ in range(5)]
    assert [isinstance(a, Admitted) for a in answers] == [True, True, True, False, False]
    refused = answers[3]
    assert isinstance(refused, Refused) and refused.limit == RPM and refused.used == 3
    assert 0 < refused.reset_ms <= 60_000
    assert [a.states[0].requests for a in answers[:3]] == [1, 2, 3]


async def test_concurrent_admissions_never_overshoot(store):
    limited = party(rpm=10)
    answers = await asyncio.gather(*(store.admit(ask(limited)) for _ in range(50)))
    assert sum(isinstance(a, Admitted) for a in answers) == 10


async def test_tokens_are_reserved_then_settled_to_what_was_used(store):
    limited = party(tpm=1000)
    first = ask(limited, tokens=600)
    assert isinstance(await store.admit(first), Admitted)
    # 600 reserved: a second 600 does not fit, until the first settles at 100.
    refused = await store.admit(ask(limited, tokens=600))
    assert isinstance(refused, Refused) and refused.limit == TPM and not refused.too_large and refused.used == 600
    store.settle(first, 100, 0)
    await asyncio.sleep(0.05)  # Redis settlements are sent in the background
    assert (await store.states((limited,)))[0].tokens == 100
    second = await store.admit(ask(limited, tokens=600))
    assert isinstance(second, Admitted) and second.states[0].tokens == 700


async def test_a_request_larger_than_the_whole_limit_is_too_large(store):
    refused = await store.admit(ask(party(tpm=100), tokens=101))
    assert isinstance(refused, Refused) and refused.too_large


async def test_max_parallel_counts_requests_in_flight(store):
    limited = party(par=2)
    held = [ask(limited), ask(limited)]
    for a in held:
        assert isinstance(await store.admit(a), Admitted)
    refused = await store.admit(ask(limited))
    assert isinstance(refused, Refused) and refused.limit == PARALLEL
    store.settle(held[0], 0, 0)
    await asyncio.sleep(0.05)
    assert isinstance(await store.admit(ask(limited)), Admitted)


async def test_budget_reservation_admits_only_what_fits_under_concurrency(store):
    # $1 of budget, each request's worst case $0.10: 50 at once admit exactly 10.
    limited = party(budget_usd=1.0)
    answers = await asyncio.gather(*(store.admit(ask(limited, cost=NANO // 10)) for _ in range(50)))
    admitted = [a for a in answers if isinstance(a, Admitted)]
    refused = [a for a in answers if isinstance(a, Refused)]
    assert len(admitted) == 10 and {r.limit for r in refused} == {BUDGET}
    assert all(r.reset_ms > 0 for r in refused)


async def test_settling_below_the_reservation_gives_the_budget_back(store):
    limited = party(budget_usd=1.0)
    held = ask(limited, cost=NANO)
    assert isinstance(await store.admit(held), Admitted)
    assert isinstance(await store.admit(ask(limited, cost=1)), Refused)
    store.settle(held, 10, NANO // 4)
    await asyncio.sleep(0.05)
    state = (await store.states((limited,)))[0]
    assert state.spent == NANO // 4 and state.in_flight == 0


async def test_a_refusal_by_one_party_counts_nothing_at_the_other(store):
    client, user = party("{ow}", rpm=100), party("{ow}:u:alice", rpm=1)
    assert isinstance(await store.admit(ask(client, user)), Admitted)
    refused = await store.admit(ask(client, user))
    assert isinstance(refused, Refused) and refused.party == 1
    # The client's count did not move for the refused request; another user is unaffected.
    other = await store.admit(ask(client, party("{ow}:u:bob", rpm=1)))
    assert isinstance(other, Admitted) and other.states[0].requests == 2


async def test_settling_twice_changes_nothing(store):
    limited = party(tpm=1000)
    held = ask(limited, tokens=500)
    await store.admit(held)
    store.settle(held, 100, 0)
    store.settle(held, 100, 0)
    await asyncio.sleep(0.05)
    assert (await store.states((limited,)))[0].tokens == 100


def test_local_windows_follow_the_clock_across_a_minute_and_a_month():
    now = [dt.datetime(2026, 12, 31, 23, 59, 30, tzinfo=dt.UTC).timestamp()]
    store = LocalStore(clock=lambda: now[0])
    limited = party(rpm=1, budget_usd=1.0)

    async def run():
        assert isinstance(await store.admit(ask(limited, cost=NANO)), Admitted)
        assert isinstance(await store.admit(ask(limited)), Refused)
        now[0] += 31  # 2027-01-01 00:00:01: a new minute and a new month
        return await store.admit(ask(limited, cost=NANO))

    answer = asyncio.run(run())
    assert isinstance(answer, Admitted) and answer.states[0].requests == 1 and answer.states[0].spent == NANO


@pytest.mark.parametrize("when", ["2024-02-29T12:00:00", "2026-12-31T23:59:59", "2027-01-01T00:00:00",
                                  "2000-03-01T00:00:00", "2100-02-28T08:00:00", "1999-12-31T23:00:00"])
async def test_the_scripts_periods_match_pythons_calendar(redis_server, when):
    import redis.asyncio as redis

    at = int(dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp())
    client = redis.Redis.from_url(redis_server.url)
    try:
        for kind in ("day", "month"):
            suffix, ends = await client.eval(PERIOD, 0, kind, at)
            start, end = period_bounds(at, kind)
            assert ends == end
            day = dt.datetime.fromtimestamp(start, dt.UTC)
            expected = f"d{start // 86400}" if kind == "day" else f"m{day.year * 100 + day.month}"
            assert suffix.decode() == expected
    finally:
        await client.aclose()


async def test_a_hold_whose_process_died_is_reclaimed_after_its_lease(redis_server, monkeypatch):
    monkeypatch.setattr("app.clients.redis_store.LEASE_MS", 200)
    store = RedisStore(redis_server.url, timeout=0.5)
    limited = party(par=1, tpm=1000)
    try:
        assert isinstance(await store.admit(ask(limited, tokens=800)), Admitted)  # never settled: "dies"
        assert isinstance(await store.admit(ask(limited, tokens=800)), Refused)
        await asyncio.sleep(0.3)
        answer = await store.admit(ask(limited, tokens=800))
        assert isinstance(answer, Admitted) and answer.states[0].tokens == 800 and answer.states[0].in_flight == 1
    finally:
        await store.close()


async def test_scripts_run_when_the_server_never_saw_them(redis_server):
    store = RedisStore(redis_server.url, timeout=0.5)
    try:
        assert isinstance(await store.admit(ask(party(rpm=5))), Admitted)
        redis_server.command("SCRIPT", "FLUSH")  # as after a Redis restart: EVALSHA answers NOSCRIPT
        answer = await store.admit(ask(party(rpm=5)))
        assert isinstance(answer, Admitted) and answer.states[0].requests == 2
    finally:
        await store.close()
