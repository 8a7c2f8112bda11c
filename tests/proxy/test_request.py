"""Checking client chat bodies: every problem is a 400 naming its param."""

from __future__ import annotations

import json

import pytest

from app.proxy.errors import InvalidRequest
from app.proxy.request import parse_chat_request

OK = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def problem(raw: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw)
    return info.value


def test_valid_body_is_returned_as_parsed():
    assert parse_chat_request(json.dumps({**OK, "x": [1]}).encode()) == {**OK, "x": [1]}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": OK["messages"]}, "model", "missing_required_parameter"),
        ({**OK, "model": 3}, "model", "invalid_type"),
        ({**OK, "model": ""}, "model", "invalid_type"),
        ({"model": "maid"}, "messages", "missing_required_parameter"),
        ({**OK, "messages": "hi"}, "messages", "invalid_type"),
        ({**OK, "messages": []}, "messages", "invalid_value"),
        ({**OK, "messages": ["hi"]}, "messages[0]", "invalid_type"),
        ({**OK, "messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter"),
        ({**OK, "messages": [OK["messages"][0], {"role": "wizard"}]}, "messages[1].role", "invalid_value"),
        ({**OK, "stream": "yes"}, "stream", "invalid_type"),
    ],
)
def test_shape_problems_name_the_param(body, param, code):
    err = problem(json.dumps(body).encode())
    assert (err.status, err.param, err.code) == (400, param, code)


@pytest.mark.parametrize("raw", [b"", b"   ", b"{", b"{'model': 1}", b"[1]", b'"text"', b"\xff\xfe{}"])
def test_unparseable_bodies(raw):
    err = problem(raw)
    assert err.status == 400
    assert err.code in ("invalid_json", "invalid_type")


def test_messages_never_echo_the_body():
    err = problem(b'{"model": "maid", "api_key": "sk-secret-value", ')
    assert "sk-secret-value" not in err.message
