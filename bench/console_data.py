"""The usage records on 10 million rows: the raw table against the daily rollups (SQLite).

    python -m bench.console_data                      # 10,000,000 rows over 180 days
    python -m bench.console_data --rows 2000000 --days 90 --raw-days 30

Writes rows with the proxy's own usage schema as a store from before the rollups
existed, then times what opening it for writing costs once (building the rollups from
every row, as ``serve`` does before it starts), and the totals ``persona-proxy usage
--by X --since N`` reads, from the raw rows alone (one run: they take seconds) and
from the rollups plus the raw rows of the part of a day before them (best of three).
Every figure is printed. Groundwork for the console (issue 23): its data endpoints must
answer in under 300 ms on 10M rows.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.cli.usage import grouped_rows
from app.ops.rollups import raw_query
from app.ops.usage import COLUMNS, SqliteStore, fetch, insert_sql

DAY = 86_400


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


def older_store(path: Path) -> None:
    """The file as a version without rollups left it."""
    import sqlite3

    db = sqlite3.connect(path)
    for table in ("usage_daily", "usage_daily_users", "usage_rollups"):
        db.execute(f"DROP TABLE IF EXISTS {table}")
    db.commit()
    db.close()


def timed(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--raw-days", type=int, default=30,
                        help="Time the raw queries only up to this span (they take seconds each).")
    parser.add_argument("--dir", type=Path, help="Keep the database here (default: a temporary folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = (args.dir or Path(tmp)) / "usage.sqlite3"
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
        end = time.time()
        store = SqliteStore(path)
        print(f"{args.rows:,} rows over {args.days} days: written in {fill(store, args.rows, args.days, end):.0f} s, "
              f"{path.stat().st_size / 1e9:.2f} GB")
        older_store(path)
        started = time.perf_counter()
        store.connect().close()
        sizes = {t: fetch(store, f"SELECT count(*) FROM {t}", ())[0][0] for t in ("usage_daily", "usage_daily_users")}
        print(f"rollups built once from every row in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{t} {n:,} rows" for t, n in sizes.items()))
        print(f"\n{'usage --by X --since N':<28}{'raw ms':>10}{'rollups ms':>12}")
        for span in (7, 30, 365):
            for by in ("day", "route", "client", "model", "api", "user"):
                since = end - span * DAY - 3600.5  # not at midnight: the raw rows cover the first part day
                raw_ms = (f"{timed(lambda s=since, b=by: raw_only(store, s, b), 1):.0f}"
                          if span <= args.raw_days else "-")
                rolled = timed(lambda s=since, b=by: grouped_rows(store, s, b), 3)
                print(f"{f'--by {by} --since {span}d':<28}{raw_ms:>10}{rolled:>12.1f}")


def raw_only(store: SqliteStore, since: float, by: str) -> object:
    return fetch(store, raw_query(by, store.day, store.param), (since,))


if __name__ == "__main__":
    main()
