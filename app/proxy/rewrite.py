"""Rewrite the top-level ``model`` of a JSON document without re-serializing it.

Responses must report the route name, not the upstream id, and otherwise
stay byte-for-byte what the upstream sent. OpenAI, vLLM and Ollama write
``"model"`` near the start of every object, before any nested value, so a
cheap check of the prefix proves the match is a top-level key; anything
else falls back to a full parse.
"""

from __future__ import annotations

import orjson

_KEY = b'"model"'


def rewrite_model(doc: bytes, model: bytes) -> bytes | None:
    """Return ``doc`` with its top-level ``model`` string set to ``model``.

    ``model`` is the JSON-encoded new value (quotes included). Returns
    ``None`` when ``doc`` is not a JSON object; returns ``doc`` unchanged when
    it is an object without a ``model`` string.
    """
    fast = _rewrite_in_place(doc, model)
    if fast is not None:
        return fast
    try:
        parsed = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    if not isinstance(parsed.get("model"), str):
        return doc
    parsed["model"] = orjson.loads(model)
    return orjson.dumps(parsed)


def _rewrite_in_place(doc: bytes, model: bytes) -> bytes | None:
    span = locate_model(doc)
    if span is None:
        return None
    return doc[: span[0]] + model + doc[span[1] :]


def locate_model(doc: bytes) -> tuple[int, int] | None:
    """Where the top-level ``model`` string value (quotes included) lies, when provably safe."""
    start = doc.find(_KEY)
    if start < 0:
        return None
    prefix = doc[:start]
    # Top level and outside any string: exactly one '{' opened before the key,
    # nothing nested, and no escapes that could hide a quote. The rest of the
    # document is not validated here: a truncated one (no closing brace) takes
    # the full parse and fails there.
    if (
        doc.rstrip()[-1:] != b"}"
        or prefix.lstrip()[:1] != b"{"
        or prefix.count(b"{") != 1
        or b"[" in prefix
        or b"}" in prefix
        or b"\\" in prefix
        or prefix.count(b'"') % 2
    ):
        return None
    i = _skip_space(doc, start + len(_KEY))
    if doc[i : i + 1] != b":":
        return None
    i = _skip_space(doc, i + 1)
    if doc[i : i + 1] != b'"':
        return None
    end = doc.find(b'"', i + 1)
    if end < 0 or b"\\" in doc[i + 1 : end]:
        return None
    return i, end + 1


class ModelRewriter:
    """:func:`rewrite_model` for a stream, whose events share one prefix.

    Every chunk of a stream starts with the same ``{"id": ..., "model": ...``
    bytes; once one event's prefix has been proven safe, later events with
    the same prefix are rewritten by a prefix swap.
    """

    def __init__(self, model: bytes) -> None:
        self.model = model
        self._old = b""
        self._new = b""

    @property
    def prefix(self) -> tuple[bytes, bytes] | None:
        """The proven event prefix and its rewritten form, once an event has shown them."""
        return (self._old, self._new) if self._old else None

    def __call__(self, doc: bytes) -> bytes | None:
        old = self._old
        if old and doc.startswith(old) and doc[-1:] == b"}":
            return self._new + doc[len(old) :]
        span = locate_model(doc)
        if span is None:
            return rewrite_model(doc, self.model)
        self._old, self._new = doc[: span[1]], doc[: span[0]] + self.model
        return self._new + doc[span[1] :]


def _skip_space(doc: bytes, i: int) -> int:
    while doc[i : i + 1] in (b" ", b"\t", b"\n", b"\r"):
        i += 1
    return i
