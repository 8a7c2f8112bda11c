"""A bounded load test: hundreds of concurrent streams, some clients hanging up."""

from __future__ import annotations

import asyncio
import json
import random
import time

import httpx

from ..conftest import FT_MODEL
from ..fakes.upstream import Pause, Reply, chunk

STREAMS = 200
EVENTS = 15


def script() -> Reply:
    items: list = [chunk(FT_MODEL, "", role="assistant")]
    for i in range(EVENTS):
        # Clients leave after at most 4 parts: the long pause after the fifth
        # keeps every upstream stream open until its client has had time to
        # hang up, however slowly 200 streams in one process are read.
        items += [Pause(1.5 if i == 5 else 0.02), chunk(FT_MODEL, f"{i},")]
    return Reply(chunks=[*items, chunk(FT_MODEL, finish="stop"), b"data: [DONE]\n\n"])


async def one_stream(http: httpx.AsyncClient, leave_after: int | None) -> list[str] | None:
    body = {"model": "maid", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    parts: list[str] = []
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                parts.append("[DONE]")
                break
            event = json.loads(line[6:])
            assert event["model"] == "maid"
            if event["choices"] and event["choices"][0]["delta"].get("content"):
                parts.append(event["choices"][0]["delta"]["content"])
            if leave_after is not None and len(parts) >= leave_after:
                return None  # hang up mid-stream
    return parts


def test_hundreds_of_streams_with_random_hang_ups(proxy, fake):
    rng = random.Random(7)
    plan = [rng.randint(1, 4) if rng.random() < 0.3 else None for _ in range(STREAMS)]
    fake.enqueue(*(script() for _ in range(STREAMS)))

    async def run() -> list[list[str] | None]:
        limits = httpx.Limits(max_connections=STREAMS + 10)
        async with proxy.async_http(limits=limits, timeout=30) as http:
            return await asyncio.wait_for(asyncio.gather(*(one_stream(http, n) for n in plan)), 60)

    started = time.monotonic()
    results = asyncio.run(run())
    expected = [f"{i}," for i in range(EVENTS)] + ["[DONE]"]
    healthy = [r for r, leave in zip(results, plan, strict=True) if leave is None]
    assert len(healthy) == plan.count(None) > 100
    assert all(r == expected for r in healthy)  # every event, in order, then [DONE]
    leavers = STREAMS - len(healthy)
    deadline = time.monotonic() + 5
    while (len(fake.disconnects) < leavers or proxy.in_flight()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.disconnects) == leavers  # each hang-up reached the upstream
    assert proxy.in_flight() == 0
    assert time.monotonic() - started < 30
