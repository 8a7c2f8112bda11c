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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
BATCH_SIZE = 500
FLUSH_SECONDS = 1.0


class Completed(NamedTuple):
    """What one request did; never holds a key, only a key's short hash.

    A named tuple, not a dataclass: it is made once per request and is already
    the row that is written (a frozen dataclass took 3.3 us to build, this 0.5).
    """

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
    api: str = "chat"  # chat | responses: which API the client called


COLUMNS = list(Completed._fields)
_TABLE = """
CREATE TABLE IF NOT EXISTS usage (
    time {real} NOT NULL, route TEXT NOT NULL, upstream TEXT NOT NULL, model TEXT NOT NULL,
    kind TEXT NOT NULL, stream {flag} NOT NULL, status INTEGER NOT NULL, error_code TEXT,
    key_id TEXT, user_id TEXT, prompt_tokens BIGINT, completion_tokens BIGINT,
    ttfb_ms {real}, duration_ms {real} NOT NULL, failover {flag} NOT NULL, api TEXT NOT NULL DEFAULT 'chat'
)"""
# Tables made before the api column existed get it, with their rows counted as chat.
_ADD_API = "ALTER TABLE usage ADD COLUMN {if_not_exists}api TEXT NOT NULL DEFAULT 'chat'"


class SqliteStore:
    """Usage rows in one SQLite file (the default)."""

    day = "date(time, 'unixepoch')"
    param = "?"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def connect(self, read_only: bool = False) -> sqlite3.Connection:
        import sqlite3  # on the first write, not at start: a worker that has written nothing does not carry it

        if read_only:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A short busy timeout: a locked database costs a dropped batch, never a stall.
        db = sqlite3.connect(self.path, timeout=1.0, check_same_thread=False)
        # WAL lets `persona-proxy usage` read while the proxy writes, and several
        # workers append without blocking each other for long.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_TABLE.format(real="REAL", flag="INTEGER"))
        if "api" not in {row[1] for row in db.execute("PRAGMA table_info(usage)")}:
            db.execute(_ADD_API.format(if_not_exists=""))
        db.execute("CREATE INDEX IF NOT EXISTS usage_time ON usage (time)")
        return db

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._db is None:
            self._db = self.connect()
        with self._db:
            self._db.executemany(insert_sql(self.param), rows)

    def reset(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = None

    def exists(self) -> bool:
        return self.path.exists()

    def where(self) -> str:
        return str(self.path)


class PostgresStore:
    """Usage rows in PostgreSQL, shared by several replicas."""

    day = "to_char(to_timestamp(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    param = "%s"

    def __init__(self, url: str) -> None:
        self._url = url
        self._db: Any = None

    def connect(self, read_only: bool = False) -> Any:
        import psycopg

        db = psycopg.connect(self._url, connect_timeout=5)
        if not read_only:
            # Not `with db:`: for psycopg that closes the connection at the end. The lock
            # serialises replicas starting together: concurrent CREATE IF NOT EXISTS can collide.
            db.execute("SELECT pg_advisory_xact_lock(7260413)")
            db.execute(_TABLE.format(real="DOUBLE PRECISION", flag="BOOLEAN"))
            db.execute(_ADD_API.format(if_not_exists="IF NOT EXISTS "))
            db.execute("CREATE INDEX IF NOT EXISTS usage_time ON usage (time)")
            db.commit()
        return db

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._db is None:
            self._db = self.connect()
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(insert_sql(self.param), rows)

    def reset(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = None

    def exists(self) -> bool:
        return True

    def where(self) -> str:
        return "the PostgreSQL database"


Store = SqliteStore | PostgresStore


def insert_sql(param: str) -> str:
    return f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join([param] * len(COLUMNS))})"


def store_for(path: Path, url: str | None) -> Store:
    return PostgresStore(url) if url else SqliteStore(path)


class UsageWriter:
    """Batches records into a store from a background task and a worker thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dropped = 0
        self.written = 0
        # A plain list: appending is all a request does (asyncio.Queue's bookkeeping is not needed).
        self._pending: list[Completed] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def submit(self, record: Completed) -> None:
        if len(self._pending) >= QUEUE_LIMIT:
            self.dropped += 1
        else:
            self._pending.append(record)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Write what is queued and stop; never interrupts a write in progress."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await asyncio.to_thread(self.store.reset)

    async def _run(self) -> None:
        # NOTE: never cancelled: a cancelled to_thread() leaves its thread writing
        # while the connection is closed under it.
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_SECONDS)
            await self._flush()
        await self._flush()  # a stop before the first turn must not lose what is queued

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:BATCH_SIZE]
            del self._pending[:BATCH_SIZE]
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[Completed]) -> None:
        try:
            self.store.write(batch)
            self.written += len(batch)
        except Exception as exc:  # any driver or disk failure: drop, log, reconnect next time
            self.dropped += len(batch)
            logger.warning("usage: %d record(s) dropped, %s", len(batch), type(exc).__name__)
            with contextlib.suppress(Exception):
                self.store.reset()


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
