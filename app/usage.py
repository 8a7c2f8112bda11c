"""Usage records: one row per completed request, written off the request path.

Requests hand a :class:`Completed` record to :class:`UsageWriter`, which
queues it and writes batches to SQLite from a worker thread. A slow, locked
or full disk never slows or fails a request: a batch that cannot be written
is logged and dropped, and so is a record that finds the queue full.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import time
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
BATCH_SIZE = 500
FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Completed:
    """What one request did; never holds a key, only a key's short hash."""

    time: float
    route: str
    upstream: str
    model: str
    kind: str  # chat | task
    stream: bool
    status: int
    error_code: str | None
    key_id: str | None
    user_id: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttfb_ms: float | None
    duration_ms: float
    failover: bool


COLUMNS = [f.name for f in fields(Completed)]
# dataclasses.astuple deep-copies every field: far too slow for thousands of rows a second.
_ROW = attrgetter(*COLUMNS)
SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    time REAL NOT NULL, route TEXT NOT NULL, upstream TEXT NOT NULL, model TEXT NOT NULL,
    kind TEXT NOT NULL, stream INTEGER NOT NULL, status INTEGER NOT NULL, error_code TEXT,
    key_id TEXT, user_id TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,
    ttfb_ms REAL, duration_ms REAL NOT NULL, failover INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_time ON usage (time);
"""
INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short busy timeout: a locked database costs a dropped batch, never a stall.
    db = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
    # WAL lets `persona-proxy usage` read while the proxy writes, and several
    # workers append without blocking each other for long.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db


class UsageWriter:
    """Batches records into SQLite from a background task and a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped = 0
        self.written = 0
        self._queue: asyncio.Queue[Completed] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._db: sqlite3.Connection | None = None

    def submit(self, record: Completed) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Write what is queued and stop; never interrupts a write in progress."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._db is not None:
            await asyncio.to_thread(self._db.close)
            self._db = None

    async def _run(self) -> None:
        # NOTE: never cancelled: a cancelled to_thread() leaves its thread writing
        # while the connection is closed under it.
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        while not self._queue.empty():
            batch = [self._queue.get_nowait() for _ in range(min(BATCH_SIZE, self._queue.qsize()))]
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[Completed]) -> None:
        try:
            if self._db is None:
                self._db = connect(self.path)
            with self._db:
                self._db.executemany(INSERT, [_ROW(r) for r in batch])
            self.written += len(batch)
        except (sqlite3.Error, OSError) as exc:
            self.dropped += len(batch)
            logger.warning("usage: %d record(s) dropped, %s (%s)", len(batch), type(exc).__name__, exc)
            self._db = None


def since_epoch(spec: str, now: float | None = None) -> float:
    """``7d``, ``12h``, ``30m`` or an ISO date, as a Unix time."""
    now = time.time() if now is None else now
    units = {"d": 86_400, "h": 3_600, "m": 60}
    if spec[:-1].isdigit() and spec[-1:] in units:
        return now - int(spec[:-1]) * units[spec[-1]]
    try:
        return dt.datetime.fromisoformat(spec).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise ValueError(f"--since takes 7d, 12h, 30m or a date like 2026-11-01, not {spec!r}") from None
