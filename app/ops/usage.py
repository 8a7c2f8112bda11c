"""Usage records: one row per completed request, in SQLite or PostgreSQL.

Rows reach a store in batches through :class:`~app.ops.recorder.Recorder`,
off the request path; ``persona-proxy usage`` reads them back.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import fidelity, fidelity_rollups, rollups

if TYPE_CHECKING:
    import sqlite3

    from ..config import Config


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
    role: str = "primary"  # primary | fallback | canary | shadow: the target's part in its route
    conversation: str | None = None  # a hash of the conversation key, on routes with canaries, shadows or a dataset
    client: str | None = None  # the [clients.NAME] whose key it was (None: a key from api_keys_env, or no key)


def reported_tokens(usage: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """Prompt and completion tokens an upstream reported, in either API's words (chat's or Responses')."""
    usage = usage or {}
    return (_count(usage.get("prompt_tokens", usage.get("input_tokens"))),
            _count(usage.get("completion_tokens", usage.get("output_tokens"))))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


logger = logging.getLogger(__name__)
COLUMNS = list(Completed._fields)
# SQLite before 3.32 (the oldest limit) takes at most 999 parameters in one statement.
MAX_PARAMETERS = 999
ROWS_PER_INSERT = MAX_PARAMETERS // len(COLUMNS)
_TABLE = """
CREATE TABLE IF NOT EXISTS usage (
    time {real} NOT NULL, route TEXT NOT NULL, upstream TEXT NOT NULL, model TEXT NOT NULL,
    kind TEXT NOT NULL, stream {flag} NOT NULL, status INTEGER NOT NULL, error_code TEXT,
    key_id TEXT, user_id TEXT, prompt_tokens BIGINT, completion_tokens BIGINT,
    ttfb_ms {real}, duration_ms {real} NOT NULL, failover {flag} NOT NULL, api TEXT NOT NULL DEFAULT 'chat',
    role TEXT NOT NULL DEFAULT 'primary', conversation TEXT, client TEXT
)"""
# Columns added since the table was first made: older tables get them, their rows counted as chat
# requests served by the primary.
_ADDED = {"api": "api TEXT NOT NULL DEFAULT 'chat'", "role": "role TEXT NOT NULL DEFAULT 'primary'",
          "conversation": "conversation TEXT", "client": "client TEXT"}
_ADD_COLUMN = "ALTER TABLE usage ADD COLUMN {if_not_exists}{column}"


class _Writer:
    """What both stores do alike: one connection for writing, opened when first needed, and the rows of
    each batch written with their rollups (``_insert`` puts them in one transaction, as each driver does)."""

    param: str
    _db: Any

    def connect(self, read_only: bool = False) -> Any:
        raise NotImplementedError

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                then: Sequence[tuple[str, list[Any]]] = ()) -> None:
        raise NotImplementedError

    def open(self) -> Any:
        """The connection for writing, made now if there is none (building any missing rollups)."""
        if self._db is None:
            self._db = self.connect()
        return self._db

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._insert("usage", COLUMNS, rows, rollups.statements(rows, COLUMNS, self.param, MAX_PARAMETERS))

    def write_fidelity(self, rows: Sequence[fidelity.FidelityRecord]) -> None:
        self._insert("fidelity", fidelity.COLUMNS, rows, fidelity_rollups.statements(rows, self.param, MAX_PARAMETERS))

    def reset(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = None


class SqliteStore(_Writer):
    """Usage rows in one SQLite file (the default)."""

    day = "date(time, 'unixepoch')"
    param = "?"
    open_at_start = False  # `serve` opens an existing file before workers fork; a new one waits for a write

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
        present = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
        for name, column in _ADDED.items():
            if name not in present:
                db.execute(_ADD_COLUMN.format(if_not_exists="", column=column))
        db.execute("CREATE INDEX IF NOT EXISTS usage_time ON usage (time)")
        db.execute(fidelity.TABLE.format(real="REAL", flag="INTEGER"))
        db.execute(fidelity.INDEX)
        if not _rollups_built(db, " WITHOUT ROWID"):
            db.execute("BEGIN IMMEDIATE")  # one writer builds them; the others wait, then find them built
            try:
                _build_rollups(db, self.day, self.param)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return db

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                then: Sequence[tuple[str, list[Any]]] = ()) -> None:
        per_statement = MAX_PARAMETERS // len(columns)
        # Several rows per statement: sqlite3 lets go of the GIL around every statement it
        # steps, and on a busy server each hand-back to the event loop costs more than the row.
        # The rollups' upserts (``then``) go in the same transaction: they never disagree with the rows.
        with self.open() as db:
            for start in range(0, len(rows), per_statement):
                part = rows[start:start + per_statement]
                db.execute(insert_sql(self.param, len(part), table, tuple(columns)),
                           [value for row in part for value in row])
            for sql, params in then:
                db.execute(sql, params)

    def exists(self) -> bool:
        return self.path.exists()

    def where(self) -> str:
        return str(self.path)


