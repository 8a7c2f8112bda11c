"""The console's data endpoints on 10 million usage rows, SQLite and PostgreSQL, through a real server.

    python -m bench.console --dir /tmp/console-bench                 # SQLite, 10M rows over 180 days
    python -m bench.console --dir /tmp/console-bench --reuse         # the same file again
    python -m bench.console --postgres postgresql://...              # PostgreSQL (its tables are replaced)

Writes usage rows with the proxy's schema (as a store from before the rollups, so opening it builds
them once, as an upgrade would) and 5% as many live fidelity rows for the route with a training set
(the default sample), then starts ``persona-proxy serve`` on that store and times every console data
request a page makes, over HTTP with an admin key and with a client key: best and median of 5.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from app.ops.fidelity import COLUMNS as FIDELITY_COLUMNS
from app.ops.fidelity import MARKER_SEPARATOR
from app.ops.usage import COLUMNS, PostgresStore, SqliteStore, Store, fetch, rollups_built

from .console_data import DAY, fill, older_store, rows

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "maid_sample.jsonl"
TARGETS = [("ft:gpt-4o-mini:maid@openai", "primary"), ("gpt-4.1-mini@openai", "canary"),
           ("qwen3-maid@vllm", "shadow")]
CONFIG = f"""
[server]
admin_keys_env = "BENCH_ADMIN_KEYS"
log_level = "warning"
[upstreams.openai]
base_url = "http://127.0.0.1:9/v1"
[upstreams.vllm]
base_url = "http://127.0.0.1:9/v1"
[routes.maid]
upstream = "openai"
model = "ft:gpt-4o-mini:maid"
dataset = "{SAMPLE}"
[[routes.maid.fallbacks]]
upstream = "openai"
model = "gpt-4.1-mini"
[routes.lily]
upstream = "vllm"
model = "qwen3-maid"
[clients.client1]
key_env = "BENCH_CLIENT_KEYS"
[prices."ft:gpt-4o-mini:maid"]
input = 0.3
output = 1.2
[prices."gpt-4.1-mini"]
input = 0.4
output = 1.6
"""


def fidelity_rows(count: int, days: int, end: float, markers: list[str]) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(5)
    for _ in range(count):
        target, role = rng.choice(TARGETS)
        used = MARKER_SEPARATOR.join(m for m in markers if rng.random() < 0.4)
        yield (end - rng.random() * days * DAY, "maid", target, role, "chat", f"c{rng.randint(0, 99999)}", None,
               "zh-Hant", rng.random() < 0.95, used, rng.random() < 0.03, rng.randint(8, 240), None, None, None, None)


def fill_postgres(url: str, count: int, days: int, end: float, fidelity: int, markers: list[str]) -> float:
    import psycopg

    store = PostgresStore(url)
    with psycopg.connect(url) as db:
        for table in ("usage", "fidelity", "usage_daily", "usage_daily_users", "usage_monthly_users", "usage_rollups"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
    store.connect().close()  # the tables, empty
    started = time.perf_counter()
    with psycopg.connect(url) as db, db.cursor() as cur:
        for table in ("usage_daily", "usage_daily_users", "usage_monthly_users", "usage_rollups"):
            cur.execute(f"DELETE FROM {table}")  # as a store from before the rollups
        with cur.copy(f"COPY usage ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(count, days, random.Random(23), end):
                copy.write_row(row)
        with cur.copy(f"COPY fidelity ({', '.join(FIDELITY_COLUMNS)}) FROM STDIN") as copy:
            for row in fidelity_rows(fidelity, days, end, markers):
                copy.write_row(row)
    return time.perf_counter() - started


def fill_sqlite(path: Path, count: int, days: int, end: float, fidelity: int, markers: list[str]) -> float:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    spent = fill(SqliteStore(path), count, days, end)
    import sqlite3

    db = sqlite3.connect(path)
    started = time.perf_counter()
    marks = ", ".join("?" * len(FIDELITY_COLUMNS))
    with db:
        db.executemany(f"INSERT INTO fidelity ({', '.join(FIDELITY_COLUMNS)}) VALUES ({marks})",
                       fidelity_rows(fidelity, days, end, markers))
    db.close()
    older_store(path)
    return spent + time.perf_counter() - started


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--config", env["CONFIG"]],
                            env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):  # building the rollups of an older store may take a minute
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the proxy did not start")


def timings(base: str, key: str, path: str, repeats: int = 5) -> tuple[float, float, int]:
    times, status = [], 0
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=60) as http:
        for _ in range(repeats):
            started = time.perf_counter()
            status = http.get(path).status_code
            times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times), status


def report(base: str) -> None:
    print(f"\n{'request':<52}{'best ms':>9}{'median ms':>11}  status")
    asks = [("admin", "/console/api/overview")]
    for days in (7, 30, 365):
        asks += [("admin", f"/console/api/usage?by={by}&days={days}")
                 for by in ("route", "client", "user", "target", "api", "role")]
        asks += [("admin", f"/console/api/fidelity?days={days}"), ("client", f"/console/api/usage?by=user&days={days}")]
    for who, path in asks:
        best, median, status = timings(base, "bench-admin" if who == "admin" else "bench-client", path)
        print(f"{who + ' ' + path:<52}{best:>9.1f}{median:>11.1f}  {status}")


def sizes(store: Store) -> str:
    tables = ("usage", "fidelity", "usage_daily", "usage_daily_users", "usage_monthly_users")
    return ", ".join(f"{t} {fetch(store, f'SELECT count(*) FROM {t}', ())[0][0]:,}" for t in tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--dir", type=Path, help="Keep the SQLite file and config here (default: a temporary folder).")
    parser.add_argument("--reuse", action="store_true", help="Use the store as it is (written by an earlier run).")
    parser.add_argument("--postgres", metavar="URL",
                        help="Use this PostgreSQL database (its usage tables are replaced).")
    args = parser.parse_args()
    from app.tuning.fewshot import exchanges
    from app.tuning.fidelity import Profile

    markers = list(Profile.of([reply for _, reply in exchanges(SAMPLE)]).markers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
        env = {**os.environ, "CONFIG": str(folder / "config.toml"), "PERSONA_PROXY_DATA_DIR": str(folder),
               "BENCH_ADMIN_KEYS": "bench-admin", "BENCH_CLIENT_KEYS": "bench-client"}
        end, fidelity = time.time(), args.rows // 20
        if args.postgres:
            env["PERSONA_PROXY_USAGE_URL"] = args.postgres
            with (folder / "config.toml").open("a", encoding="utf-8") as f:
                f.write('[usage]\nurl_env = "PERSONA_PROXY_USAGE_URL"\n')
            store: Store = PostgresStore(args.postgres)
            if not args.reuse:
                spent = fill_postgres(args.postgres, args.rows, args.days, end, fidelity, markers)
                print(f"PostgreSQL: {args.rows:,} usage and {fidelity:,} fidelity rows copied in {spent:.0f} s")
        else:
            path = folder / "persona-proxy-usage.sqlite3"
            store = SqliteStore(path)
            if not args.reuse:
                spent = fill_sqlite(path, args.rows, args.days, end, fidelity, markers)
                print(f"SQLite: {args.rows:,} usage and {fidelity:,} fidelity rows written in {spent:.0f} s, "
                      f"{path.stat().st_size / 1e9:.2f} GB")
        started = time.perf_counter()
        proc, base = serve(env)
        answered = time.perf_counter() - started
        while not rollups_built(store):  # PostgreSQL: built by the first replica, in its recorder's thread
            time.sleep(0.5)
        print(f"serve answered after {answered:.1f} s, the rollups were built once after "
              f"{time.perf_counter() - started:.1f} s; {sizes(store)}")
        try:
            report(base)
        finally:
            proc.terminate()
            proc.wait(120)


if __name__ == "__main__":
    main()
