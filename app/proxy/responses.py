"""The Responses API's own rules: where the persona goes, where ``model`` sits, how a stream ends.

The persona goes into ``instructions`` by the route's ``system_prompt_mode``
(the client's system text may arrive as ``instructions`` or as ``system`` /
``developer`` input items); few-shot exchanges become input messages before
the client's. Route defaults take Responses names. In a stream only the
lifecycle events carry a model, inside their ``response`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .persona import SYSTEM_ROLES, PromptMode, apply_defaults, placed

if TYPE_CHECKING:
    from .card_persona import Insert

# Events with a nested response object: the only ones naming a model.
LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued", "response.completed",
                       "response.failed", "response.incomplete"})
TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})
# Chat parameters with another name here, and chat-only ones the Responses API refuses.
RENAMED = {"max_tokens": "max_output_tokens", "max_completion_tokens": "max_output_tokens"}
CHAT_ONLY = frozenset({"stop", "n", "logit_bias", "frequency_penalty", "presence_penalty", "seed", "logprobs",
                       "stream_options", "response_format", "reasoning_effort", "modalities", "audio",
                       "prediction", "web_search_options", "function_call", "functions"})


def input_items(body: Mapping[str, Any]) -> list[Any]:
    """``input`` as a list of items (a string is one user message)."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def is_system_item(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") in SYSTEM_ROLES


def apply_persona(body: dict[str, Any], prompt: str | None, mode: PromptMode,
                  few_shot: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """``body`` with the persona in ``instructions`` and few-shot exchanges first in ``input``.

    ``replace``: the persona is the instructions; system and developer items go.
    ``prepend``: the persona, a blank line, then the client's instructions; its items stay.
    ``if_absent``: the persona only when the client sent no instructions and no system items.
    User, assistant and tool items are never dropped or reordered.
    """
    if prompt is None:
        return body
    items = input_items(body)
    theirs = body.get("instructions") if isinstance(body.get("instructions"), str) else None
    if mode == "if_absent" and (theirs or any(is_system_item(i) for i in items)):
        return body
    out = dict(body)
    if mode == "replace":
        out["instructions"] = prompt
        items = [i for i in items if not is_system_item(i)]
    else:
        out["instructions"] = f"{prompt}\n\n{theirs}" if theirs else prompt
    shots = [{"role": m["role"], "content": m["content"]} for m in few_shot]
    if shots or mode == "replace" or isinstance(body.get("input"), list):
        out["input"] = [*shots, *items]
    return out


def applies(body: Mapping[str, Any], mode: PromptMode) -> bool:
    """Whether the persona goes into this request (``if_absent`` yields to the client's instructions)."""
    if mode != "if_absent":
        return True
    return not body.get("instructions") and not any(is_system_item(i) for i in input_items(body))


def dropped(body: Mapping[str, Any], mode: PromptMode) -> int:
    """How many of the client's system items (its ``instructions`` counting as one) the mode leaves out."""
    if mode != "replace":
        return 0
    return bool(body.get("instructions")) + sum(1 for i in input_items(body) if is_system_item(i))


def place(body: dict[str, Any], shots: int, inserts: Sequence[Insert], post: str | None) -> dict[str, Any]:
    """Lorebook entries at their depth among the input items, and the post-history instructions last."""
    body["input"] = placed(input_items(body), shots, inserts, post)
    return body


def defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    """A route's chat-style defaults in Responses terms."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in CHAT_ONLY:
            continue
        out.setdefault(RENAMED.get(key, key), value)
    return out


def upstream_body(body: dict[str, Any], *, model: str, prompt: str | None, mode: PromptMode,
                  params: Mapping[str, Any], few_shot: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """The Responses request to send upstream for one target."""
    out = apply_persona(body, prompt, mode, few_shot)
    out = {**out, "model": model}
    return apply_defaults(out, defaults(params))


def rewrite_event_model(data: bytes, model: str) -> bytes:
    """A stream event with ``response.model`` set to the route name (only lifecycle events have one)."""
    if b'"model"' not in data:
        return data
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    response = event.get("response") if isinstance(event, dict) else None
    if not isinstance(response, dict) or not isinstance(response.get("model"), str):
        return data
    response["model"] = model
    return orjson.dumps(event)


def error_event(code: str | None, message: str, sequence: int) -> bytes:
    """The Responses ``error`` event, as OpenAI documents it (flat)."""
    event = {"type": "error", "sequence_number": sequence, "code": code, "message": message, "param": None}
    return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
