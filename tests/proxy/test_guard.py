"""The guard: phase deadlines, and a client's hang-up noticed without a task for every fast answer."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.proxy import guard as guard_module
from app.proxy.guard import ClientGone, Guard, PhaseTimeout


class Client:
    """An ASGI receive channel the test can hang up."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.receives = 0

    async def receive(self) -> dict[str, object]:
        self.receives += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def test_a_fast_exchange_never_starts_the_watcher() -> None:
    client = Client()
    async with Guard(client.receive) as guard:
        guard.expect("first_byte", 5)
        await asyncio.sleep(0.01)
    await asyncio.sleep(guard_module.WATCH_AFTER + 0.05)
    assert client.receives == 0


async def test_a_hang_up_before_the_watcher_starts_is_noticed_when_it_does() -> None:
    client = Client()
    client.gone.set()  # gone at once
    started = time.monotonic()
    with pytest.raises(ClientGone):
        async with Guard(client.receive) as guard:
            guard.expect("first_byte", 5)
            await asyncio.sleep(5)
    assert guard_module.WATCH_AFTER <= time.monotonic() - started < guard_module.WATCH_AFTER + 0.5


async def test_a_hang_up_during_a_long_exchange_cancels_it_at_once() -> None:
    client = Client()
    with pytest.raises(ClientGone):
        async with Guard(client.receive) as guard:
            guard.expect("upstream_idle", 5)
            await asyncio.sleep(guard_module.WATCH_AFTER + 0.05)
            assert client.receives == 1
            hung_up = time.monotonic()
            client.gone.set()
            await asyncio.sleep(5)
    assert time.monotonic() - hung_up < 0.1


async def test_a_phase_that_overruns_names_itself() -> None:
    with pytest.raises(PhaseTimeout) as caught:
        async with Guard(Client().receive) as guard:
            guard.expect("first_byte", 0.05)
            await asyncio.sleep(0.01)
            guard.expect("upstream_idle", 0.05)  # moved on: the first deadline no longer applies
            await asyncio.sleep(5)
    assert (caught.value.phase, caught.value.seconds) == ("upstream_idle", 0.05)
