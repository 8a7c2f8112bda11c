"""Clients cannot steer the upstream, headers do not leak, secrets never show."""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from ..conftest import FT_MODEL
from ..fakes.upstream import Gate, Reply, chunk, error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def test_client_cannot_choose_the_upstream_url_or_key(proxy, fake):
    body = {
        **CHAT,
        "api_base": "http://attacker.invalid/v1",
        "base_url": "http://attacker.invalid/v1",
        "api_key": "sk-attacker",
        "organization": "org-attacker",
        "extra_body": {"api_base": "http://attacker.invalid", "keep": 1},
        "metadata": {"nested": [{"api_key": "sk-deep", "base_url": "http://deep.invalid"}]},
    }
    headers = {"x-forwarded-host": "attacker.invalid", "forwarded": "host=attacker.invalid",
               "api-key": "sk-attacker", "openai-organization": "org-attacker",
               "x-api-base": "http://attacker.invalid"}
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json=body, headers=headers)
    assert resp.status_code == 200
    assert len(fake.requests) == 1  # only the configured fake was ever contacted
    seen = fake.chat_requests[0]
    assert "attacker" not in seen.body.decode() and "sk-deep" not in seen.body.decode()
    assert seen.json["extra_body"] == {"keep": 1}
    assert seen.json["metadata"] == {"nested": [{}]}
    assert seen.headers["host"] == fake.url.removeprefix("http://")
    assert seen.headers["authorization"] == f"Bearer {proxy.upstream_key}"
    assert not any("attacker" in v for v in seen.headers.values())


def test_hop_by_hop_and_client_headers_are_not_forwarded(proxy, fake):
    headers = {"connection": "keep-alive, x-hop", "x-hop": "1", "keep-alive": "timeout=5", "te": "trailers",
               "upgrade": "h2c", "proxy-connection": "keep-alive", "trailer": "x-t",
               "x-openwebui-user-id": "u1", "cookie": "session=1", "accept-encoding": "gzip, br"}
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=CHAT, headers=headers)
    seen = fake.chat_requests[0].headers
    for name in ("x-hop", "keep-alive", "te", "upgrade", "proxy-connection", "trailer", "x-openwebui-user-id",
                 "cookie"):
        assert name not in seen, name
    assert seen["accept-encoding"] == "identity"


def test_oversized_headers_get_a_4xx_and_the_proxy_lives_on(proxy):
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        status = sock.recv(64)
    assert status.startswith((b"HTTP/1.1 4", b""))  # a 4xx, or the connection refused outright
    with proxy.http() as http:
        assert http.get("/v1/models").status_code == 200


def test_canary_secrets_never_appear_in_responses_or_logs(make_proxy, fake, caplog):
    caplog.set_level(logging.DEBUG)
    proxy = make_proxy(upstream="first_byte_timeout = 0.3\nidle_timeout = 0.3")
    canaries = [proxy.upstream_key, proxy.client_key]
    seen: list[str] = []

    def record(resp: httpx.Response) -> None:
        seen.append(f"{resp.status_code} {dict(resp.headers)} {resp.text}")

    # The upstream echoes our key back, as real providers partly do.
    echo = f"Incorrect API key provided: {proxy.upstream_key}"
    scripted = [
        error_reply(401, echo, code="invalid_api_key"),
        error_reply(500, echo, "server_error"),
        error_reply(429, echo, code="rate_limit_exceeded", headers={"retry-after": "1"}),
        Reply(body=f"<html>{proxy.upstream_key}</html>".encode(), content_type="text/html"),
        Reply(chunks=[chunk(FT_MODEL, "a"), f"data: <{proxy.upstream_key}>\n\n".encode()]),
        Reply(chunks=[chunk(FT_MODEL, "a"), Gate(timeout=2)]),
        Reply(body=b"{}", hold=Gate(timeout=2)),
    ]
    fake.enqueue(*scripted)
    with proxy.http() as http:
        for _ in scripted:
            record(http.post("/v1/chat/completions", json={**CHAT, "stream": True}))
        for body in (b"{", b"\xff", json.dumps({**CHAT, "model": "nope"}).encode(), b"[]"):
            record(http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"}))
        record(http.post("/v1/chat/completions", content=b"x" * 10, headers={"content-type": "text/plain"}))
        for key in ("wrong-key", proxy.upstream_key):
            record(http.get("/v1/models", headers={"authorization": f"Bearer {key}"}))
            record(http.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}))
        record(http.get("/v1/models"))
        record(http.get("/v1/models/maid"))
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert len(seen) == len(scripted) + 11
    for canary in canaries:
        assert all(canary not in text for text in seen)
        assert canary not in logs
    assert len(caplog.records) > 5  # the scenarios were logged, just not the secrets


@pytest.mark.parametrize("depth", [254, 300, 1024])
@pytest.mark.parametrize("where", ["extra", "content"])
def test_deeply_nested_bodies_are_a_400_with_no_traceback(proxy, fake, caplog, depth, where):
    nested = "[" * depth + "]" * depth
    if where == "extra":
        raw = '{"model": "maid", "messages": [{"role": "user", "content": "hi"}], "x": ' + nested + "}"
    else:
        raw = '{"model": "maid", "messages": [{"role": "user", "content": ' + nested + "}]}"
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_json"
        assert "nested too deeply" in resp.json()["error"]["message"]
        assert http.post("/v1/chat/completions", json={"model": "maid", "messages": [
            {"role": "user", "content": "still here"}]}).status_code == 200
    assert "Traceback" not in caplog.text and fake.chat_requests[-1].json["messages"][-1]["content"] == "still here"


def test_a_deep_but_serializable_body_still_passes(proxy, fake):
    nested = "[" * 200 + "]" * 200
    raw = '{"model": "maid", "messages": [{"role": "user", "content": "hi"}], "x": ' + nested + "}"
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 200 and fake.chat_requests[0].body.count(b"[") >= 200
