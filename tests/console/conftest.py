"""A proxy with its console, as ``serve`` runs it: a real server on loopback with real fake upstreams.

Routes: ``maid`` on the fake upstream (a training set, a canary and a shadow, every reply measured),
``maid-demo`` on the built-in demo, ``secret-route`` that only the ``family`` client may use. Clients:
``friends`` (limits, per-user limits) and ``family``; one admin key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from ..conftest import Proxy
from ..fakes.styles import MAID, SAMPLE, route, table_rows

CANARY = '[[routes.maid.canary]]\nupstream = "canary"\nmodel = "gpt-next"\nshare = 0.5\n'
SHADOW = '[[routes.maid.shadow]]\nupstream = "shadow"\nmodel = "open-maid"\n'
PERSONA_PROMPT = "莉莉是主人最可愛的女僕"  # a persona prompt no key holder may ever see
ROUTES = f"""
[fidelity]
sample = 1.0
[prices."gpt-next"]
input = 0.5
output = 2.0
{route(canary=CANARY, shadow=SHADOW, extra=f'dataset = "{SAMPLE}"')}
[routes.maid-demo]
upstream = "demo"
model = "demo-maid"
system_prompt = "{PERSONA_PROMPT}"
[routes.secret-route]
upstream = "demo"
model = "demo-secret"
shutdown_date = "2027-01-14"
[clients.friends]
key_env = "FRIEND_KEYS"
routes = ["maid", "maid-demo"]
rpm = 600
budget_usd = 5
[clients.friends.per_user]
rpm = 100
[clients.family]
key_env = "FAMILY_KEYS"
"""


@dataclass
class Console:
    proxy: Proxy
    admin_key: str
    friend_key: str
    family_key: str

    @property
    def url(self) -> str:
        return self.proxy.url

    def get(self, path: str, key: str | None, **params: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=10)

    def post(self, path: str, key: str | None, **options: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.url + path, headers=headers, timeout=10, **options)  # type: ignore[arg-type]

    def traffic(self, tmp_path) -> None:
        """Chats as Open WebUI sends them, from both clients: usage rows, fidelity rows, then both written."""
        for i in range(8):
            key = self.friend_key if i % 2 else self.family_key
            response = httpx.post(self.url + "/v1/chat/completions", timeout=10, headers={
                "authorization": f"Bearer {key}", "x-openwebui-chat-id": f"chat-{i}",
                "x-openwebui-user-id": f"user-{i % 3}"},
                json={"model": "maid", "messages": [{"role": "user", "content": "早安"}]})
            assert response.status_code == 200, response.text
        path = tmp_path / "persona-proxy-usage.sqlite3"
        table_rows(path, "usage", 16)  # eight served, eight shadowed
        table_rows(path, "fidelity", 16)


@pytest.fixture
def console(succession_proxy: Callable[..., Proxy], tmp_path) -> Console:
    keys = {name: f"pp-{name}-" + secrets.token_hex(12) for name in ("admin", "friend", "family")}
    proxy = succession_proxy(
        ROUTES, server='admin_keys_env = "TEST_ADMIN_KEYS"', extra_upstreams='[upstreams.demo]\nkind = "demo"\n',
        env={"TEST_ADMIN_KEYS": keys["admin"], "FRIEND_KEYS": keys["friend"], "FAMILY_KEYS": keys["family"]})
    return Console(proxy, keys["admin"], keys["friend"], keys["family"])


__all__ = ["MAID", "PERSONA_PROMPT", "Console"]
