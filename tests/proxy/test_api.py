"""Handlers over a real server: bad input and unknown paths, always in OpenAI's shape."""

from __future__ import annotations

import pytest


def assert_openai_error(resp, status: int, code: str | None = None, param: str | None = None):
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if code is not None:
        assert body["error"]["code"] == code
    if param is not None:
        assert body["error"]["param"] == param
    return body["error"]


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b'{"model": "maid", "messages": [', "invalid_json", None),
        (b'\xff\xfe{"model": "maid"}', "invalid_json", None),
        (b'{"model": "maid", "messages": "hello"}', "invalid_type", "messages"),
        (b'{"model": "maid"}', "missing_required_parameter", "messages"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "missing_required_parameter", "model"),
        (b'{"model": "maid", "messages": [{"role": "user", "content": "x"}], "stream": "1"}', "invalid_type", "stream"),
    ],
)
def test_bad_bodies_are_400_with_param_and_never_echoed(proxy, fake, content, code, param):
    secret_marker = b', "api_key": "sk-do-not-echo"'
    body = content[:-1] + secret_marker + content[-1:] if content.endswith(b"}") else content + secret_marker
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    error = assert_openai_error(resp, 400, code, param)
    assert "detail" not in resp.text and "sk-do-not-echo" not in resp.text
    assert error["type"] == "invalid_request_error"
    assert fake.chat_requests == []


def test_wrong_content_type_is_415(proxy):
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", content=b"model=maid",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert_openai_error(resp, 415, "unsupported_media_type")


def test_missing_content_type_is_accepted_as_json(proxy, fake):
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions",
                         content=b'{"model": "maid", "messages": [{"role": "user", "content": "x"}]}')
    assert resp.status_code == 200


def test_oversized_bodies_are_413_declared_or_chunked(make_proxy, fake):
    proxy = make_proxy(server="max_body_bytes = 2048")
    big = b'{"model": "maid", "messages": [{"role": "user", "content": "' + b"x" * 4096 + b'"}]}'

    def chunked():
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    with proxy.http() as http:
        declared = http.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
        streamed = http.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
        small = http.post("/v1/chat/completions",
                          json={"model": "maid", "messages": [{"role": "user", "content": "x"}]})
    assert_openai_error(declared, 413, "payload_too_large")
    assert_openai_error(streamed, 413, "payload_too_large")
    assert small.status_code == 200
    assert len(fake.chat_requests) == 1


def test_unknown_path_and_wrong_method(proxy):
    with proxy.http() as http:
        assert_openai_error(http.get("/v1/embeddings"), 404, "not_found")
        assert_openai_error(http.get("/v1/chat/completions"), 405, "method_not_allowed")
        assert_openai_error(http.get("/docs"), 404)
        assert_openai_error(http.get("/openapi.json"), 404)
