"""HTTP handlers: thin wrappers that read the request and call the serving layer."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as HTTPRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .relay import ClientGone, unless_disconnected
from .request import parse_chat_request, read_body


def _json(obj: object, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


async def health(request: Request) -> Response:
    """Liveness: answers without auth and says nothing about routes or keys."""
    return _json({"status": "ok"})


async def list_models(request: Request) -> Response:
    """The routes, as OpenAI model objects."""
    return _json(request.app.state.routes.model_list())


async def get_model(request: Request) -> Response:
    """One route as an OpenAI model object, or 404 ``model_not_found``."""
    route = request.app.state.routes.resolve(request.path_params["model"])
    return _json(route.model_object())


async def chat_completions(request: Request) -> ASGIApp:
    """Chat completions through a persona route, streamed or not."""
    raw = await read_body(request, request.app.state.config.server.max_body_bytes)
    body = parse_chat_request(raw)
    service = request.app.state.chat
    try:
        return await unless_disconnected(request.receive, lambda: service.complete(body))
    except ClientGone:
        return _nothing


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    """The client left before its answer was ready: there is no one to answer."""


ROUTES: list[BaseRoute] = [
    HTTPRoute("/health", health, methods=["GET"]),
    HTTPRoute("/v1/models", list_models, methods=["GET"]),
    # Model ids such as "ft:gpt-4o-mini:org::id" or "org/name" contain ':' and '/'.
    HTTPRoute("/v1/models/{model:path}", get_model, methods=["GET"]),
    HTTPRoute("/v1/chat/completions", chat_completions, methods=["POST"]),
]
