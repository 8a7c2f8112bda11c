"""Which target serves a conversation: sticky, stateless, the same on every worker and replica.

A conversation is named by the first of: Open WebUI's ``X-OpenWebUI-Chat-Id``,
the body's ``user``, Open WebUI's ``X-OpenWebUI-User-Id``, or the client key
with the conversation's first user message (which every later turn resends).
A hash of the route and that key picks a point in [0, 1); canaries own
consecutive slices of it by their shares and the primary the rest. Nothing
is stored, so restarts, workers, replicas and the two APIs agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..routing import Route, Target

CHAT_ID = b"x-openwebui-chat-id"
USER_ID = b"x-openwebui-user-id"
_SPAN = float(1 << 64)


def conversation_key(headers: Iterable[tuple[bytes, bytes]], body: Mapping[str, Any], key_id: str | None,
                     messages: Any) -> str:
    """The conversation this request belongs to, as a string (hashed before it is stored anywhere)."""
    chat_id = user_id = None
    for name, value in headers:
        if name == CHAT_ID:
            chat_id = value
        elif name == USER_ID:
            user_id = value
    if chat_id:
        return "chat:" + chat_id.decode("latin-1")
    user = body.get("user")
    if isinstance(user, str) and user:
        return "user:" + user
    if user_id:
        return "user:" + user_id.decode("latin-1")
    return f"first:{key_id or ''}:{first_user_text(messages)}"


def first_user_text(messages: Any) -> str:
    """The text of the first user message, in chat's or the Responses API's shape."""
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def digest(route: str, key: str) -> bytes:
    return hashlib.blake2b(f"{route}\x00{key}".encode(), digest_size=8).digest()


def point(digest_: bytes) -> float:
    """Where a conversation falls in [0, 1)."""
    return int.from_bytes(digest_, "big") / _SPAN


def canary_for(canaries: Sequence[Target], at: float) -> Target | None:
    """The canary whose slice holds ``at``; None: the primary's conversation."""
    start = 0.0
    for canary in canaries:
        if start <= at < start + canary.share:
            return canary
        start += canary.share
    return None


def assign(route: Route, key: str) -> tuple[Target | None, str]:
    """The canary serving this conversation (or None) and the conversation's hash for records."""
    found = digest(route.name, key)
    return canary_for(route.canaries, point(found)), found.hex()
