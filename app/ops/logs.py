"""Logs with a request id on every line, as text or JSON.

The request id lives in a context variable set by the chat endpoint, so every
log line written while serving a request carries it without passing it
around. It is also sent upstream and returned to the client as
``x-request-id``.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import secrets
import sys
import time

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
REQUEST_ID_HEADER = "x-request-id"
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


# A random per-process prefix and a counter: unique across workers and
# restarts, without a system call per request.
_PREFIX = "req_" + secrets.token_hex(6)
_COUNTER = itertools.count(1)


def new_request_id(offered: bytes | None = None) -> str:
    """The client's own id when it is short and plain, else a fresh one."""
    if offered:
        text = offered.decode("latin-1")
        if 0 < len(text) <= 64 and set(text) <= _ALLOWED:
            return text
    return f"{_PREFIX}{next(_COUNTER):08x}"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        # Structured fields of access lines (route, status, tokens, ...) as JSON fields of their own.
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The text line, with its timestamp formatted once per second instead of once per line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"


def setup_logging(level: str, fmt: str = "text") -> None:
    # What no line of ours shows, logging need not gather for every record: the caller's file and line,
    # the thread and the process (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every upstream request at INFO, and httpcore's DEBUG traces show
    # raw headers; our own access lines say more and never show keys.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