class PostgresStore(_Writer):
    """Usage rows in PostgreSQL, shared by several replicas."""

    day = "to_char(to_timestamp(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    param = "%s"
    open_at_start = True

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
            for column in _ADDED.values():
                db.execute(_ADD_COLUMN.format(if_not_exists="IF NOT EXISTS ", column=column))
            db.execute("CREATE INDEX IF NOT EXISTS usage_time ON usage (time)")
            db.execute(fidelity.TABLE.format(real="DOUBLE PRECISION", flag="BOOLEAN"))
            db.execute(fidelity.INDEX)
            if not _rollups_built(db):  # under the lock: one replica builds them, the others find them built
                _build_rollups(db, self.day, self.param)
            db.commit()
        return db

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                then: Sequence[tuple[str, list[Any]]] = ()) -> None:
        db = self.open()
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(insert_sql(self.param, 1, table, tuple(columns)), rows)
            for sql, params in then:  # the rollups, in the same transaction as the rows
                cursor.execute(sql, params)

    def exists(self) -> bool:
        return True

    def where(self) -> str:
        return "the PostgreSQL database"


Store = SqliteStore | PostgresStore


def _rollups_built(db: Any, table_options: str = "") -> bool:
    db.execute(rollups.STATE)
    for table in rollups.TABLES:
        db.execute(rollups.ddl(table))
    for index in rollups.INDEXES:
        db.execute(index)
    for table in fidelity_rollups.TABLES:
        db.execute(fidelity_rollups.ddl(table, table_options))
    found = db.execute(f"SELECT count(*) FROM usage_rollups WHERE name = '{rollups.VERSION}'").fetchone()
    if not (found and found[0]):
        return False
    # Rows emptied (the table dropped or truncated to start over) while the rollups still count them:
    # build them again rather than report what is gone.
    empty = db.execute("SELECT NOT EXISTS (SELECT 1 FROM usage)").fetchone()[0]
    counted = db.execute("SELECT EXISTS (SELECT 1 FROM usage_daily)").fetchone()[0]
    return not (empty and counted)


def _build_rollups(db: Any, day: str, param: str) -> None:
    """The rollups from every row already recorded (once: a store from before they existed)."""
    if _rollups_built(db):  # another writer built them while this one waited for the lock
        return
    rows = db.execute("SELECT count(*) FROM usage").fetchone()[0]
    if rows:
        logger.info("usage records: building the daily rollups from %d row(s), once", rows)
    for table in rollups.TABLES:
        db.execute(f"DELETE FROM {table}")
        db.execute(rollups.backfill(table, day))
    fidelity_rollups.rebuild(db, param, MAX_PARAMETERS)
    db.execute(f"DELETE FROM usage_rollups WHERE name = '{rollups.VERSION}'")
    db.execute(f"INSERT INTO usage_rollups (name, built) VALUES ('{rollups.VERSION}', {time.time()})")


@functools.cache
def insert_sql(param: str, rows: int, table: str = "usage", columns: tuple[str, ...] = tuple(COLUMNS)) -> str:
    """An INSERT of ``rows`` rows at once into ``table``."""
    row = f"({', '.join([param] * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


def store_for(path: Path, url: str | None) -> Store:
    return PostgresStore(url) if url else SqliteStore(path)


def usage_store(config: Config) -> Store:
    """The config's usage store: PostgreSQL when ``[usage] url_env`` holds a URL, else the SQLite file."""
    return store_for(config.usage_file, config.usage_url.get_secret_value() if config.usage_url else None)


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


def fetch(store: Store, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one read-only query on a store (``sql`` uses the store's ``param`` marks)."""
    db = store.connect(read_only=True)
    try:
        return list(db.execute(sql, params).fetchall())
    finally:
        db.close()


def rollups_built(store: Store) -> bool:
    """Whether the store's daily rollups cover every row (a writer of this version has opened it)."""
    try:
        found = fetch(store, "SELECT count(*) FROM usage_rollups WHERE name = " + store.param, (rollups.VERSION,))
    except Exception:  # no such table: an older writer, or none yet
        return False
    return bool(found and found[0][0])


def spent_since(store: Store, since: float) -> list[tuple[str, str | None, str, str, int, int]]:
    """Tokens per client, end user, model and UTC day since ``since``: what rebuilds budgets at start-up.

    Shadow calls are left out: they are the operator's, not the client's (their rows carry no client).
    From midnight on (a budget period starts at one), the end-user rollup answers: a month of 10M rows
    is a few thousand rollup rows instead of a scan of the rows.
    """
    if not store.exists():
        return []
    if dt.datetime.fromtimestamp(since, dt.UTC).time() == dt.time() and rollups_built(store):
        day = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%d")
        rows = fetch(store, "SELECT client, NULLIF(user_id, ''), model, day, sum(prompt_tokens), "
                            f"sum(completion_tokens) FROM usage_daily_users WHERE day >= {store.param} "
                            "AND client <> '' GROUP BY 1, 2, 3, 4", (day,))
    else:
        rows = fetch(store, f"SELECT client, user_id, model, {store.day}, sum(coalesce(prompt_tokens, 0)), "
                            "sum(coalesce(completion_tokens, 0)) FROM usage WHERE time >= "
                            f"{store.param} AND client IS NOT NULL AND kind <> 'shadow' GROUP BY 1, 2, 3, 4",
                     (since,))
    return [(str(c), u, str(m), str(d), int(p or 0), int(o or 0)) for c, u, m, d, p, o in rows]


def client_totals(store: Store, since: float) -> dict[str, tuple[int, int]]:
    """Requests and tokens per client since ``since`` (shadow calls left out)."""
    if not store.exists():
        return {}
    rows = fetch(store, "SELECT client, count(*), sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) "
                        f"FROM usage WHERE time >= {store.param} AND client IS NOT NULL AND kind <> 'shadow' "
                        "GROUP BY 1", (since,))
    return {str(c): (int(n or 0), int(t or 0)) for c, n, t in rows}
