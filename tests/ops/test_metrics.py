"""Prometheus metrics: behind admin keys, counting requests, failovers and errors."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from ..conftest import FT_MODEL
from ..fakes.upstream import error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def backup_fake():
    from ..fakes.upstream import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_metrics_need_an_admin_key_and_count_what_happened(make_proxy, fake, backup_fake):
    admin = "admin-canary-" + os.urandom(8).hex()
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"

[[routes.maid.fallbacks]]
upstream = "backup"
model = "gpt-4.1-mini"
""", env={"PERSONA_PROXY_ADMIN_KEYS": admin},
                       extra_upstreams=f'[upstreams.backup]\nbase_url = "{backup_fake.url}/v1"\n')
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=CHAT)
        http.post("/v1/chat/completions", json={**CHAT, "stream": True})
        fake.enqueue(error_reply(500, "down", "server_error"))
        http.post("/v1/chat/completions", json=CHAT)
        fake.enqueue(error_reply(400, "bad", code="invalid_value"))
        http.post("/v1/chat/completions", json=CHAT)
        assert http.get("/metrics").status_code == 401  # a client key is not an admin key
        http.headers.pop("authorization")
        assert http.get("/metrics").status_code == 401
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {admin}"})
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    chat = 'persona_proxy_requests_total{api="chat",client="",kind="chat",route="maid",status="200"'
    assert chat + ',stream="no"} 2.0' in text and chat + ',stream="yes"} 1.0' in text
    assert 'persona_proxy_errors_total{code="invalid_value",route="maid"} 1.0' in text
    assert 'persona_proxy_failovers_total{route="maid"} 1.0' in text
    assert 'persona_proxy_tokens_total{route="maid",type="prompt"} 15.0' in text  # the stream reported usage too
    assert 'persona_proxy_streams_in_flight{route="maid"} 0.0' in text
    assert "persona_proxy_time_to_first_byte_seconds_bucket" in text
    for secret in (admin, proxy.client_key, proxy.upstream_key):
        assert secret not in text


def test_metrics_are_absent_without_admin_keys(proxy):
    with proxy.http() as http:
        assert http.get("/metrics").status_code == 404


def test_with_workers_every_requests_reaches_the_shared_metrics(tmp_path, fake):
    from ..fakes.servers import serve_process

    admin = "admin-canary-" + os.urandom(8).hex()
    config = tmp_path / "config.toml"
    config.write_text(f"""
[server]
check_models = false

[upstreams.fake]
base_url = "{fake.url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
""", encoding="utf-8")
    (tmp_path / "prom").mkdir()
    env = {**os.environ, "PERSONA_PROXY_API_KEYS": "", "PERSONA_PROXY_ADMIN_KEYS": admin,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "PERSONA_PROXY_DATA_DIR": str(tmp_path / "data")}
    line = 'persona_proxy_requests_total{api="chat",client="",kind="chat",route="maid",status="200",stream="no"} 20.0'
    with serve_process(["--config", str(config), "--workers", "2"], env=env) as (_, base):
        for _ in range(20):  # a connection each, so both workers serve some
            assert httpx.post(base + "/v1/chat/completions", json=CHAT, timeout=10).status_code == 200
        # Each worker counts its requests in batches. The scrapes share one connection, so one
        # worker answers them all: it counts its own requests at once, the other's must arrive
        # with that worker's next batch (a second).
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {admin}"}) as scraper:
            while True:
                text = scraper.get("/metrics").text
                if line in text or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    assert line in text, text
    assert len(list((tmp_path / "prom").glob("counter_*.db"))) == 2  # both workers counted requests
