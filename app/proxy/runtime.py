"""What the running proxy serves: routes, upstream clients and the chat service, reloadable.

On SIGHUP the config file is read again. A bad file is rejected with one
log line and the previous config keeps serving. A good one is swapped in
atomically for new requests; requests in flight finish on the clients they
started with, which are closed once they are idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from ..clients.demand import PriceBook
from ..clients.gate import FAILURE_MODES, Gate
from ..clients.limits import Store as LimitsStore
from ..clients.local import LocalStore
from ..clients.redis_store import redis_store_for
from ..clients.restore import budgeted, rebuild_budgets
from ..config import Config, ConfigError, load_config
from ..ops.metrics import Metrics
from ..ops.recorder import Recorder
from ..ops.usage import usage_store
from ..tuning.tokens import TokenCounter, load_counter
from .admission import Admission
from .api import CHAT_PATH, RESPONSES_PATH, ChatEndpoint
from .apis import RESPONSES
from .auth import ProxyKeyAuth, ProxyKeys
from .demo import DemoTransport
from .lifecycle import Lifecycle, log_warnings
from .routing import RouteTable
from .serving import ChatService
from .succession import Succession
from .succession.live import LiveFidelity
from .succession.shadow import Shadows, shadow_clients
from .upstream import UpstreamClient

logger = logging.getLogger(__name__)

# How often server.reload_on_change looks at the config file's mtime and size.
WATCH_SECONDS = 2.0

DRAIN_LIMIT_SECONDS = 3600.0


class Runtime:
    def __init__(self, app: Starlette, config: Config, routes: RouteTable,
                 transports: Mapping[str, httpx.AsyncBaseTransport], metrics: Metrics,
                 client_keys: ProxyKeys, admin_keys: ProxyKeys) -> None:
        self.app = app
        self.config = config
        self.routes = routes
        self.transports = transports
        self.metrics = metrics
        self.client_keys = client_keys
        self.admin_keys = admin_keys
        self.lifecycle = Lifecycle()
        self.clients: dict[str, UpstreamClient] = {}
        self.recorder = Recorder(metrics)
        self.live = LiveFidelity(self.recorder.submit_fidelity, metrics, config.fidelity.keep_replies)
        self.shadows = Shadows(metrics, self.recorder.submit, self.live,
                               forward_user_id=config.server.forward_user_id)
        self.chat: ChatService | None = None
        self.limits_store: LimitsStore | None = None
        self.admission: Admission | None = None
        self._counter: list[TokenCounter] = []
        # POST path -> the endpoint serving it; replaced whole on reload, emptied at stop.
        self.endpoints: dict[str, ASGIApp] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Client sets replaced by a reload, closed once idle (or at stop at the latest).
        self._retired: list[Mapping[Any, UpstreamClient]] = []

    async def start(self) -> None:
        if self.config.usage.enabled:
            self.recorder.store = usage_store(self.config)
        self.recorder.start()
        self.live.start()
        if self.config.clients:
            self.limits_store = await open_limits_store(self.config)
        await self._load_counter(self.config)
        self._install(self.config, self.routes, self._new_clients(self.config))
        # Not possible off the main thread (tests) or without SIGHUP (Windows).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        if self.config.server.reload_on_change and self.config.source is not None:
            self._spawn(self._watch_file(self.config.source))

    async def stop(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._watcher is not None:
            self._watcher.cancel()
        self.endpoints = {}
        for task in self._background:
            task.cancel()
        # Shadows are cancelled, not waited for: the grace period was the clients'.
        await self.shadows.close()
        for clients in [*self._retired, self.clients, self.shadows.clients]:
            for client in clients.values():
                await client.aclose()
        await self.live.close()  # what it measures now is still written below
        await self.recorder.close()
        if self.limits_store is not None:
            await self.limits_store.close()  # settlements still queued are sent first

    def _on_sighup(self) -> None:
        self._spawn(self.reload())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_file(self, path: Path) -> None:
        """Reload when the file's modification time or size changes."""
        def stamp() -> tuple[float, int] | None:
            try:
                stat = path.stat()
            except OSError:
                return None
            return stat.st_mtime, stat.st_size

        seen = stamp()
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            current = stamp()
            if current is not None and current != seen:
                seen = current
                await self.reload()

    async def reload(self) -> bool:
        """Read the config file again; keep serving the old config if the new one is bad."""
        source = self.config.source
        if source is None:
            logger.warning("config reload: no config file was given, nothing to reload")
            return False
        try:
            config = await asyncio.to_thread(load_config, source)
            routes = await asyncio.to_thread(RouteTable.from_config, config)
        except ConfigError as exc:
            logger.error("config reload rejected, still serving the previous config: %s", exc)
            return False
        except Exception as exc:  # e.g. an unreadable few-shot file: the old config stays
            logger.error("config reload rejected, still serving the previous config: %s", type(exc).__name__)
            return False
        # Keys are swapped in below (from the variables the new file names); the rest of
        # [server] shapes the listening socket and the process, so it waits for a restart.
        changed = sorted(name for name in type(config.server).model_fields
                         if name not in ("api_keys_env", "admin_keys_env")
                         and getattr(config.server, name) != getattr(self.config.server, name))
        if changed:
            logger.warning("config reload: server.%s take(s) effect at the next restart", ", server.".join(changed))
        old, old_shadows = self.clients, self.shadows.clients
        await self._load_counter(config)
        self._install(config, routes, self._new_clients(config))
        for retired in (old, old_shadows):
            self._retired.append(retired)
            self._spawn(self._close_when_idle(retired))
        for line in (w for route in routes for w in route.warnings):
            logger.warning("%s", line)
        logger.info("config reloaded from %s: %d route(s)", source, len(routes))
        return True

    def _new_clients(self, config: Config) -> dict[str, UpstreamClient]:
        return {name: client_for(config, name, self.transports.get(name)) for name in config.upstreams}

    def _install(self, config: Config, routes: RouteTable, clients: dict[str, UpstreamClient]) -> None:
        self.config, self.routes, self.clients = config, routes, clients
        self.shadows.clients = shadow_clients(
            routes, lambda name, cap: client_for(config, name, self.transports.get(name), max_connections=cap))
        self.shadows.forward_user_id = config.server.forward_user_id
        self.live.keep_replies = config.fidelity.keep_replies
        succession = Succession(self.shadows, self.live, config.fidelity.sample)
        self.admission = self._admission(config)
        self.chat = ChatService(routes, clients, forward_user_id=config.server.forward_user_id,
                                lifecycle=self.lifecycle, metrics=self.metrics, record=self.recorder.submit,
                                succession=succession, admission=self.admission)
        self.client_keys.replace(config.client_keys, config.client_key_sets)
        self.admin_keys.replace(config.admin_keys)
        # The one assignment new requests see: they get the new routes, clients and keys together.
        limit = config.server.max_body_bytes
        self.endpoints = {CHAT_PATH: ProxyKeyAuth(ChatEndpoint(self.chat, limit), self.client_keys),
                          RESPONSES_PATH: ProxyKeyAuth(ChatEndpoint(self.chat, limit, RESPONSES), self.client_keys)}
        self.app.state.config, self.app.state.routes, self.app.state.chat = config, routes, self.chat
        self.app.state.admission = self.admission
        if self._watcher is not None:
            self._watcher.cancel()
        if config.server.check_models:
            self._watcher = asyncio.ensure_future(watch_models(self.lifecycle, routes, clients))

    def _admission(self, config: Config) -> Admission | None:
        if not config.clients:
            return None
        if self.limits_store is None:
            # Clients first appeared in a reload: they count in this process until a restart brings Redis.
            self.limits_store = LocalStore()
        gate = Gate(config.clients, config.limits, PriceBook(config.prices), self.limits_store, self.metrics)
        return Admission(gate, self.counter, config.limits.default_max_tokens)

    async def _load_counter(self, config: Config) -> None:
        # Loading the tokenizer takes about a second: never on the event loop, never on a request.
        if any(c.weighs_requests for c in config.clients.values()):
            await asyncio.to_thread(self.counter)

    def counter(self) -> TokenCounter:
        """The prompt tokenizer, loaded on the first request that needs one."""
        if not self._counter:
            self._counter.append(load_counter())
        return self._counter[0]

    async def _close_when_idle(self, clients: Mapping[Any, UpstreamClient]) -> None:
        deadline = asyncio.get_running_loop().time() + DRAIN_LIMIT_SECONDS
        while any(c.in_flight for c in clients.values()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
        for client in clients.values():
            await client.aclose()
        self._retired.remove(clients)


async def watch_models(lifecycle: Lifecycle, routes: RouteTable, clients: Mapping[str, UpstreamClient],
                       interval: float = 86_400.0) -> None:
    """Learn shutdown dates from the upstreams at start and daily, and warn about retirements."""
    used = {target.upstream for route in routes for target in route.every_target}
    async def learn(name: str) -> None:
        models = await clients[name].get_json("models")
        if models is not None:
            lifecycle.learn(name, models)

    while True:
        # Concurrently, each learned as it arrives: an unreachable upstream delays nobody else.
        await asyncio.gather(*(learn(name) for name in sorted(used)))
        log_warnings(lifecycle, routes)
        await asyncio.sleep(interval)


async def open_limits_store(config: Config) -> LimitsStore:
    """Redis when the config names it (reachable or not: the failure mode covers it), else this process."""
    limits = config.limits
    store = redis_store_for(config)
    if store is not None:
        reachable = await store.ping()
        if reachable:
            logger.info("client limits: counted in Redis (%s), shared by every worker and replica",
                        limits.redis_url_env)
        else:
            logger.error("client limits: Redis (%s) is not reachable; until it is, on_store_error = %r: %s",
                         limits.redis_url_env, limits.on_store_error, FAILURE_MODES[limits.on_store_error])
        return store
    local = LocalStore()
    if budgeted(config.clients) and config.usage.enabled:
        try:
            gate = Gate(config.clients, limits, PriceBook(config.prices), local)
            rows = await asyncio.to_thread(rebuild_budgets, local, gate, usage_store(config))
            logger.info("client limits: counted in this process; budgets rebuilt from %d usage group(s)", rows)
        except Exception as exc:  # an unreadable usage store must not stop the proxy; say what it means
            logger.error("client limits: budgets could not be rebuilt from the usage records (%s); they start at "
                         "0 for this period", type(exc).__name__)
    else:
        logger.info("client limits: counted in this process (exact for one worker)")
    return local


def transport_for(kind: str) -> httpx.AsyncBaseTransport | None:
    return DemoTransport() if kind == "demo" else None


def client_for(config: Config, name: str, transport: httpx.AsyncBaseTransport | None = None,
               max_connections: int | None = None) -> UpstreamClient:
    """The client for ``[upstreams.NAME]``; a transport handed in stays its giver's to close.

    ``max_connections`` gives it a pool of its own size (a shadow's ``max_in_flight``).
    """
    upstream = config.upstream(name)
    if max_connections is not None:
        upstream = upstream.model_copy(
            update={"settings": upstream.settings.model_copy(update={"max_connections": max_connections})})
    return UpstreamClient(upstream, transport or transport_for(config.upstreams[name].kind),
                          owns_transport=transport is None)

