"""Upstream error statuses and failures as the client sees them."""

from __future__ import annotations

import json

import openai
import pytest

from ..fakes.servers import free_port
from ..fakes.upstream import Reply, error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def post(proxy, body=CHAT):
    with proxy.http() as http:
        return http.post("/v1/chat/completions", json=body)


def test_rate_limit_passes_through_with_its_headers(proxy, fake):
    headers = {"retry-after": "7", "retry-after-ms": "7000", "x-ratelimit-limit-requests": "500",
               "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s",
               "x-request-id": "req_abc", "openai-organization": "org-private", "set-cookie": "a=b"}
    fake.enqueue(error_reply(429, "Rate limit reached", "requests", "rate_limit_exceeded", headers))
    resp = post(proxy)
    assert resp.status_code == 429
    assert resp.json() == {"error": {"message": "Rate limit reached", "type": "requests",
                                     "param": None, "code": "rate_limit_exceeded"}}
    for name in ("retry-after", "retry-after-ms", "x-ratelimit-limit-requests",
                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"):
        assert resp.headers[name] == headers[name]
    assert resp.headers["x-upstream-request-id"] == "req_abc"
    assert "openai-organization" not in resp.headers
    assert "set-cookie" not in resp.headers
    assert len(fake.chat_requests) == 1  # 429 is the client's to retry, not ours


def test_sdk_sees_typed_errors(proxy, fake):
    client = proxy.openai()
    fake.enqueue(error_reply(429, "slow down", code="rate_limit_exceeded"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**CHAT)
    fake.enqueue(error_reply(500, "boom", "server_error"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**CHAT)
    fake.enqueue(error_reply(404, "The model `ft:x` does not exist", code="model_not_found"))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(**CHAT)


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_becomes_502_naming_the_env_var(proxy, fake, status):
    provider_text = f"Incorrect API key provided: {proxy.upstream_key[:8]}****"
    fake.enqueue(error_reply(status, provider_text, code="invalid_api_key"))
    resp = post(proxy)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "upstream_auth_failed"
    assert "TEST_UPSTREAM_KEY" in error["message"] and "'fake'" in error["message"]
    assert "Incorrect API key" not in resp.text and proxy.upstream_key[:8] not in resp.text
    assert resp.headers["x-should-retry"] == "false"


def test_non_json_error_body_is_not_echoed(proxy, fake):
    fake.enqueue(Reply(status=503, body=b"<html>nginx internal 10.0.0.5</html>", content_type="text/html"))
    resp = post(proxy)
    assert resp.status_code == 503
    assert resp.json()["error"]["message"] == "The upstream returned HTTP 503."
    assert "10.0.0.5" not in resp.text


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"error": "model 'llama9' not found"}, "model 'llama9' not found", None),  # Ollama
        ({"detail": "Not Found"}, "Not Found", None),
        ({"error": {"message": "bad", "code": 400, "type": "BadRequestError"}}, "bad", "400"),  # vLLM: int code
    ],
)
def test_other_servers_error_shapes_are_normalised(proxy, fake, body, message, code):
    fake.enqueue(Reply(status=400, body=json.dumps(body).encode()))
    error = post(proxy).json()["error"]
    assert error["message"] == message
    assert error["code"] == code
    assert set(error) == {"message", "type", "param", "code"}


def test_html_with_200_is_a_502_without_echo(proxy, fake):
    fake.enqueue(Reply(body=b"<html>captive portal</html>", content_type="text/html"))
    resp = post(proxy)
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "upstream_invalid_response"
    assert "captive" not in resp.text


def test_redirect_is_a_502(proxy, fake):
    fake.enqueue(Reply(status=302, headers={"location": "http://elsewhere.invalid/"}))
    resp = post(proxy)
    assert resp.status_code == 502
    assert "elsewhere" not in resp.text


def test_unreachable_upstream_is_502_without_host(make_proxy):
    port = free_port()
    proxy = make_proxy(
        '[routes.gone]\nupstream = "gone"\nmodel = "m"\n',
        extra_upstreams=f'[upstreams.gone]\nbase_url = "http://127.0.0.1:{port}/v1"\n',
    )
    resp = post(proxy, {**CHAT, "model": "gone"})
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "upstream_unreachable"
    assert str(port) not in resp.text and "127.0.0.1" not in resp.text
    assert resp.headers["x-should-retry"] == "false"


def test_missing_upstream_key_names_the_variable(make_proxy, fake):
    proxy = make_proxy(env={"TEST_UPSTREAM_KEY": ""})
    resp = post(proxy)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "upstream_key_missing"
    assert "TEST_UPSTREAM_KEY" in error["message"]
    assert fake.chat_requests == []


def test_gzip_from_upstream_reaches_the_client_decoded_and_consistent(proxy, fake):
    import gzip

    from ..fakes.upstream import completion

    raw = json.dumps(completion("ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D")).encode()
    fake.enqueue(Reply(body=gzip.compress(raw), headers={"content-encoding": "gzip"}))
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200
    assert "content-encoding" not in resp.headers
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert resp.json()["model"] == "maid"
