"""Talking to one OpenAI-compatible upstream.

:class:`UpstreamClient` opens a request, waits for the response headers and
turns every failure before that point into a :class:`ProxyError`. A
successful response is handed to the caller still open: whoever receives it
owns it and must close it. Error responses are read, closed and raised here,
so no path leaks a pooled connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import httpx
import orjson
from pydantic import SecretStr

from .. import __version__
from ..config import Upstream
from .errors import BadGateway, GatewayTimeout, ProxyError, ServiceUnavailable, UpstreamStatusError
from .transport import AiohttpTransport, UpstreamResponse

logger = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 64 * 1024
# Response headers a client's own retry and rate-limit logic reads. The
# upstream's x-request-id comes back as x-upstream-request-id: x-request-id is ours.
PASSED_HEADERS = ("openai-processing-ms", "openai-version", "retry-after", "retry-after-ms")
PASSED_PREFIXES = ("x-ratelimit-",)
NO_RETRY = {"x-should-retry": "false"}
REDACTED = b"[redacted]"


class Checked(NamedTuple):
    """What a best-effort GET found: reachable (None when it was not tried), status, parsed body, a note."""

    reachable: bool | None
    status: int | None
    body: Any
    note: str


class UpstreamClient:
    """One upstream's connection pool and the rules for using it."""

    def __init__(self, upstream: Upstream, transport: httpx.AsyncBaseTransport | None = None,
                 *, owns_transport: bool = True) -> None:
        self.name = upstream.name
        self.settings = s = upstream.settings
        self._key_missing = upstream.key_missing
        self._base = (s.base_url or "http://demo.invalid/v1").rstrip("/")
        # httpx's request and response types, sent straight through a transport:
        # the AsyncClient layers (cookies, redirects, URL merging) are not needed.
        self._transport = transport or AiohttpTransport(s.max_connections)
        # A transport handed in by the caller (tests, embedding) is the caller's to close.
        self._owns_transport = owns_transport or transport is None
        self._urls: dict[str, httpx.URL] = {}
        self._url_strings: dict[str, str] = {}
        self._timeouts = {
            "connect": s.connect_timeout,
            # The guard enforces first-byte and idle deadlines; this only stops a dead socket.
            "read": max(s.first_byte_timeout, s.idle_timeout) + 1,
            "write": s.idle_timeout,
            "pool": s.pool_timeout,
        }
        self._headers = {stream: self._base_headers(stream, upstream.api_key) for stream in (False, True)}
        # Providers quote the key back in error texts; such echoes are redacted before relaying.
        self.secret = upstream.api_key.get_secret_value().encode() if upstream.api_key else None

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    @property
    def in_flight(self) -> int:
        """Upstream requests whose response is not closed yet (0 when idle)."""
        return int(getattr(self._transport, "in_flight", 0))

    @staticmethod
    def _base_headers(stream: bool, key: SecretStr | None) -> list[tuple[str, str]]:
        headers = [
            ("content-type", "application/json"),
            ("accept", "text/event-stream" if stream else "application/json"),
            # Bodies are relayed as decoded bytes; identity keeps length and encoding honest.
            ("accept-encoding", "identity"),
            ("user-agent", f"persona-proxy/{__version__}"),
        ]
        if key is not None:
            headers.append(("authorization", "Bearer " + key.get_secret_value()))
        return headers

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(f"{self._base}/{path}")
        return url

    async def get_json(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` and parse it; None on any failure (used for best-effort checks)."""
        return (await self.check(path, timeout)).body

    async def check(self, path: str, timeout: float = 10.0) -> Checked:
        """GET ``path``: whether the upstream answered, its status and parsed body, and what went wrong."""
        if self._key_missing:
            return Checked(None, None, None, "key not set")
        request = httpx.Request("GET", self._url(path), headers=self._headers[False],
                                extensions={"timeout": self._timeouts})
        try:
            async with asyncio.timeout(timeout):
                response = await self._transport.handle_async_request(request)
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.warning("upstream %s: GET %s failed (%s)", self.name, path, type(exc).__name__)
            return Checked(False, None, None, type(exc).__name__)
        if response.status_code != 200:
            logger.warning("upstream %s: GET %s answered HTTP %d", self.name, path, response.status_code)
            return Checked(True, response.status_code, None, f"HTTP {response.status_code}")
        try:
            return Checked(True, 200, orjson.loads(body), "")
        except orjson.JSONDecodeError:
            return Checked(True, 200, None, "not JSON")

    async def post(self, path: str, body: bytes, *, stream: bool, request_id: str | None = None) -> UpstreamResponse:
        """POST ``body`` and return the open 2xx response; raise on anything else."""
        if self._key_missing:
            raise BadGateway(
                f"Upstream '{self.name}' has no API key: set the {self.settings.api_key_env} "
                "environment variable and restart persona-proxy.",
                code="upstream_key_missing",
                headers=NO_RETRY,
            )
        headers = self._headers[stream]
        if request_id is not None:
            headers = [*headers, ("x-request-id", request_id)]
        response = await self._send(self._exchange(path, headers, body))
        if response.status_code >= 300:
            await self._raise_for_status(response)
        return response

    def _exchange(self, path: str, headers: list[tuple[str, str]],
                  body: bytes) -> Callable[[], Awaitable[UpstreamResponse]]:
        """How to send one POST; called again for the one retry after a refused connection."""
        transport = self._transport
        if isinstance(transport, AiohttpTransport):
            url = self._url_strings.get(path) or self._url_strings.setdefault(path, str(self._url(path)))
            return lambda: transport.send("POST", url, headers, body, self._timeouts)
        # The demo's and the tests' transports take httpx requests.
        request = httpx.Request("POST", self._url(path), headers=headers, content=body,
                                extensions={"timeout": self._timeouts})

        async def exchange() -> UpstreamResponse:
            response = await transport.handle_async_request(request)
            response.request = request
            return response

        return exchange

    async def _send(self, exchange: Callable[[], Awaitable[UpstreamResponse]]) -> UpstreamResponse:
        try:
            return await self._send_once(exchange)
        except httpx.ConnectError:
            # Nothing reached the upstream: one retry after a short jittered pause is safe.
            await asyncio.sleep(random.uniform(0.05, 0.25))
        try:
            return await self._send_once(exchange)
        except ProxyError as err:
            err.headers.update(NO_RETRY)
            raise
        except httpx.ConnectError:
            raise self._unreachable() from None

    async def _send_once(self, exchange: Callable[[], Awaitable[UpstreamResponse]]) -> UpstreamResponse:
        try:
            return await exchange()
        except httpx.ConnectError:
            raise
        except httpx.ConnectTimeout:
            raise GatewayTimeout(
                f"Upstream '{self.name}' did not accept a connection within "
                f"{self.settings.connect_timeout:g} s."
            ) from None
        except httpx.PoolTimeout:
            raise ServiceUnavailable(
                f"Upstream '{self.name}' has no free connection; try again shortly.",
                headers={"retry-after": "1"},
            ) from None
        except httpx.HTTPError as exc:
            logger.warning("upstream %s failed before responding: %s", self.name, type(exc).__name__)
            raise BadGateway(
                f"Upstream '{self.name}' closed the connection before responding.",
                code="upstream_connection_error",
            ) from None

    def _unreachable(self) -> BadGateway:
        logger.warning("upstream %s is unreachable", self.name)
        return BadGateway(
            f"Upstream '{self.name}' is unreachable; check that it is running and its base_url.",
            code="upstream_unreachable",
            headers=NO_RETRY,
        )

    async def _raise_for_status(self, response: UpstreamResponse) -> None:
        try:
            body = await _read_capped(response, ERROR_BODY_LIMIT)
        except httpx.HTTPError:
            body = b""
        finally:
            await response.aclose()
        status = response.status_code
        logger.warning("upstream %s answered HTTP %d", self.name, status)
        if status in (401, 403):
            raise BadGateway(
                f"Upstream '{self.name}' rejected persona-proxy's API key (HTTP {status}); "
                f"check the {self.settings.api_key_env or 'api_key_env'} environment variable.",
                code="upstream_auth_failed",
                headers=NO_RETRY,
            )
        if status < 400:
            raise BadGateway(
                f"Upstream '{self.name}' answered with a redirect (HTTP {status}); check its base_url.",
                code="upstream_redirect",
            )
        raise UpstreamStatusError(status, upstream_error(redact(body, self.secret), status),
                                  passed_headers(response.headers))


async def _read_capped(response: UpstreamResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)


def redact(data: bytes, secret: bytes | None) -> bytes:
    """``data`` with every copy of ``secret`` replaced."""
    if secret and secret in data:
        return data.replace(secret, REDACTED)
    return data


def upstream_error(body: bytes, status: int) -> dict[str, object]:
    """The upstream's error object in OpenAI's shape; unknown bodies are not echoed."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, str):  # Ollama and some servers: {"error": "text"}
        error = {"message": error}
    if not isinstance(error, dict):
        detail = parsed.get("message") or parsed.get("detail") if isinstance(parsed, dict) else None
        error = {"message": detail if isinstance(detail, str) else f"The upstream returned HTTP {status}."}
    default_type = "invalid_request_error" if status < 500 else "server_error"
    code = error.get("code")
    return {
        "message": str(error.get("message") or f"The upstream returned HTTP {status}."),
        "type": error.get("type") if isinstance(error.get("type"), str) else default_type,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "code": str(code) if code is not None else None,
    }


def passed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream response headers worth relaying to the client."""
    passed = {
        name: value
        for name, value in headers.items()
        if name in PASSED_HEADERS or name.startswith(PASSED_PREFIXES)
    }
    upstream_id = headers.get("x-request-id")
    if upstream_id:
        passed["x-upstream-request-id"] = upstream_id
    return passed
