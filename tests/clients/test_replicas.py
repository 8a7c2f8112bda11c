"""Limits shared by real proxy processes (one, and one with ``--workers 2``) through one real Redis.

Also the store failing under them: Redis stopped mid-run in both failure
modes and started again, and a Redis that accepts no connection at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.clients.demand import prompt_tokens
from app.tuning.tokens import load_counter

from ..clock import fresh_minute
from ..fakes.servers import black_hole, serve_process
from ..fakes.styles import FT_MODEL
from ..fakes.upstream import FakeOpenAI, Gate, Reply, completion

KEY = "replica-key-" + "e" * 24


def write_config(path: Path, fake: FakeOpenAI, limits: str, client: str) -> Path:
    path.write_text(f"""
[server]
check_models = false

[upstreams.fake]
base_url = "{fake.url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"

[prices."{FT_MODEL}"]
input = 1000.0
output = 1000.0

[limits]
redis_url_env = "TEST_REDIS_URL"
{limits}

[clients.app]
key_env = "TEST_APP_KEYS"
{client}
""", encoding="utf-8")
    return path


@contextlib.contextmanager
def replicas(tmp_path: Path, fake: FakeOpenAI, redis_url: str, *, limits: str = "", client: str = "",
             ) -> Iterator[list[tuple[object, str]]]:
    """Two replicas on one config and one Redis: a single process, and one with two workers."""
    config = write_config(tmp_path / "config.toml", fake, limits, client)
    env = {**os.environ, "TEST_REDIS_URL": redis_url, "TEST_APP_KEYS": KEY,
           "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    with serve_process(["--config", str(config)], env=env) as one, \
            serve_process(["--config", str(config), "--workers", "2"], env=env) as two:
        yield [one, two]


async def burst(bases: list[str], count: int, **extra: object) -> list[httpx.Response]:
    """``count`` requests at once, spread over the replicas in turn."""
    clients = [httpx.AsyncClient(base_url=b, timeout=30, headers={"authorization": f"Bearer {KEY}"},
                                 limits=httpx.Limits(max_connections=count)) for b in bases]
    body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}], **extra}
    try:
        return await asyncio.gather(*(clients[i % len(clients)].post("/v1/chat/completions", json=body)
                                      for i in range(count)))
    finally:
        for client in clients:
            await client.aclose()


def test_rpm_holds_exactly_across_two_replicas_and_two_workers(tmp_path, fake, redis_server):
    with replicas(tmp_path, fake, redis_server.url, client="rpm = 60") as procs:
        fresh_minute(room=8)
        answers = asyncio.run(burst([base for _, base in procs], 200))
    for proc, _ in procs:
        assert "limits store unavailable" not in proc.output, proc.output[-3000:]  # type: ignore[attr-defined]
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 60 and statuses.count(429) == 140
    # Every admitted answer saw a different count: 59 left, 58 left, ... 0 left.
    left = sorted(int(a.headers["x-ratelimit-remaining-requests"]) for a in answers if a.status_code == 200)
    assert left == list(range(60))
    assert len(fake.chat_requests) == 60
    for proc, _ in procs:
        assert "limits store unavailable" not in proc.output  # type: ignore[attr-defined]


def test_a_burst_is_load_not_an_outage(tmp_path, fake, redis_server):
    with replicas(tmp_path, fake, redis_server.url, client="rpm = 100000\ntpm = 100000000") as procs:
        fresh_minute(room=8)
        answers = asyncio.run(burst([base for _, base in procs], 120))
    assert [a.status_code for a in answers] == [200] * 120
    # Counted, every one: the store answered them all (an uncounted answer has no rate-limit headers).
    left = sorted(int(a.headers["x-ratelimit-remaining-requests"]) for a in answers)
    assert left == list(range(100000 - 120, 100000))
    for proc, _ in procs:
        assert "limits store unavailable" not in proc.output  # type: ignore[attr-defined]


def test_a_budget_fits_ten_of_fifty_concurrent_requests_across_replicas(tmp_path, fake, redis_server):
    # This route has no persona: a request's worst case is its message and its max_tokens.
    worst = prompt_tokens({"messages": [{"role": "user", "content": "hi"}]}, load_counter()) + 60
    with replicas(tmp_path, fake, redis_server.url, client=f"budget_usd = {10.5 * worst * 0.001}") as procs:
        hold = Gate()
        fake.enqueue(*(Reply(body=json.dumps(completion(FT_MODEL)).encode(), hold=hold) for _ in range(50)))

        async def run() -> list[httpx.Response]:
            async def release() -> None:
                await asyncio.sleep(1.0)
                hold.open()

            answers, _ = await asyncio.gather(burst([base for _, base in procs], 50, max_tokens=60), release())
            return answers

        answers = asyncio.run(run())
    statuses = [a.status_code for a in answers]
    for proc, _ in procs:
        assert "limits store unavailable" not in proc.output, proc.output[-3000:]  # type: ignore[attr-defined]
    assert statuses.count(200) == 10 and statuses.count(429) == 40


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_stopped_mid_run_then_started_again(tmp_path, fake, redis_server, mode):
    with replicas(tmp_path, fake, redis_server.url, limits=f'on_store_error = "{mode}"', client="rpm = 1000") \
            as procs:
        bases = [base for _, base in procs]
        assert all(a.status_code == 200 for a in asyncio.run(burst(bases, 4)))
        redis_server.stop()
        started = time.monotonic()
        down = asyncio.run(burst(bases, 20))
        assert time.monotonic() - started < 5  # never a hang
        if mode == "open":
            assert [a.status_code for a in down] == [200] * 20
            assert not any("x-ratelimit-remaining-requests" in a.headers for a in down)  # served, not counted
        else:
            assert [a.status_code for a in down] == [503] * 20
            assert {a.json()["error"]["code"] for a in down} == {"limits_unavailable"}
        redis_server.start()
        deadline = time.monotonic() + 10
        while True:  # recovery without a restart: counted again within a second or two
            time.sleep(0.5)
            again = asyncio.run(burst(bases, 4))
            if all(a.status_code == 200 and "x-ratelimit-remaining-requests" in a.headers for a in again):
                break
            assert time.monotonic() < deadline, [a.status_code for a in again]
    for proc, _ in procs:
        output = proc.output  # type: ignore[attr-defined]
        assert "limits store unavailable" in output
        # Logged once per interval, not once per request.
        assert output.count("limits store unavailable") <= 3


def test_a_redis_that_never_answers_costs_tens_of_milliseconds(tmp_path, fake):
    with black_hole() as port:
        config = write_config(tmp_path / "config.toml", fake, "", "rpm = 5")
        env = {**os.environ, "TEST_REDIS_URL": f"redis://127.0.0.1:{port}/0", "TEST_APP_KEYS": KEY,
               "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
        with serve_process(["--config", str(config)], env=env) as (proc, base):
            headers = {"authorization": f"Bearer {KEY}"}
            body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
            timings = []
            for _ in range(10):
                started = time.monotonic()
                assert httpx.post(base + "/v1/chat/completions", json=body, headers=headers).status_code == 200
                timings.append(time.monotonic() - started)
        assert max(timings) < 1.0, timings
    assert "Redis (TEST_REDIS_URL) is not reachable" in proc.output  # type: ignore[attr-defined]


def test_a_reload_applies_new_limits_to_the_shared_counters(tmp_path, fake, redis_server):
    with replicas(tmp_path, fake, redis_server.url, client="rpm = 2") as procs:
        (one, base), _ = procs
        fresh_minute(room=8)
        first = asyncio.run(burst([base], 3))
        assert sorted(a.status_code for a in first) == [200, 200, 429]
        write_config(tmp_path / "config.toml", fake, "", "rpm = 4")
        one.send_signal(signal.SIGHUP)  # type: ignore[attr-defined]
        time.sleep(1.0)
        second = asyncio.run(burst([base], 3))
        # The two already counted this minute still count: two more fit under the new limit.
        assert sorted(a.status_code for a in second) == [200, 200, 429]
