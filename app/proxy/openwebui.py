"""What Open WebUI sends besides chats: background tasks and user headers.

Open WebUI asks the chat's own model for titles, tags, follow-ups, search
queries and emoji, by default. Those requests carry one user message that
starts with ``### Task:`` and no system message; an admin can also label
them with a connection header ``X-OpenWebUI-Task: {{TASK}}``. A persona
there ruins titles and burns fine-tuned tokens, so they are recognised and
handled per route (see ``task_mode`` in the config).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

TASK_HEADER = b"x-openwebui-task"
TASK_PREFIX = "### Task:"
USER_HEADERS = {
    b"x-openwebui-user-id": "user_id",
    b"x-openwebui-chat-id": "chat_id",
    b"x-openwebui-user-name": "user_name",
}
# Open WebUI's task names ({{TASK}}), recognised from its default prompts.
_TASK_KEYWORDS = (
    ("title", "title_generation"),
    ("tags", "tags_generation"),
    ("follow-up", "follow_up_generation"),
    ("follow up", "follow_up_generation"),
    ("predict 3-5", "follow_up_generation"),
    ("search quer", "query_generation"),
    ("autocompletion", "autocomplete_generation"),
    ("emoji", "emoji_generation"),
)
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class Caller:
    """Who Open WebUI says is behind a request (all optional)."""

    user_id: str | None = None
    chat_id: str | None = None
    user_name: str | None = None


def caller_from(headers: Iterable[tuple[bytes, bytes]]) -> Caller:
    found: dict[str, str] = {}
    for name, value in headers:
        field = USER_HEADERS.get(name)
        if field is not None:
            # Names arrive URL-quoted; ids are bounded so a log line stays a line.
            found[field] = _printable(unquote(value.decode("latin-1")))[:MAX_NAME]
    return Caller(**found)


def task_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == TASK_HEADER:
            text = _printable(value.decode("latin-1")).strip()[:MAX_NAME]
            return text or None
    return None


def detect_task(body: dict[str, Any], header: str | None) -> str | None:
    """The Open WebUI task a request is, or ``None`` for a real chat turn."""
    if header:
        return header
    messages = body.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        return None
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user":
        return None
    text = _text(message.get("content"))
    if not text.lstrip().startswith(TASK_PREFIX):
        return None
    head = text.lstrip()[len(TASK_PREFIX):][:200].lower()
    return next((name for keyword, name in _TASK_KEYWORDS if keyword in head), "task")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("text") or "")
    return ""


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())
