"""Client authentication on every route but /health."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import SecretStr

from app.proxy.auth import ProxyKeys, bearer_token

PROTECTED = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/maid"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/redoc"),
    ("HEAD", "/v1/models"),
    ("OPTIONS", "/v1/chat/completions"),
    ("GET", "/"),
    ("GET", "/health/"),
    ("GET", "/HEALTH"),
]
BAD_AUTHORIZATION = [None, "Bearer wrong-key", "Basic abc", "Bearer", "bearer  x", "Bearer wrong-key extra"]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
def test_every_route_needs_a_valid_key(proxy, fake, authorization):
    headers = {"authorization": authorization} if authorization else {}
    with proxy.http() as http:
        http.headers.pop("authorization", None)
        for method, path in PROTECTED:
            resp = http.request(method, path, headers=headers, json=None if method == "GET" else {})
            assert resp.status_code == 401, (method, path)
            assert resp.headers["www-authenticate"] == "Bearer"
            if method != "HEAD":
                error = resp.json()["error"]
                assert error["code"] == "invalid_api_key"
                assert error["type"] == "invalid_request_error"
                assert "wrong-key" not in resp.text
    assert fake.requests == []


def test_health_is_open_and_says_nothing(proxy):
    with proxy.http() as http:
        http.headers.pop("authorization", None)
        resp = http.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_valid_key_works_with_the_sdk(proxy):
    models = proxy.openai().models.list()
    assert [m.id for m in models.data] == ["maid"]


def test_sdk_with_wrong_key_gets_authentication_error(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_several_keys_each_work(make_proxy, fake):
    proxy = make_proxy(env={"TEST_PROXY_KEYS": "first-key-aaaaaaaaaaaa, second-key-bbbbbbbbbbb"}, with_keys=False)
    for key, status in (("first-key-aaaaaaaaaaaa", 200), ("second-key-bbbbbbbbbbb", 200), ("first", 401)):
        with proxy.http() as http:
            assert http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == status


def test_no_keys_on_loopback_serves_without_auth(make_proxy):
    proxy = make_proxy(with_keys=False)
    with proxy.http() as http:
        assert http.get("/v1/models").status_code == 200


def test_proxy_keys_unit():
    keys = ProxyKeys([SecretStr("alpha-key"), SecretStr("beta-key")])
    assert keys.accepts(b"alpha-key") and keys.accepts(b"beta-key")
    assert not keys.accepts(b"alpha-ke") and not keys.accepts(b"") and not keys.accepts(b"alpha-key ")
    assert not ProxyKeys([])


@pytest.mark.parametrize(
    ("header", "token"),
    [(b"Bearer abc", b"abc"), (b"bearer abc", b"abc"), (b"  Bearer   abc ", b"abc"),
     (b"Basic abc", None), (b"Bearer", None), (b"Bearer   ", None), (None, None)],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


ORIGIN = "https://chat.example.com"


def test_cors_answers_preflights_and_marks_answers_for_listed_origins_only(make_proxy):
    proxy = make_proxy(server=f'cors_origins = ["{ORIGIN}"]')
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type"}
    body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, timeout=10) as bare:  # a preflight carries no key
        allowed = bare.options("/v1/chat/completions", headers=preflight)
        other = bare.options("/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    with proxy.http() as http:
        plain = http.post("/v1/chat/completions", json=body, headers={"origin": ORIGIN})
        streamed = http.post("/v1/chat/completions", json={**body, "stream": True}, headers={"origin": ORIGIN})
        foreign = http.post("/v1/chat/completions", json=body, headers={"origin": "https://evil.example"})
        keyless = httpx.post(proxy.url + "/v1/chat/completions", json=body, headers={"origin": ORIGIN})
    for resp in (plain, streamed):
        assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in resp.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in foreign.headers
    assert keyless.status_code == 401  # CORS opens the door to browsers, not to callers without a key


def test_without_cors_origins_no_cors_headers_and_preflights_need_a_key(proxy):
    with httpx.Client(base_url=proxy.url, timeout=10) as bare:
        resp = bare.options("/v1/chat/completions", headers={"origin": ORIGIN,
                                                             "access-control-request-method": "POST"})
    assert resp.status_code == 401 and "access-control-allow-origin" not in resp.headers


def test_a_cors_origin_must_be_an_origin(tmp_path):
    from app.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text('[server]\ncors_origins = ["chat.example.com/app"]\n[upstreams.u]\nbase_url = "http://x/v1"\n'
                    '[routes.r]\nupstream = "u"\nmodel = "m"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is not an origin; write it like https://chat\.example\.com"):
        load_config(path, environ={})
