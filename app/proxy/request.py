"""Reading and checking a client's chat request before anything is forwarded.

Checks stay shallow on purpose: the proxy verifies what it needs to route
and inject (``model``, ``messages``, ``stream``) and leaves the rest of the
schema to the upstream, which knows its own extensions.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import Receive, Scope

from .errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from .guard import ClientGone

logger = logging.getLogger(__name__)

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields some SDKs and proxies read to pick the upstream or its credentials.
# A client must never choose either: they are removed wherever they appear.
UPSTREAM_OVERRIDES = frozenset({"api_base", "base_url", "api_key", "organization"})
# orjson serializes at most 254 levels; fewer brackets than this cannot go deeper.
MAX_DEPTH = 250
_OVERRIDE_MARKERS = tuple(f'"{name}"'.encode() for name in sorted(UPSTREAM_OVERRIDES))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing anything but JSON and anything over ``limit``."""
    content_type = declared = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            declared = value
    if content_type is not None:
        media = content_type.split(b";", 1)[0].strip().lower()
        if media != b"application/json" and not media.endswith(b"+json"):
            raise UnsupportedMediaType("Request bodies must be JSON; send Content-Type: application/json.")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # Chunked bodies carry no Content-Length: count as they arrive.
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the proxy's limit of {limit} bytes.")


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """Parse and check a chat completion body; errors name the bad ``param``."""
    body = parse_request(raw)
    _check_messages(body.get("messages"))
    return body


def parse_request(raw: bytes) -> dict[str, Any]:
    """What every API's body must be: a JSON object with a ``model`` string and a boolean ``stream``.

    Client attempts to choose the upstream (``api_base``, ``api_key``, ...) are removed at any depth.
    """
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(_json_problem(exc), code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    _check_depth(raw, body)
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model:
        raise _wrong_type("model", "a non-empty string")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean")
    if any(marker in raw for marker in _OVERRIDE_MARKERS):
        dropped = drop_upstream_overrides(body)
        if dropped:
            logger.warning("dropped client-supplied upstream fields: %s", ", ".join(sorted(dropped)))
    return body


def parse_responses_request(raw: bytes) -> dict[str, Any]:
    """Parse and check a Responses API body: ``input`` is a string or a list of items."""
    body = parse_request(raw)
    items = body.get("input")
    if items is None and not body.get("previous_response_id") and not body.get("prompt"):
        raise _missing("input")
    if items is not None and not isinstance(items, str | list):
        raise _wrong_type("input", "a string or an array of input items")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise _wrong_type(f"input[{i}]", "an object")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _wrong_type("instructions", "a string")
    return body


def _check_depth(raw: bytes, body: dict[str, Any]) -> None:
    """Refuse bodies nested deeper than the upstream body can be serialized again.

    orjson parses up to 1024 levels but serializes only 254, so without this a
    valid deep body would fail later as a 500. Counting brackets is cheap and
    bounds the depth from above; only bodies with many of them pay for a trial
    serialization.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise InvalidRequest(f"The request body is nested too deeply (more than {MAX_DEPTH} levels).",
                             code="invalid_json") from None


def drop_upstream_overrides(value: Any, found: set[str] | None = None) -> set[str]:
    """Remove :data:`UPSTREAM_OVERRIDES` keys from every object in ``value``, in place."""
    found = set() if found is None else found
    if isinstance(value, dict):
        for key in UPSTREAM_OVERRIDES.intersection(value):
            del value[key]
            found.add(key)
        for child in value.values():
            drop_upstream_overrides(child, found)
    elif isinstance(value, list):
        for child in value:
            drop_upstream_overrides(child, found)
    return found


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of message objects")
    if not messages:
        raise InvalidRequest(
            "'messages' must contain at least one message.", code="invalid_value", param="messages"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _wrong_type(f"messages[{i}]", "an object")
        role = message.get("role")
        if role is None:
            raise _missing(f"messages[{i}].role")
        if role not in MESSAGE_ROLES:
            allowed = ", ".join(sorted(MESSAGE_ROLES))
            raise InvalidRequest(
                f"Invalid value for 'messages[{i}].role': expected one of {allowed}.",
                code="invalid_value",
                param=f"messages[{i}].role",
            )


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    # The decoder's message names a position, never the offending text.
    if "utf-8" in str(exc).lower():
        return "The request body is not valid UTF-8."
    if "depth limit" in str(exc).lower():
        return f"The request body is nested too deeply (more than {MAX_DEPTH} levels)."
    return f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno})."


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)


def _wrong_type(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}.", code="invalid_type", param=param)
