"""Fallback targets: failover on each trigger, never on the others, never after the first byte."""

from __future__ import annotations

import json
import logging

import pytest

from ..conftest import FT_MODEL, MAID_PROMPT
from ..fakes.servers import free_port
from ..fakes.upstream import FakeOpenAI, Reply, chunk, error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def backup():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def routes(primary_upstream: str = "fake", extra: str = "") -> str:
    return f"""
[routes.maid]
upstream = "{primary_upstream}"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"
{extra}

[[routes.maid.fallbacks]]
upstream = "backup"
model = "gpt-4.1-mini"
system_prompt_extra = "Always answer as the maid Lily."
"""


def backup_upstream(backup: FakeOpenAI) -> str:
    return f'[upstreams.backup]\nbase_url = "{backup.url}/v1"\n'


def post(proxy, body=CHAT):
    with proxy.http() as http:
        return http.post("/v1/chat/completions", json=body)


@pytest.mark.parametrize(
    "failure",
    [
        error_reply(404, "The model `ft:...` does not exist or you do not have access to it.", code="model_not_found"),
        error_reply(404, "model 'llama-maid' not found"),  # Ollama
        error_reply(404, "The model `ft:maid` does not exist.", "NotFoundError"),  # vLLM
        # LiteLLM's proxy, for a model it does not (or no longer) serve
        error_reply(400, "/chat/completions: Invalid model name passed in model=ft:maid. Call `/v1/models` "
                         "to view available models for your key.", "invalid_request_error", code="400"),
        error_reply(410, "This model has been retired."),
        error_reply(500, "The server had an error", "server_error"),
        error_reply(503, "overloaded", "server_error"),
        error_reply(401, "Incorrect API key"),
    ],
)
def test_fails_over_when_the_target_cannot_answer(make_proxy, fake, backup, failure, caplog):
    caplog.set_level(logging.WARNING)
    proxy = make_proxy(routes(), extra_upstreams=backup_upstream(backup))
    fake.enqueue(failure)
    resp = post(proxy)
    assert resp.status_code == 200
    assert resp.json()["model"] == "maid"
    assert resp.headers["x-persona-target"] == "backup/gpt-4.1-mini"
    sent = backup.chat_requests[0].json
    assert sent["model"] == "gpt-4.1-mini"
    assert sent["messages"][0]["content"] == f"{MAID_PROMPT}\n\nAlways answer as the maid Lily."
    assert "failover route=maid from=fake/" in caplog.text
    app = proxy.server.server.config.app
    assert app.state.chat.failovers["maid"] == 1


def test_fails_over_when_the_primary_is_unreachable(make_proxy, fake, backup):
    port = free_port()
    proxy = make_proxy(routes("gone"), extra_upstreams=backup_upstream(backup)
                       + f'[upstreams.gone]\nbase_url = "http://127.0.0.1:{port}/v1"\n')
    resp = post(proxy)
    assert resp.status_code == 200 and resp.headers["x-persona-target"] == "backup/gpt-4.1-mini"


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (error_reply(400, "messages too long", code="context_length_exceeded"), 400),
        (error_reply(400, "litellm.BadRequestError: temperature must be between 0 and 2 for model=ft:maid"), 400),
        (error_reply(413, "request too large"), 413),
        (error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers={"retry-after": "3"}), 429),
        (error_reply(404, "No such route"), 404),
    ],
)
def test_request_errors_and_rate_limits_are_not_failed_over(make_proxy, fake, backup, failure, status):
    proxy = make_proxy(routes(), extra_upstreams=backup_upstream(backup))
    fake.enqueue(failure)
    resp = post(proxy)
    assert resp.status_code == status
    assert backup.chat_requests == []


def test_rate_limits_fail_over_when_configured(make_proxy, fake, backup):
    proxy = make_proxy(routes(extra="failover_on_rate_limit = true"), extra_upstreams=backup_upstream(backup))
    fake.enqueue(error_reply(429, "Rate limit reached", code="rate_limit_exceeded"))
    assert post(proxy).headers["x-persona-target"] == "backup/gpt-4.1-mini"


def test_no_failover_once_the_stream_started(make_proxy, fake, backup):
    from .test_streaming import _ExplodingChunks

    proxy = make_proxy(routes(), extra_upstreams=backup_upstream(backup))
    fake.enqueue(Reply(chunks=_ExplodingChunks([chunk(FT_MODEL, "Hel", role="assistant")])))
    resp = post(proxy, {**CHAT, "stream": True})
    assert resp.headers["x-persona-target"] == f"fake/{FT_MODEL}"
    last = [line for line in resp.text.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["code"] == "upstream_stream_error"
    assert backup.chat_requests == []


def test_a_retired_primary_is_skipped_afterwards(make_proxy, fake, backup):
    proxy = make_proxy(routes(), extra_upstreams=backup_upstream(backup))
    fake.enqueue(error_reply(404, "The model does not exist", code="model_not_found"))
    for _ in range(3):
        assert post(proxy).status_code == 200
    assert len(fake.chat_requests) == 1  # paid once, then skipped
    assert len(backup.chat_requests) == 3


def test_a_primary_past_its_shutdown_date_is_never_called(make_proxy, fake, backup):
    proxy = make_proxy(routes(extra='shutdown_date = "2020-01-01"'), extra_upstreams=backup_upstream(backup))
    assert post(proxy).headers["x-persona-target"] == "backup/gpt-4.1-mini"
    assert fake.chat_requests == []


def test_the_last_target_failing_returns_its_error(make_proxy, fake, backup):
    proxy = make_proxy(routes(), extra_upstreams=backup_upstream(backup))
    fake.enqueue(error_reply(500, "primary down", "server_error"))
    backup.enqueue(error_reply(503, "backup down", "server_error"))
    resp = post(proxy)
    assert resp.status_code == 503 and resp.json()["error"]["message"] == "backup down"
