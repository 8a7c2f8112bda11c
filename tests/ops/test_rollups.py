"""The daily rollups agree with the usage rows: kept in the rows' transaction, built once for an older store,
rebuilt when the rows are emptied, and read by `usage` (with the raw rows for the part of a day before them)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from app.cli.usage import grouped_rows
from app.ops import rollups
from app.ops.rollups import GROUPS
from app.ops.usage import COLUMNS, Completed, PostgresStore, SqliteStore, fetch, rollups_built, spent_since

from ..fakes.postgres import postgres_schema

DAY = 86_400
NOW = time.time()


def rows(count: int, seed: int = 1) -> list[Completed]:
    rng = random.Random(seed)
    return [Completed(NOW - rng.random() * 9 * DAY, rng.choice(["maid", "lily"]), rng.choice(["a", "b"]),
                      rng.choice(["m1", "m2"]), rng.choice(["chat", "task"]), rng.random() < 0.5,
                      rng.choice([200, 200, 502]), rng.choice([None, None, "timeout"]), rng.choice([None, "k1"]),
                      rng.choice([None, "u1", "u2"]), rng.choice([None, 3, 40]), rng.choice([None, 2, 9]), None,
                      10.0, False, rng.choice(["chat", "responses"]), rng.choice(["primary", "canary"]), None,
                      rng.choice([None, "bot", "web"]))
            for _ in range(count)]


def raw(store, since: float, by: str) -> list[tuple]:
    group = store.day if by == "day" else GROUPS[by]
    found = fetch(store, f"SELECT {group}, model, count(*), sum(CASE WHEN status >= 400 OR error_code IS NOT NULL "
                         "THEN 1 ELSE 0 END), sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0)) "
                         f"FROM usage WHERE time >= {store.param} GROUP BY 1, 2", (since,))
    return merged(found)


def merged(found) -> list[tuple]:
    totals: dict = {}
    for group, model, *counts in found:
        entry = totals.setdefault((group, model), [0, 0, 0, 0])
        for i, value in enumerate(counts):
            entry[i] += int(value or 0)
    return sorted(((*key, *values) for key, values in totals.items()), key=str)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "usage.sqlite3")
        return
    yield PostgresStore(postgres_schema("rollups_test"))


ROLLUP_TABLES = (*rollups.TABLES, "usage_rollups")


def behind_its_back(store, *statements: str) -> None:
    """SQL run as an operator would, outside the store (which would build its rollups on connecting)."""
    if isinstance(store, SqliteStore):
        import sqlite3

        db = sqlite3.connect(store.path)
    else:
        import psycopg

        db = psycopg.connect(store._url)
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def assert_agree(store) -> None:
    assert rollups_built(store)
    month = f"substr({store.day}, 1, 8) || '01'"
    raw_months = fetch(store, f"SELECT {month}, coalesce(client, ''), coalesce(user_id, ''), model, count(*), "
                              "sum(coalesce(prompt_tokens, 0)) FROM usage GROUP BY 1, 2, 3, 4", ())
    rolled = fetch(store, "SELECT day, client, user_id, model, requests, prompt_tokens FROM usage_monthly_users", ())
    assert rolled and sorted((*r[:4], int(r[4]), int(r[5])) for r in raw_months) == \
        sorted((*r[:4], int(r[4]), int(r[5])) for r in rolled)
    for by in GROUPS:
        midnight = NOW // DAY * DAY - 3 * DAY
        # Rows after `since` added (late in a day), or the day's rollup less the rows before it (early).
        for since in (midnight, midnight + 2 * 3600.5, midnight + 22 * 3600.5, NOW - 30 * DAY, NOW + DAY):
            assert merged(grouped_rows(store, since, by)) == raw(store, since, by), (by, since)


def test_the_rollups_agree_with_the_rows_for_every_grouping(store):
    batch = rows(600)
    for start in range(0, len(batch), 70):  # several batches, keys repeating across them
        store.write(batch[start:start + 70])
    store.reset()
    assert_agree(store)
    daily = fetch(store, "SELECT sum(requests) FROM usage_daily", ())
    assert int(daily[0][0]) == 600


def test_an_older_store_gets_its_rollups_built_once(store):
    store.write(rows(300))
    store.reset()
    behind_its_back(store, *(f"DROP TABLE {table}" for table in ROLLUP_TABLES))
    assert not rollups_built(store)  # as a store written before them
    store.write(rows(50, seed=2))  # the first write of this version builds them, then adds its batch
    store.reset()
    assert_agree(store)


def test_rows_emptied_behind_the_rollups_rebuild_them(store):
    store.write(rows(100))
    store.reset()
    behind_its_back(store, "DELETE FROM usage")
    store.write(rows(10, seed=3))
    store.reset()
    assert_agree(store)
    assert int(fetch(store, "SELECT sum(requests) FROM usage_daily", ())[0][0]) == 10


def test_two_processes_writing_at_once_keep_them_exact(tmp_path):
    path = tmp_path / "usage.sqlite3"
    SqliteStore(path).connect().close()
    script = ("import sys; from tests.ops.test_rollups import rows; from app.ops.usage import SqliteStore\n"
              "store = SqliteStore(__import__('pathlib').Path(sys.argv[1]))\n"
              "for i in range(20): store.write(rows(25, seed=int(sys.argv[2]) * 100 + i))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)]) for n in (1, 2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    store = SqliteStore(path)
    assert int(fetch(store, "SELECT sum(requests) FROM usage_daily", ())[0][0]) == 1000
    assert_agree(store)


def test_the_rollups_read_the_fields_where_usage_writes_them():
    row = rows(1)[0]
    ((key, sums),) = rollups.totals([row], COLUMNS)["usage_daily_users"].items()
    assert key[1:] == (row.client or "", row.user_id or "", row.model)
    assert sums == [1, int(row.status >= 400 or row.error_code is not None), row.prompt_tokens or 0,
                    row.completion_tokens or 0]
    boundary, day = rollups.split_at_day(1_796_000_000.5)
    assert boundary > 1_796_000_000.5 and time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(boundary)) == f"{day} 00:00:00"


def test_serve_builds_an_older_files_rollups_before_it_serves(tmp_path):
    from ..fakes.servers import serve_process

    path = tmp_path / "persona-proxy-usage.sqlite3"
    store = SqliteStore(path)
    store.write(rows(40))
    store.reset()
    behind_its_back(store, *(f"DROP TABLE {table}" for table in ROLLUP_TABLES))
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "PERSONA_PROXY_API_KEYS": ""}
    with serve_process(["--workers", "2"], env=env, cwd=tmp_path) as (proc, _):
        assert rollups_built(store)
    assert "building the daily rollups from 40 row(s), once" in proc.output  # type: ignore[attr-defined]


def test_budgets_read_from_the_rollups_what_the_rows_say(store):
    batch = rows(500, seed=4) + [row._replace(kind="shadow", role="shadow", client=None) for row in rows(50, seed=5)]
    store.write(batch)
    store.reset()
    midnight = NOW // DAY * DAY - 5 * DAY
    expected: dict[tuple, list[int]] = {}
    for row in batch:
        if row.time >= midnight and row.client is not None and row.kind != "shadow":
            day = time.strftime("%Y-%m-%d", time.gmtime(row.time))
            sums = expected.setdefault((row.client, row.user_id, row.model, day), [0, 0])
            sums[0] += row.prompt_tokens or 0
            sums[1] += row.completion_tokens or 0
    assert rollups_built(store)
    from_rollups = spent_since(store, midnight)
    assert {(c, u, m, d): [p, o] for c, u, m, d, p, o in from_rollups} == expected
    # Not from a midnight: the rows themselves, with the same answer for the same whole days.
    from_rows = spent_since(store, midnight - 0.5)
    assert {k: v for k, v in ((r[:4], list(r[4:])) for r in from_rows) if k[3] in {d for *_, d in expected}} == \
        expected
