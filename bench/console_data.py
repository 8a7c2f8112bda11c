"""The console's data on 10 million usage rows: raw GROUP BY queries against daily rollups (SQLite).

    python -m bench.console_data                      # 10,000,000 rows over 180 days
    python -m bench.console_data --rows 2000000 --days 90

Groundwork for the console (issue 23): every data endpoint must answer in under 300 ms
on 10M rows. This writes rows with the proxy's own usage schema (``SqliteStore``), times
the queries a console page makes (per day by route, by client, by target, by API, the top
end users) on the raw table (once: they take seconds) and on two daily rollups built from
it (best of three), and prints the figures with the rollups' size and build time.

The rollups: ``daily`` (day, route, client, upstream, model, role, api, kind) and
``daily_users`` (day, client, user_id): the end-user dimension is split off because it
multiplies the rows of everything else (with route in it too, it was 8.8M rows of 10M).
An end user belongs to one client here, as an Open WebUI user does to its connection.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.ops.usage import COLUMNS, SqliteStore, insert_sql

DAY = 86_400
ROLLUPS = {
    "daily": ("route", "client", "upstream", "model", "role", "api", "kind"),
    "daily_users": ("client", "user_id"),
}


def rows(count: int, days: int, rng: random.Random, end: float) -> Iterator[tuple[Any, ...]]:
    routes = ["maid", "maid-demo", "lily", "butler", "cat"]
    targets = [("openai", "ft:gpt-4o-mini:maid"), ("openai", "gpt-4.1-mini"), ("vllm", "qwen3-maid")]
    clients = [f"client{i}" for i in range(20)] + [None]
    users = [(f"user-{i:05d}", clients[i % len(clients)]) for i in range(2000)] + [(None, None)]
    for _ in range(count):
        upstream, model = rng.choice(targets)
        user, client = rng.choice(users)
        status = 200 if rng.random() > 0.02 else 502
        yield (end - rng.random() * days * DAY, rng.choice(routes), upstream, model, "chat", rng.random() < 0.7,
               status, None if status == 200 else "bad_gateway", "abcd1234", user,
               rng.randint(20, 2000), rng.randint(5, 800), 120.0, 900.0, False,
               "chat" if rng.random() < 0.8 else "responses", "primary", None, client)


def fill(store: SqliteStore, count: int, days: int, end: float) -> float:
    db = store.connect()
    rng = random.Random(23)
    per = 999 // len(COLUMNS)
    sql = insert_sql("?", per)
    started = time.perf_counter()
    batch: list[object] = []
    with db:
        for n, row in enumerate(rows(count, days, rng, end), 1):
            batch.extend(row)
            if n % per == 0:
                db.execute(sql, batch)
                batch = []
        if batch:
            width = len(COLUMNS)
            db.executemany(insert_sql("?", 1), [batch[i:i + width] for i in range(0, len(batch), width)])
    db.close()
    return time.perf_counter() - started


def build_rollups(path: Path) -> dict[str, tuple[float, int]]:
    import sqlite3

    db = sqlite3.connect(path)
    out = {}
    for name, dims in ROLLUPS.items():
        started = time.perf_counter()
        keys = ", ".join(dims)
        db.execute(f"DROP TABLE IF EXISTS {name}")
        db.execute(f"CREATE TABLE {name} (day TEXT NOT NULL, {', '.join(f'{d} TEXT NOT NULL' for d in dims)}, "
                   "requests INTEGER NOT NULL, errors INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, "
                   f"completion_tokens INTEGER NOT NULL, PRIMARY KEY (day, {keys})) WITHOUT ROWID")
        coalesced = ", ".join(f"coalesce({d}, '')" for d in dims)
        db.execute(f"INSERT INTO {name} SELECT date(time, 'unixepoch'), {coalesced}, count(*), "
                   "sum(status >= 400), sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0)) "
                   f"FROM usage GROUP BY 1, {', '.join(str(i + 2) for i in range(len(dims)))}")
        db.commit()
        out[name] = (time.perf_counter() - started, db.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
    db.close()
    return out


def queries() -> list[tuple[str, int, str, str]]:
    """(label, days, raw SQL, rollup SQL): what a console page asks, over 30 and 365 days. The raw
    queries take a Unix time, the rollups a UTC day."""
    out = []
    for span in (30, 365):
        for dim in ("route", "client", "model", "api"):
            out.append((f"per day by {dim}, {span} d", span,
                        f"SELECT date(time, 'unixepoch'), {dim}, count(*), sum(prompt_tokens), "
                        "sum(completion_tokens) FROM usage WHERE time >= ? GROUP BY 1, 2",
                        f"SELECT day, {dim}, sum(requests), sum(prompt_tokens), sum(completion_tokens) FROM daily "
                        "WHERE day >= ? GROUP BY 1, 2"))
        out.append((f"top 20 end users, {span} d", span,
                    "SELECT user_id, count(*), sum(prompt_tokens + completion_tokens) AS t FROM usage "
                    "WHERE time >= ? GROUP BY 1 ORDER BY t DESC LIMIT 20",
                    "SELECT user_id, sum(requests), sum(prompt_tokens + completion_tokens) AS t FROM daily_users "
                    "WHERE day >= ? GROUP BY 1 ORDER BY t DESC LIMIT 20"))
    return out


def best(db: Any, sql: str, params: tuple[object, ...], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        db.execute(sql, params).fetchall()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--raw-days", type=int, default=365,
                        help="Time the raw queries only up to this span (they take seconds each).")
    parser.add_argument("--dir", type=Path, help="Keep the database here (default: a temporary folder).")
    args = parser.parse_args()
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        path = (args.dir or Path(tmp)) / "usage.sqlite3"
        path.unlink(missing_ok=True)
        end = time.time()
        store = SqliteStore(path)
        print(f"{args.rows:,} rows over {args.days} days: written in {fill(store, args.rows, args.days, end):.0f} s, "
              f"{path.stat().st_size / 1e9:.2f} GB")
        for name, (seconds, count) in build_rollups(path).items():
            print(f"rollup {name}: {count:,} rows, built from the raw table in {seconds:.1f} s")
        db = sqlite3.connect(path)
        print(f"\n{'query':<32}{'raw ms':>10}{'rollup ms':>12}")
        for label, span, raw, rolled in queries():
            since = end - span * DAY
            day = time.strftime("%Y-%m-%d", time.gmtime(since))
            raw_ms = f"{best(db, raw, (since,), 1):.0f}" if span <= args.raw_days else "-"
            print(f"{label:<32}{raw_ms:>10}{best(db, rolled, (day,)):>12.1f}")
        db.close()


if __name__ == "__main__":
    main()
