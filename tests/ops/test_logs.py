"""Request ids on responses, upstream requests and log lines; JSON logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from app.ops.logs import JsonFormatter, RequestIdFilter, new_request_id

from ..fakes.upstream import error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_every_answer_has_a_request_id_that_also_went_upstream(proxy, fake, log_lines):
    with proxy.http() as http:
        ok = http.post("/v1/chat/completions", json=CHAT)
        streamed = http.post("/v1/chat/completions", json={**CHAT, "stream": True})
        fake.enqueue(error_reply(500, "boom", "server_error"))
        failed = http.post("/v1/chat/completions", json=CHAT)
        invalid = http.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"})
    ids = [r.headers["x-request-id"] for r in (ok, streamed, failed, invalid)]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == 4
    assert [r.headers["x-request-id"] for r in fake.chat_requests] == ids[:3]
    lines = [line for line in log_lines() if line["logger"] == "app.proxy.serving"]
    assert [line["request_id"] for line in lines] == ids[:3]
    assert all(line["message"].startswith("chat route=maid") for line in lines)


def test_a_clients_own_plain_request_id_is_kept(proxy, fake):
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "client-42"})
        odd = http.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "bad id\u00e9".encode()})
    assert resp.headers["x-request-id"] == "client-42"
    assert fake.chat_requests[0].headers["x-request-id"] == "client-42"
    assert odd.headers["x-request-id"].startswith("req_")


def test_new_request_id():
    assert new_request_id(b"abc-1") == "abc-1"
    assert new_request_id(b"x" * 65).startswith("req_")
    assert new_request_id(b"a\nb").startswith("req_")
    assert new_request_id(None) != new_request_id(None)
