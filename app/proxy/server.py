"""The application factory. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clients.warnings import client_warnings
from ..config import Config, is_loopback
from ..ops.logs import REQUEST_ID, new_request_id
from ..ops.metrics import Metrics
from .api import ROUTES
from .auth import ProxyKeyAuth, ProxyKeys
from .errors import ProxyError, handle_http_exception, handle_proxy_error, handle_unexpected
from .routing import RouteTable
from .runtime import Runtime

logger = logging.getLogger(__name__)


class ProxyApp(Starlette):
    """The Starlette app, with the hot paths routed around the generic layers.

    ``POST /v1/chat/completions`` and ``/v1/responses`` go straight to their
    ASGI endpoints (behind the same key check); everything else takes
    Starlette's router, middleware and exception handlers. (Plain Starlette:
    nothing here needs FastAPI's validation or docs, and leaving it out keeps
    about 6 MB out of every worker.)
    """

    runtime: Runtime | None = None
    # What an HTTP request goes through after getting its id: _route, or CORS around it.
    http_entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        # Every HTTP request gets an id first, so even a refused one is logged and answered with it.
        offered = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = new_request_id(offered)
        token = REQUEST_ID.set(request_id)
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], id_header]
            await send(message)

        try:
            await (self.http_entry or self._route)(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        endpoint = runtime.endpoints.get(scope["path"]) if runtime is not None and scope["method"] == "POST" else None
        if endpoint is not None:
            await endpoint(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    config: Config, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> ProxyApp:
    """Build the proxy for ``config``; ``transports`` replaces upstream transports by name."""
    client_keys, admin_keys = ProxyKeys(config.client_keys, config.client_key_sets), ProxyKeys(config.admin_keys)

    @asynccontextmanager
    async def lifespan(app: ProxyApp) -> AsyncIterator[None]:
        runtime = Runtime(app, config, app.state.routes, dict(transports or {}), app.state.metrics,
                          client_keys, admin_keys)
        app.runtime = app.state.runtime = runtime
        await runtime.start()
        _log_start(config, runtime.routes)
        try:
            yield
        finally:
            await runtime.stop()

    # No interactive docs: they would be an unauthenticated view of the API.
    app = ProxyApp(lifespan=lifespan, routes=ROUTES)
    app.state.config = config
    app.state.routes = RouteTable.from_config(config)
    app.state.metrics = Metrics()
    app.state.admission = None  # set with the runtime: clients' scopes and limits
    app.state.admin_keys = admin_keys
    app.add_exception_handler(ProxyError, handle_proxy_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(Exception, handle_unexpected)
    # Always installed: keys may arrive with a reload; with none it lets requests through.
    app.add_middleware(ProxyKeyAuth, keys=client_keys)
    if config.server.cors_origins:
        app.http_entry = _with_cors(app._route, config.server.cors_origins)
    return app


def _with_cors(app: ASGIApp, origins: list[str]) -> ASGIApp:
    # Outside the key check: a browser's preflight carries no key. Bearer keys need no
    # credentials mode, so credentials are never allowed (and "*" never with them).
    return CORSMiddleware(
        app, allow_origins=origins, allow_credentials=False, allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"], max_age=600,
        expose_headers=["x-request-id", "x-persona-target", "x-upstream-request-id", "retry-after",
                        "retry-after-ms", "x-should-retry",
                        *(f"x-ratelimit-{part}-{kind}" for part in ("limit", "remaining", "reset")
                          for kind in ("requests", "tokens"))])


def _log_start(config: Config, routes: RouteTable) -> None:
    server = config.server
    if not config.client_keys:
        where = "loopback only" if is_loopback(server.host) else "ON A NON-LOOPBACK ADDRESS"
        logger.warning(
            "no client keys in %s: serving WITHOUT authentication (%s)", server.api_keys_env, where
        )
    for name, settings in config.upstreams.items():
        if config.upstream(name).key_missing:
            names = ", ".join(r.name for r in routes if r.upstream == name) or "none"
            logger.warning(
                "upstream %s: %s is not set; its routes (%s) will answer 502 until it is",
                name, settings.api_key_env, names,
            )
    for line in [*client_warnings(config), *(w for route in routes for w in route.warnings)]:
        logger.warning("%s", line)
    logger.info("serving %d route(s): %s", len(routes), ", ".join(r.name for r in routes))
    if config.usage.enabled:
        where = "PostgreSQL" if config.usage_url else str(config.usage_file)
        logger.info("usage records: %s", where)
