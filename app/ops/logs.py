"""Logs with a request id on every line, as text or JSON.

The request id lives in a context variable set by the chat endpoint, so every
log line written while serving a request carries it without passing it
around. It is also sent upstream and returned to the client as
``x-request-id``.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
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


# Access lines (one per request, at INFO) are the ones worth batching; they come from here.
ACCESS_LOGGERS = frozenset({"app.proxy.serving", "app.proxy.errors"})


class TurnFlushedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes every line when it is logged; hands access lines to the OS once per event-loop turn.

    ``sys.stderr`` is line-buffered (Python 3.9+), so a plain StreamHandler costs a ``write``
    system call per line. A busy server finishes many requests per turn of its loop: their
    access lines now go out together, right after that turn. Every other line (start-up,
    warnings, uvicorn's own, which always come last at shutdown) is flushed at once and takes
    the waiting access lines with it, so none is lost even when uvicorn ends the process by
    re-raising SIGTERM, which skips logging's own flush at exit.
    """

    def __init__(self, fd: int = 2) -> None:
        super().__init__(io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", write_through=False))
        self._scheduled = False
        self._deferred = False

    def emit(self, record: logging.LogRecord) -> None:
        # handle() holds the lock here, so this flag belongs to this record's flush().
        self._deferred = record.levelno == logging.INFO and record.name in ACCESS_LOGGERS
        super().emit(record)

    def flush(self) -> None:
        if self._deferred:
            self._deferred = False
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                if not self._scheduled:
                    self._scheduled = True
                    loop.call_soon(self._flush_now)
                return
        super().flush()

    def _flush_now(self) -> None:
        self._scheduled = False
        super().flush()


def setup_logging(level: str, fmt: str = "text") -> None:
    # What no line of ours shows, logging need not gather for every record: the caller's file and line,
    # the thread and the process (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = TurnFlushedHandler(sys.stderr.fileno())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every upstream request at INFO, and httpcore's DEBUG traces show
    # raw headers; our own access lines say more and never show keys.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
