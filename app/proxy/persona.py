"""Persona injection: pure functions from a client request to an upstream one.

The proxy owns three things in a chat request: ``model`` (the route's
upstream id), the persona system prompt inside ``messages``, and defaults
for absent parameters. Everything else passes through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .card_persona import Insert

PromptMode = Literal["replace", "prepend", "if_absent"]

# OpenAI's newer models call the system role "developer"; both carry
# instructions, so both count as the client's system prompt.
SYSTEM_ROLES = frozenset({"system", "developer"})


def is_system(message: Mapping[str, Any]) -> bool:
    return message.get("role") in SYSTEM_ROLES


def apply_persona(
    messages: list[dict[str, Any]],
    prompt: str | None,
    mode: PromptMode,
    few_shot: Sequence[dict[str, str]] = (),
) -> list[dict[str, Any]]:
    """Return the message list the upstream should see.

    ``replace`` drops the client's system messages and puts the persona
    first; ``prepend`` keeps them after the persona; ``if_absent`` adds the
    persona only when the client sent none. Few-shot exchanges, when the
    target has them, follow the persona. User, assistant and tool messages
    are never dropped or reordered.
    """
    if prompt is None:
        return messages
    persona = [{"role": "system", "content": prompt}, *few_shot]
    if mode == "replace":
        return [*persona, *(m for m in messages if not is_system(m))]
    if mode == "prepend":
        return [*persona, *messages]
    if any(is_system(m) for m in messages):
        return messages
    return [*persona, *messages]


def apply_defaults(body: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in route defaults for keys the client did not send."""
    for key, value in params.items():
        if key not in body:
            body[key] = value
    return body


def upstream_body(
    body: dict[str, Any],
    *,
    model: str,
    prompt: str | None,
    mode: PromptMode,
    params: Mapping[str, Any],
    few_shot: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """The request body to send upstream, built from a validated client body."""
    out = dict(body)
    out["model"] = model
    out["messages"] = apply_persona(body["messages"], prompt, mode, few_shot)
    return apply_defaults(out, params)


def applies(body: Mapping[str, Any], mode: PromptMode) -> bool:
    """Whether the persona goes into this request (``if_absent`` yields to the client's system messages)."""
    return mode != "if_absent" or not any(is_system(m) for m in body["messages"] if isinstance(m, dict))


def dropped(body: Mapping[str, Any], mode: PromptMode) -> int:
    """How many of the client's system messages the persona's mode leaves out."""
    if mode != "replace":
        return 0
    return sum(1 for m in body["messages"] if isinstance(m, dict) and m.get("role") in SYSTEM_ROLES)


def place(body: dict[str, Any], shots: int, inserts: Sequence[Insert], post: str | None) -> dict[str, Any]:
    """Lorebook entries at their depth in the conversation, and the post-history instructions last."""
    body["messages"] = placed(body["messages"], 1 + shots, inserts, post)
    return body


def placed(items: list[Any], start: int, inserts: Sequence[Insert], post: str | None) -> list[Any]:
    """``items`` with each insert ``depth`` items from the end (never before ``start``), then ``post``."""
    at: dict[int, list[dict[str, str]]] = {}
    for insert in inserts:
        index = max(start, len(items) - insert.depth)
        at.setdefault(index, []).append({"role": insert.role, "content": insert.content})
    out: list[Any] = []
    for index, item in enumerate(items):
        out += at.get(index, ())
        out.append(item)
    out += at.get(len(items), ())
    if post:
        out.append({"role": "system", "content": post})
    return out
