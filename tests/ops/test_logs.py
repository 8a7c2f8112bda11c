"""Request ids on responses, upstream requests and log lines; JSON logs."""

from __future__ import annotations

import io
import json
import logging

import httpx
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


def test_every_refused_request_leaves_one_line_with_status_code_and_request_id(proxy, log_lines):
    with proxy.http() as http:
        answers = [
            http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer wrong-key-canary"}),
            http.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}),
            http.post("/v1/chat/completions", json={**CHAT, "model": "nobody"}),
            http.post("/v1/chat/completions", content=b"x" * (9 * 1024 * 1024),
                      headers={"content-type": "application/json"}),
            http.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"}),
            http.get("/v1/nothing-here"),
        ]
    refused = [line for line in log_lines() if line["message"].startswith("rejected ")]
    assert [(a.status_code, a.headers["x-request-id"]) for a in answers] == [
        (line["status"], line["request_id"]) for line in refused]
    assert [line["status"] for line in refused] == [401, 400, 404, 413, 415, 404]
    assert refused[2]["code"] == "model_not_found" and refused[0]["code"] == "invalid_api_key"
    assert "wrong-key-canary" not in json.dumps(log_lines())


def test_json_access_lines_have_their_fields_as_json(proxy, fake, log_lines):
    from ..fakes.upstream import Reply, completion

    fake.enqueue(Reply(body=json.dumps(completion("m")).encode()))
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=CHAT, headers={"x-openwebui-user-id": "u-1",
                                                               "x-openwebui-chat-id": "c-9"})
    (line,) = [line for line in log_lines() if line.get("kind") == "chat"]
    assert (line["route"], line["status"], line["stream"], line["user"], line["chat"]) == ("maid", 200, False,
                                                                                         "u-1", "c-9")
    assert line["target"].startswith("fake/") and line["duration_ms"] >= 0
    assert (line["prompt_tokens"], line["completion_tokens"]) == (5, 2)


def test_debug_shows_the_upstream_body_with_the_persona_redacted_and_cut_short(proxy, fake, caplog):
    caplog.set_level(logging.DEBUG, logger="app.proxy.serving")
    long = "很長" * 500
    with proxy.http() as http:
        http.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": long}],
                                                "metadata": {"access_token": "tok-canary"}})
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("upstream request")]
    assert "你是一個可愛的女僕機器人" in line and '"temperature":0.8' in line  # persona and params applied
    assert "(+800 chars)" in line and long not in line
    assert "tok-canary" not in line and "[redacted]" in line


def test_a_stream_that_fails_before_its_first_byte_is_logged_as_a_stream(proxy, fake, log_lines):
    fake.enqueue(error_reply(500, "boom", "server_error"))
    with proxy.http() as http:
        http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    (line,) = [line for line in log_lines() if line.get("kind") == "chat"]
    assert line["stream"] is True and line["status"] == 500


def test_the_text_line_keeps_its_shape_with_the_timestamp_cached_per_second():
    import logging
    import re

    from app.ops.logs import TextFormatter

    formatter = TextFormatter()
    lines = []
    for created in (1764633600.123, 1764633600.987, 1764633601.004):
        record = logging.LogRecord("app.proxy.serving", logging.INFO, "", 0, "chat %s", ("route=maid",), None)
        record.created, record.msecs, record.request_id = created, round(created % 1 * 1000), "req_1"
        lines.append(formatter.format(record))
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert all(re.fullmatch(stamp + r" INFO app\.proxy\.serving \[req_1\] chat route=maid", line) for line in lines)
    assert [line[17:23] for line in lines] == ["00,123", "00,987", "01,004"]


def test_no_access_line_is_lost_when_the_server_stops(tmp_path, fake):
    import os
    import signal

    from ..fakes.servers import serve_process

    config = tmp_path / "config.toml"
    config.write_text(f'[server]\ncheck_models = false\n[upstreams.fake]\nbase_url = "{fake.url}/v1"\n'
                      '[routes.maid]\nupstream = "fake"\nmodel = "m"\n', encoding="utf-8")
    env = {**os.environ, "PERSONA_PROXY_API_KEYS": "", "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
    with serve_process(["--config", str(config)], env=env) as (proc, base):
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(200):
                assert client.post("/v1/chat/completions", json={**body, "stream": i % 2 == 0}).status_code == 200
        proc.send_signal(signal.SIGTERM)
    access = [line for line in proc.output.splitlines() if " chat route=maid " in line]  # type: ignore[attr-defined]
    assert len(access) == 200
