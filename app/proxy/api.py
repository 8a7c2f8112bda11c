"""HTTP handlers: thin wrappers that read the request and call the serving layer."""

from __future__ import annotations

import logging

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as HTTPRoute
from starlette.types import Message, Receive, Scope, Send

from .access import write_models_line
from .apis import CHAT, Api
from .auth import CLIENT_SCOPE, KEY_ID_SCOPE, bearer_token
from .errors import (
    AuthenticationFailed,
    NotFound,
    ProxyError,
    log_rejected,
    model_not_found,
    render,
    render_unexpected,
)
from .guard import ClientGone
from .request import parse_chat_request, parse_responses_request, read_body
from .routing import Route
from .serving import ChatService

logger = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"


def _json(obj: object, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


async def health(request: Request) -> Response:
    """Liveness: answers without auth and says nothing about routes or keys."""
    return _json({"status": "ok"})


async def list_models(request: Request) -> Response:
    """The routes the caller's key may use, as OpenAI model objects."""
    routes, admission = request.app.state.routes, request.app.state.admission
    client = request.scope.get(CLIENT_SCOPE)
    data = [_model(request, r) for r in routes
            if not r.settings.hidden and (admission is None or admission.allows(client, r))]
    write_models_line(len(data), client)
    return _json({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    """One route as an OpenAI model object, or 404 ``model_not_found`` (also for a route outside the key's scope)."""
    model = request.path_params["model"]
    route = request.app.state.routes.resolve(model)
    admission = request.app.state.admission
    if admission is not None and not admission.allows(request.scope.get(CLIENT_SCOPE), route):
        raise model_not_found(model)
    return _json(_model(request, route))


def _model(request: Request, route: Route) -> dict[str, object]:
    obj = route.model_object()
    # The persona outlives its models, but clients may want to see a retirement coming.
    shutdown = request.app.state.chat.lifecycle.next_shutdown(route)
    if shutdown is not None:
        obj["shutdown_date"] = shutdown.isoformat()
    return obj


async def metrics(request: Request) -> Response:
    """Prometheus metrics, for holders of an admin key; absent unless admin keys are set."""
    admin = request.app.state.admin_keys
    if not admin:
        raise NotFound("Metrics are disabled; set admin keys (server.admin_keys_env) to enable /metrics.")
    header = request.headers.get("authorization")
    token = bearer_token(header.encode("latin-1") if header else None)
    if token is None or not admin.accepts(token):
        raise AuthenticationFailed("/metrics needs an admin key: 'Authorization: Bearer <admin key>'.")
    request.app.state.runtime.recorder.count()  # this process's requests since the last batch
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class ChatEndpoint:
    """``POST /v1/chat/completions`` (or, with ``api``, ``/v1/responses``) as a plain ASGI app: the hot path."""

    def __init__(self, service: ChatService, max_body_bytes: int, api: Api = CHAT) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.api = api
        self.path = CHAT_PATH if api is CHAT else RESPONSES_PATH
        self.parse = parse_chat_request if api is CHAT else parse_responses_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            raw = await read_body(scope, receive, self.max_body_bytes)
            await self.service.serve(self.parse(raw), scope["headers"], receive, tracked_send,
                                     scope.get(KEY_ID_SCOPE), self.api, scope.get(CLIENT_SCOPE))
        except ProxyError as err:
            log_rejected("POST", self.path, err)
            await render(err)(scope, receive, send)
        except ClientGone:
            pass  # hung up while sending its request: nobody to answer
        except Exception as exc:
            # The last line of defence for one request; the server keeps running.
            logger.error("unhandled error on %s", self.path, exc_info=exc)
            if not started:
                await render_unexpected()(scope, receive, send)


async def _chat_via_router(request: Request) -> Response:
    # Only reached by methods the fast path does not take (405 comes from the route table).
    raise AssertionError("POST /v1/chat/completions and /v1/responses are served by ChatEndpoint")


async def stored_response(request: Request) -> Response:
    """Stored responses live with the upstream that made them; this proxy keeps none."""
    raise NotFound(f"persona-proxy does not serve {request.method} {request.url.path[:200]}: stored responses live "
                   "with the upstream that created them, and this proxy keeps none. Send the conversation in "
                   "'input' (or use previous_response_id on a route whose upstream serves the Responses API).",
                   code="not_served")


ROUTES: list[BaseRoute] = [
    HTTPRoute("/health", health, methods=["GET"]),
    HTTPRoute("/metrics", metrics, methods=["GET"]),
    HTTPRoute("/v1/models", list_models, methods=["GET"]),
    # Model ids such as "ft:gpt-4o-mini:org::id" or "org/name" contain ':' and '/'.
    HTTPRoute("/v1/models/{model:path}", get_model, methods=["GET"]),
    HTTPRoute(CHAT_PATH, _chat_via_router, methods=["POST"]),
    HTTPRoute(RESPONSES_PATH, _chat_via_router, methods=["POST"]),
    HTTPRoute(RESPONSES_PATH + "/{rest:path}", stored_response, methods=["GET", "POST", "DELETE"]),
]
