"""Client authentication with proxy keys.

Checked in a pure ASGI middleware on the routed path (``scope["path"]``),
never on a URL rebuilt from the Host header, so every route, alias and
method is covered; only ``/health`` is open.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..clients.keys import ProxyKeys
from .errors import AuthenticationFailed, log_rejected, render

__all__ = ["CLIENT_SCOPE", "KEY_ID_SCOPE", "ProxyKeyAuth", "ProxyKeys", "bearer_token"]

# /metrics checks the admin key itself, and the console (its page and data) admin and client keys itself.
OPEN_PATHS = frozenset({"/health", "/metrics", "/console"})
OPEN_PREFIX = "/console/"
KEY_ID_SCOPE = "persona_proxy.key_id"
CLIENT_SCOPE = "persona_proxy.client"


def bearer_token(header: bytes | None) -> bytes | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


class ProxyKeyAuth:
    """ASGI middleware answering 401 in OpenAI's shape to calls without a valid key."""

    def __init__(self, app: ASGIApp, keys: ProxyKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No keys at all is allowed only on a loopback address (checked when the config loads).
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS \
                or scope["path"].startswith(OPEN_PREFIX):
            return await self.app(scope, receive, send)
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        token = bearer_token(header)
        if token is None:
            error = AuthenticationFailed(
                "Missing API key: send your persona-proxy key as 'Authorization: Bearer <key>'."
            )
        elif (identity := self.keys.identify(token)) is None:
            # The presented key is never echoed, not even masked.
            error = AuthenticationFailed("Incorrect API key provided for persona-proxy.")
        else:
            scope[KEY_ID_SCOPE], scope[CLIENT_SCOPE] = identity
            return await self.app(scope, receive, send)
        error.headers["www-authenticate"] = "Bearer"
        log_rejected(scope["method"], scope["path"], error)
        await render(error)(scope, receive, send)
