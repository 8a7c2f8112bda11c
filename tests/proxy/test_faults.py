"""Upstream faults: timeouts, stalls, refused and black-holed connections, a full pool."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from ..conftest import FT_MODEL
from ..fakes.servers import black_hole
from ..fakes.upstream import Gate, Reply, chunk

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def timeouts(**values: float) -> str:
    return "\n".join(f"{k} = {v}" for k, v in values.items())


def test_slow_headers_are_504_and_the_upstream_request_is_dropped(make_proxy, fake):
    proxy = make_proxy(upstream=timeouts(first_byte_timeout=0.3))
    held = Gate(timeout=10)
    fake.enqueue(Reply(body=b"{}", hold=held))
    started = time.monotonic()
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json=CHAT)
    elapsed = time.monotonic() - started
    assert resp.status_code == 504
    assert resp.json()["error"]["code"] == "upstream_timeout"
    assert "0.3 s" in resp.json()["error"]["message"]
    assert 0.25 < elapsed < 2
    deadline = time.monotonic() + 3
    while not fake.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnects, "the upstream request was not closed"
    held.open()


def test_stall_mid_stream_ends_with_an_error_event(make_proxy, fake):
    proxy = make_proxy(upstream=timeouts(idle_timeout=0.3))
    never = Gate(timeout=10)
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "first", role="assistant"), never, chunk(FT_MODEL, "late")]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "first"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_timeout" and error["type"] == "server_error"
    assert "[DONE]" not in text and "late" not in text
    never.open()


def test_black_holed_connect_is_504_within_the_connect_timeout(make_proxy):
    with black_hole() as port:
        proxy = make_proxy(
            '[routes.hole]\nupstream = "hole"\nmodel = "m"\n',
            extra_upstreams=f'[upstreams.hole]\nbase_url = "http://127.0.0.1:{port}/v1"\nconnect_timeout = 0.3\n',
        )
        started = time.monotonic()
        with proxy.http() as http:
            resp = http.post("/v1/chat/completions", json={**CHAT, "model": "hole"})
        elapsed = time.monotonic() - started
    assert resp.status_code == 504
    assert "did not accept a connection within 0.3 s" in resp.json()["error"]["message"]
    assert elapsed < 2


def test_full_pool_is_a_fast_503_with_retry_after(make_proxy, fake):
    proxy = make_proxy(upstream=timeouts(max_connections=1, pool_timeout=0.2))
    held = Gate(timeout=10)
    fake.enqueue(Reply(body=json.dumps({"id": "x", "model": FT_MODEL, "object": "chat.completion",
                                        "choices": []}).encode(), hold=held))

    async def scenario() -> tuple[httpx.Response, httpx.Response, float]:
        async with proxy.async_http() as http:
            first = asyncio.ensure_future(http.post("/v1/chat/completions", json=CHAT))
            while not fake.chat_requests:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            second = await http.post("/v1/chat/completions", json=CHAT)
            elapsed = time.monotonic() - started
            held.open()
            return await first, second, elapsed

    first, second, elapsed = asyncio.run(scenario())
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert second.json()["error"]["code"] == "overloaded"
    assert elapsed < 1.5
    assert first.status_code == 200
    assert proxy.in_flight() == 0


def test_500_and_503_pass_through_without_a_proxy_retry(proxy, fake):
    from ..fakes.upstream import error_reply

    for status in (500, 503):
        fake.enqueue(error_reply(status, "upstream trouble", "server_error", headers={"retry-after": "2"}))
        with proxy.http() as http:
            resp = http.post("/v1/chat/completions", json=CHAT)
        assert resp.status_code == status
        assert resp.headers["retry-after"] == "2"
    assert len(fake.chat_requests) == 2


@pytest.mark.parametrize("scenario", ["errors", "disconnects"])
def test_pool_returns_to_zero_after_hundreds_of_failures(proxy, fake, scenario):
    from ..fakes.upstream import error_reply

    async def run() -> None:
        async with proxy.async_http() as http:
            for _batch in range(10):
                tasks = []
                for _ in range(20):
                    if scenario == "errors":
                        fake.enqueue(error_reply(500, "boom", "server_error"))
                        tasks.append(http.post("/v1/chat/completions", json=CHAT))
                    else:
                        fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "x", role="assistant"), Gate(timeout=3)]))
                        tasks.append(_read_first_event_then_leave(http))
                await asyncio.gather(*tasks)

    asyncio.run(run())
    deadline = time.monotonic() + 3
    while proxy.in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.in_flight() == 0
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


async def _read_first_event_then_leave(http: httpx.AsyncClient) -> None:
    async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                return
