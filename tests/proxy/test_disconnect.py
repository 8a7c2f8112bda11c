"""A client that hangs up cancels the upstream request promptly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from ..conftest import FT_MODEL
from ..fakes.upstream import Gate, Reply, chunk

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


async def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def test_disconnect_mid_stream_cancels_upstream_within_a_second(proxy, fake):
    never = Gate(timeout=15)
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "first", role="assistant"), never, chunk(FT_MODEL, "never")]))
    async with proxy.async_http() as http:
        async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
            async for line in resp.aiter_lines():
                if "first" in line:
                    break
        hung_up = time.monotonic()
    assert await wait_for(lambda: fake.disconnects, timeout=3), "upstream never saw the hang-up"
    assert fake.disconnects[0] - hung_up < 1.0
    never.open()


async def test_disconnect_while_waiting_for_a_non_stream_answer_cancels_upstream(proxy, fake):
    held = Gate(timeout=15)
    fake.enqueue(Reply(body=b"{}", hold=held))
    async with proxy.async_http() as http:
        request = asyncio.ensure_future(http.post("/v1/chat/completions", json=CHAT))
        assert await wait_for(lambda: fake.chat_requests, timeout=3)
        request.cancel()  # closes the client's connection
        hung_up = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await request
    assert await wait_for(lambda: fake.disconnects, timeout=3), "upstream never saw the hang-up"
    assert fake.disconnects[0] - hung_up < 1.0
    held.open()


async def test_proxy_keeps_serving_after_many_hang_ups(proxy, fake):
    for _ in range(20):
        fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "x", role="assistant"), Gate(timeout=5)]))
    async with proxy.async_http() as http:
        for _ in range(20):
            async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
                async for _line in resp.aiter_lines():
                    break
    assert await wait_for(lambda: len(fake.disconnects) == 20, timeout=5)
    async with proxy.async_http() as http:
        resp = await http.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200 and resp.json()["model"] == "maid"
