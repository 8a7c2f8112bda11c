"""Prometheus metrics: behind admin keys, counting requests, failovers and errors."""

from __future__ import annotations

import os

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
    assert 'persona_proxy_requests_total{api="chat",kind="chat",route="maid",status="200",stream="no"} 2.0' in text
    assert 'persona_proxy_requests_total{api="chat",kind="chat",route="maid",status="200",stream="yes"} 1.0' in text
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
