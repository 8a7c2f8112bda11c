"""Client authentication with proxy keys.

Checked in a pure ASGI middleware on the routed path (``scope["path"]``),
never on a URL rebuilt from the Host header, so every route, alias and
method is covered; only ``/health`` is open.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import AuthenticationFailed, log_rejected, render

# /metrics checks the admin key itself.
OPEN_PATHS = frozenset({"/health", "/metrics"})
KEY_ID_SCOPE = "persona_proxy.key_id"


def _digest(key: str | bytes) -> bytes:
    raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


class ProxyKeys:
    """The accepted client keys, compared in constant time."""

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self.replace(keys)

    def replace(self, keys: Iterable[SecretStr]) -> None:
        """Swap in a new key set (config reload); one assignment, so never half-updated."""
        # Comparing fixed-length digests keeps timing independent of key length.
        self._digests = tuple(_digest(k.get_secret_value()) for k in keys)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: bytes) -> bool:
        return self.key_id(presented) is not None

    def key_id(self, presented: bytes) -> str | None:
        """A short, stable id of an accepted key (for usage records), or None if it is not accepted."""
        candidate = _digest(presented)
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(candidate, digest)
        return "key-" + candidate.hex()[:10] if ok else None


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
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or not self.keys:
            return await self.app(scope, receive, send)
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        token = bearer_token(header)
        if token is None:
            error = AuthenticationFailed(
                "Missing API key: send your persona-proxy key as 'Authorization: Bearer <key>'."
            )
        elif (key_id := self.keys.key_id(token)) is None:
            # The presented key is never echoed, not even masked.
            error = AuthenticationFailed("Incorrect API key provided for persona-proxy.")
        else:
            scope[KEY_ID_SCOPE] = key_id
            return await self.app(scope, receive, send)
        error.headers["www-authenticate"] = "Bearer"
        log_rejected(scope["method"], scope["path"], error)
        await render(error)(scope, receive, send)
