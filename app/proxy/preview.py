"""What an upstream request looks like in a debug line: secrets redacted, long strings cut short."""

from __future__ import annotations

import re
from typing import Any

import orjson

SECRET_FIELD = re.compile(r"(?:^|_)(?:key|token|secret|password|authorization)$", re.IGNORECASE)
PREVIEW_CHARS = 200


def body_preview(body: Any) -> str:
    """The upstream body for a debug line: secret-looking fields redacted, long strings cut short."""
    def shorten(value: Any, key: str = "") -> Any:
        if SECRET_FIELD.search(key):
            return "[redacted]"
        if isinstance(value, dict):
            return {k: shorten(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v) for v in value]
        if isinstance(value, str) and len(value) > PREVIEW_CHARS:
            return f"{value[:PREVIEW_CHARS]}…(+{len(value) - PREVIEW_CHARS} chars)"
        return value

    return orjson.dumps(shorten(body)).decode()

