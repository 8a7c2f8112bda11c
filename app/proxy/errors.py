"""One error family, rendered in OpenAI's shape everywhere.

ProxyError                      status  type                    code
├── InvalidRequest               400     invalid_request_error   (varies)
│   ├── PayloadTooLarge          413     invalid_request_error   payload_too_large
│   └── UnsupportedMediaType     415     invalid_request_error   unsupported_media_type
├── AuthenticationFailed         401     invalid_request_error   invalid_api_key
├── PermissionDenied             403     invalid_request_error   permission_denied
├── NotFound                     404     invalid_request_error   model_not_found / not_found
├── MethodNotAllowed             405     invalid_request_error   method_not_allowed
├── RateLimited                  429     requests / tokens       rate_limit_exceeded (a client's own limit)
├── QuotaExceeded                429     insufficient_quota      insufficient_quota (a client's budget)
├── UpstreamStatusError          (upstream's status, type and code, passed through)
├── BadGateway                   502     server_error            upstream_*
├── ServiceUnavailable           503     server_error            overloaded / limits_unavailable
└── GatewayTimeout               504     server_error            upstream_timeout

Messages are written for the person calling the API. They never contain a
key, an upstream host, or the client's request body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger(__name__)


class ProxyError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    # Set once an access line has told of this error, so it is never logged twice.
    logged = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(ProxyError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class AuthenticationFailed(ProxyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(ProxyError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(ProxyError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RateLimited(ProxyError):
    status = 429
    type = "requests"  # or "tokens", as OpenAI types its own
    code = "rate_limit_exceeded"


class QuotaExceeded(ProxyError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamStatusError(ProxyError):
    """An upstream error response, relayed with its own status and fields."""

    def __init__(self, status: int, error: dict[str, object], headers: Mapping[str, str]) -> None:
        code = error.get("code")
        super().__init__(str(error.get("message") or f"upstream returned HTTP {status}"), headers=headers,
                         code=code if isinstance(code, str) else None)
        self.status = status
        self.error = error

    def body(self) -> dict[str, object]:
        return {"error": self.error}


class BadGateway(ProxyError):
    status = 502
    code = "upstream_error"


class ServiceUnavailable(ProxyError):
    status = 503
    code = "overloaded"


class GatewayTimeout(ProxyError):
    status = 504
    code = "upstream_timeout"


def model_not_found(model: object) -> NotFound:
    shown = model if isinstance(model, str) and len(model) <= 200 else "(invalid)"
    return NotFound(
        f"The model '{shown}' does not exist; GET /v1/models lists the models this proxy serves.",
        code="model_not_found",
        param="model",
    )


def render(err: ProxyError) -> Response:
    headers = dict(err.headers)
    return Response(orjson.dumps(err.body()), err.status, headers, media_type="application/json")


def sse_error_event(err: ProxyError) -> bytes:
    """An error travelling inside a stream that has already started."""
    return b"data: " + orjson.dumps(err.body()) + b"\n\n"


_STATUS_ERRORS: dict[int, type[ProxyError]] = {
    400: InvalidRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def log_rejected(method: str, path: str, err: ProxyError) -> None:
    """One line for a request refused before it reached an upstream (never the key or the body)."""
    if not err.logged:
        err.logged = True
        logger.info("rejected %s %s status=%d code=%s", method, path[:200], err.status, err.code,
                    extra={"fields": {"method": method, "path": path[:200], "status": err.status,
                                      "code": err.code}})


async def handle_proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    log_rejected(request.method, request.url.path, exc)
    return render(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 and friends, in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    cls = _STATUS_ERRORS.get(exc.status_code, ProxyError)
    if exc.status_code == 404:
        err: ProxyError = NotFound(
            f"Unknown path {request.url.path[:200]}; this proxy serves /v1/models, /v1/chat/completions "
            "and /v1/responses."
        )
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"Method {request.method} is not allowed on this path.")
    else:
        err = cls(str(exc.detail))
        err.status = exc.status_code
    err.headers.update(exc.headers or {})
    log_rejected(request.method, request.url.path, err)
    return render(err)


def render_unexpected() -> Response:
    return render(ProxyError("The proxy hit an internal error; see its log.", code="internal_error"))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render_unexpected()
