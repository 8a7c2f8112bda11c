"""UpstreamClient's retry rule, with a scripted in-process transport."""

from __future__ import annotations

import httpx
import pytest

from app.config import Upstream, UpstreamSettings
from app.proxy.errors import BadGateway, GatewayTimeout, UpstreamStatusError
from app.proxy.upstream import UpstreamClient, redact


def client_with(*outcomes: object) -> tuple[UpstreamClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(outcomes)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        return outcome

    upstream = Upstream(name="u", settings=UpstreamSettings(base_url="http://up.invalid/v1"))
    return UpstreamClient(upstream, httpx.MockTransport(handler)), seen


async def test_one_retry_after_a_connection_failure():
    client, seen = client_with(httpx.ConnectError("refused"), httpx.Response(200, json={"ok": True}))
    response = await client.post("chat/completions", b"{}", stream=False)
    assert response.status_code == 200
    assert len(seen) == 2


async def test_two_connection_failures_give_502_and_no_more_retries():
    client, seen = client_with(httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    with pytest.raises(BadGateway) as info:
        await client.post("chat/completions", b"{}", stream=False)
    assert info.value.code == "upstream_unreachable"
    assert info.value.headers["x-should-retry"] == "false"
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (httpx.ConnectTimeout("slow"), GatewayTimeout),
        (httpx.RemoteProtocolError("closed"), BadGateway),
        (httpx.Response(500, json={"error": {"message": "boom"}}), UpstreamStatusError),
        (httpx.Response(429, json={"error": {"message": "slow down"}}), UpstreamStatusError),
    ],
)
async def test_no_retry_once_the_request_may_have_reached_the_upstream(outcome, expected):
    client, seen = client_with(outcome)
    with pytest.raises(expected):
        await client.post("chat/completions", b"{}", stream=False)
    assert len(seen) == 1


def test_redact():
    assert redact(b"key sk-1 and sk-1", b"sk-1") == b"key [redacted] and [redacted]"
    assert redact(b"nothing", b"sk-1") == b"nothing"
    assert redact(b"nothing", None) == b"nothing"
