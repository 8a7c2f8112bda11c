"""The application factory. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__
from .api import CHAT_PATH, ROUTES, ChatEndpoint
from .auth import ProxyKeyAuth, ProxyKeys
from .config import Config, is_loopback
from .demo import DemoTransport
from .errors import ProxyError, handle_http_exception, handle_proxy_error, handle_unexpected
from .lifecycle import Lifecycle, log_warnings
from .metrics import Metrics
from .routing import RouteTable
from .serving import ChatService
from .upstream import UpstreamClient
from .usage import Completed, UsageWriter

logger = logging.getLogger(__name__)


class ProxyApp(FastAPI):
    """The FastAPI app, with the chat hot path routed around the generic layers.

    ``POST /v1/chat/completions`` goes straight to its ASGI endpoint (behind
    the same key check); everything else takes FastAPI's usual stack.
    """

    chat_asgi: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.chat_asgi is not None
            and scope["type"] == "http"
            and scope["path"] == CHAT_PATH
            and scope["method"] == "POST"
        ):
            await self.chat_asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: Config, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> ProxyApp:
    """Build the proxy for ``config``; ``transports`` replaces upstream transports by name."""
    transports = dict(transports or {})
    keys = ProxyKeys(config.client_keys)

    @asynccontextmanager
    async def lifespan(app: ProxyApp) -> AsyncIterator[None]:
        clients = {
            name: UpstreamClient(config.upstream(name), transports.get(name) or _default_transport(settings.kind))
            for name, settings in config.upstreams.items()
        }
        lifecycle = Lifecycle()
        writer = UsageWriter(config.usage.path) if config.usage.enabled else None
        if writer is not None:
            writer.start()
        app.state.usage = writer
        app.state.chat = ChatService(app.state.routes, clients, forward_user_id=config.server.forward_user_id,
                                     lifecycle=lifecycle, metrics=app.state.metrics,
                                     record=_recorder(app.state.metrics, writer))
        endpoint: ASGIApp = ChatEndpoint(app.state.chat, config.server.max_body_bytes)
        app.chat_asgi = ProxyKeyAuth(endpoint, keys) if keys else endpoint
        _log_start(config, app.state.routes)
        watcher = None
        if config.server.check_models:
            watcher = asyncio.create_task(watch_models(lifecycle, app.state.routes, clients))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            app.chat_asgi = None
            for client in clients.values():
                await client.aclose()
            if writer is not None:
                await writer.close()

    app = ProxyApp(
        title="persona-proxy",
        version=__version__,
        lifespan=lifespan,
        # Interactive docs would be an unauthenticated view of the API; there are none.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        routes=ROUTES,
    )
    app.state.config = config
    app.state.routes = RouteTable.from_config(config)
    app.state.metrics = Metrics()
    app.state.admin_keys = ProxyKeys(config.admin_keys)
    app.add_exception_handler(ProxyError, handle_proxy_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(Exception, handle_unexpected)
    if keys:
        app.add_middleware(ProxyKeyAuth, keys=keys)
    return app


def _recorder(metrics: Metrics, writer: UsageWriter | None) -> Callable[[Completed], None]:
    def record(done: Completed) -> None:
        metrics.observe(done)
        if writer is not None:
            writer.submit(done)

    return record


async def watch_models(lifecycle: Lifecycle, routes: RouteTable, clients: Mapping[str, UpstreamClient],
                       interval: float = 86_400.0) -> None:
    """Learn shutdown dates from the upstreams at start and daily, and warn about retirements."""
    used = {target.upstream for route in routes for target in route.targets}
    while True:
        for name in sorted(used):
            models = await clients[name].get_json("models")
            if models is not None:
                lifecycle.learn(name, models)
        log_warnings(lifecycle, routes)
        await asyncio.sleep(interval)


def _default_transport(kind: str) -> httpx.AsyncBaseTransport | None:
    return DemoTransport() if kind == "demo" else None


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
    logger.info("serving %d route(s): %s", len(routes), ", ".join(r.name for r in routes))
