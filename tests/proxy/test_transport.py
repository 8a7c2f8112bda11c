"""The transport's connection slots: bounded, first come first served, never leaked."""

from __future__ import annotations

import asyncio

import pytest

from app.proxy.transport import _Slots


async def test_free_slots_are_taken_without_waiting_and_the_next_waits() -> None:
    slots = _Slots(2)
    assert await slots.acquire(None) and await slots.acquire(None)
    assert slots.free == 0
    assert await slots.acquire(0.05) is False  # full: gives up after its timeout
    slots.release()
    assert await slots.acquire(0.05) is True


async def test_waiters_are_served_in_arrival_order() -> None:
    slots = _Slots(1)
    await slots.acquire(None)
    served: list[int] = []

    async def wait(n: int) -> None:
        await slots.acquire(5)
        served.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(4)]
    await asyncio.sleep(0.01)
    for _ in range(4):
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2, 3]


async def test_a_cancelled_or_timed_out_waiter_leaves_no_slot_behind() -> None:
    slots = _Slots(1)
    await slots.acquire(None)
    waiter = asyncio.create_task(slots.acquire(5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await slots.acquire(0.01) is False
    slots.release()
    assert slots.free == 1  # neither the cancelled nor the timed-out waiter kept it


async def test_a_slot_handed_over_as_the_wait_is_cancelled_goes_back() -> None:
    slots = _Slots(1)
    await slots.acquire(None)
    waiter = asyncio.create_task(slots.acquire(5))
    await asyncio.sleep(0.01)
    slots.release()  # handed to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.free == 1
