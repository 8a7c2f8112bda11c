"""The console's HTTP handlers: thin, over the pure functions beside them.

Every data answer is JSON with ``cache-control: no-store``; every error is
one line in OpenAI's shape. GETs change nothing: a fresh reachability check
is a ``POST``. Store queries run on a thread with a deadline, so a slow
database never holds the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from ..ops.usage import usage_store
from ..proxy.errors import NotFound
from ..proxy.lifecycle import utc_today
from ..proxy.request import read_body
from ..proxy.routing import Route
from . import fidelity, trying, usage
from .access import admin_of, viewer_of
from .overview import clients_view, routes_view
from .state import ConsoleState, run_queries

STATIC = Path(__file__).parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css", "favicon.svg": "image/svg+xml"}
# No inline script or style, nothing from another origin, no framing: the page's whole policy.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                "x-frame-options": "DENY", "cache-control": "no-cache"}


def _json(obj: object) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json",
                    headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


async def page(request: Request) -> Response:
    """The console's page: a sign-in form until a key is given (no data in it)."""
    return FileResponse(STATIC / "console.html", media_type="text/html", headers=PAGE_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        raise NotFound(f"No console file {name[:100]!r}.")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=PAGE_HEADERS)


async def overview(request: Request) -> Response:
    """Who is signed in, the routes (and for an admin their targets), the clients and their use."""
    viewer = viewer_of(request)
    state, runtime = _state(request), request.app.state.runtime
    config, admission = runtime.config, runtime.admission
    return _json({
        "viewer": viewer.body(), "today": utc_today().isoformat(),
        "routes": routes_view(runtime.routes, viewer, admission, config, runtime.lifecycle, state.probes.found,
                              utc_today()),
        "clients": await clients_view(config, admission.gate if admission else None, viewer),
        "usage_recorded": config.usage.enabled,
        "stale": viewer.admin and state.probes.stale(_upstreams(runtime.routes)),
    })


async def probe(request: Request) -> Response:
    """Check every upstream now (at most a few seconds), then answer the routes as the overview does."""
    viewer = admin_of(request)
    state, runtime = _state(request), request.app.state.runtime
    used = _upstreams(runtime.routes)
    demo = {n for n in used if runtime.config.upstreams[n].kind == "demo"}
    await state.probes.refresh({n: runtime.clients[n] for n in used}, demo, runtime.lifecycle)
    routes = routes_view(runtime.routes, viewer, runtime.admission, runtime.config, runtime.lifecycle,
                         state.probes.found, utc_today())
    return _json({"routes": routes})


def _upstreams(routes: Iterable[Route]) -> set[str]:
    return {target.upstream for route in routes for target in route.every_target}


async def usage_data(request: Request) -> Response:
    """Requests, errors, tokens and cost per day, grouped (``by``), over ``days`` or ``from``/``to``."""
    viewer = viewer_of(request)
    span = usage.parse_span(request.query_params, utc_today())
    by = usage.parse_group(request.query_params.get("by"), viewer)
    config = request.app.state.runtime.config
    if not config.usage.enabled:
        data = {**usage.series(by, span, [], config.prices), "note": "usage records are off ([usage])"}
    else:
        store = usage_store(config)
        found = await run_queries(store, usage.queries(by, span, viewer, store.param))
        data = usage.series(by, span, found["groups"], config.prices, totals=found.get("totals"))
    if not viewer.admin:
        data["unpriced_models"] = []  # model ids are the operator's business
    return _json(data)


async def fidelity_data(request: Request) -> Response:
    """Every route with a training set: its targets' live fidelity per day, and the reference line."""
    admin_of(request)
    span = usage.parse_span(request.query_params, utc_today())
    state, runtime = _state(request), request.app.state.runtime
    config = runtime.config
    out = []
    for route in runtime.routes:
        if route.profile is None or route.settings.dataset is None:
            continue
        reference = await state.reference(route)
        entry: dict[str, Any] = {"route": route.name, "reference": fidelity.reference_fidelity(reference),
                                 "targets": []}
        if config.usage.enabled:
            store = usage_store(config)
            found = await run_queries(store, fidelity.queries(route.name, span, store.param))
            entry["targets"] = fidelity.daily(found, route.profile, reference)
        out.append(entry)
    return _json({"from": span.first.isoformat(), "to": span.last.isoformat(), "days": span.days, "routes": out})


async def try_it(request: Request) -> Response:
    """Stream a reply from a route (its first usable target) or one named target, for an admin."""
    admin_of(request)
    runtime = request.app.state.runtime
    body = await read_body(request.scope, request.receive, 1024 * 1024)
    route, target, messages = trying.parse(body, runtime.routes, runtime.lifecycle)
    events = await trying.open_stream(route, target, messages, runtime.clients)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-persona-target": target.name})

