"""The fidelity rollups agree with the fidelity rows: batch by batch, and when built from an older store."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.ops import fidelity_rollups
from app.ops.fidelity import MARKER_SEPARATOR, FidelityRecord
from app.ops.usage import PostgresStore, SqliteStore, fetch

from ..fakes.postgres import postgres_schema
from .test_rollups import behind_its_back

NOW = 1_796_000_000.0
MARKERS = ("❤️", "～", "主人")


def records(count: int) -> list[FidelityRecord]:
    rng = random.Random(11)
    def markers() -> str:
        return MARKER_SEPARATOR.join(m for m in MARKERS if rng.random() < 0.5)

    return [FidelityRecord(NOW - rng.random() * 40 * 86_400, rng.choice(["maid", "lily"]),
                           rng.choice(["a@x", "b@y"]), rng.choice(["primary", "canary", "shadow"]), "chat", None, None,
                           "zh-Hant", rng.random() < 0.9, markers(), rng.random() < 0.1, rng.randint(5, 60))
            for _ in range(count)]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "usage.sqlite3")
    return PostgresStore(postgres_schema("fidelity_rollups_test"))


def expected(rows: list[FidelityRecord]) -> dict[str, Counter]:
    out: dict[str, Counter] = {table: Counter() for table in fidelity_rollups.TABLES}
    for table, summed in fidelity_rollups.totals(rows).items():
        width = len(fidelity_rollups.TABLES[table][1])
        out[table].update({(*key, i): value for key, sums in summed.items() for i, value in enumerate(sums[:width])})
    return out


def stored(store) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for table, (extra, measures) in fidelity_rollups.TABLES.items():
        keys = (*fidelity_rollups.KEYS, *extra)
        found = fetch(store, f"SELECT {', '.join((*keys, *measures))} FROM {table}", ())
        out[table] = Counter({(*row[:len(keys)], i): int(v) for row in found for i, v in
                              enumerate(row[len(keys):])})
    return out


def test_every_batch_adds_to_the_rollups_exactly(store):
    rows = records(700)
    for start in range(0, len(rows), 90):
        store.write_fidelity(rows[start:start + 90])
    store.reset()
    assert stored(store) == expected(rows)
    days = fetch(store, "SELECT sum(replies) FROM fidelity_daily", ())
    markers = Counter(m for r in rows for m in r.markers.split(MARKER_SEPARATOR) if m)
    assert int(days[0][0]) == 700
    assert {m: int(n) for m, n in fetch(store, "SELECT marker, sum(replies) FROM fidelity_daily_markers GROUP BY 1",
                                        ())} == dict(markers)


def test_an_older_store_gets_them_built_from_its_rows(store):
    rows = records(300)
    store.write_fidelity(rows)
    store.reset()
    behind_its_back(store, *(f"DROP TABLE {t}" for t in fidelity_rollups.TABLES), "DELETE FROM usage_rollups")
    store.connect().close()
    assert stored(store) == expected(rows)
