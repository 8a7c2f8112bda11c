"""Daily rollups of the live fidelity records: what the console's fidelity chart reads.

Three tables per UTC day, route, target and role, kept current in the same
transaction as each batch of fidelity rows and built once from the rows of
a store written before them (with the usage rollups, same state row):

- ``fidelity_daily``: replies, replies in the profile's script, replies that broke character;
- ``fidelity_daily_markers``: replies using each marker;
- ``fidelity_daily_lengths``: replies of each length (a histogram: medians stay exact).

On 500,000 fidelity rows a year's chart read 2.4 s from the rows
(``bench/results/2026-12-02-console.md``); from these it reads a few
thousand rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from .fidelity import COLUMNS, MARKER_SEPARATOR
from .rollups import chunked, utc_day

KEYS = ("day", "route", "target", "role")
# What a row is summed from, as positions in a fidelity row (derived from its columns, never a copy).
READ = COLUMNS[:COLUMNS.index("length") + 1]
TIME, ROUTE, TARGET, ROLE, IN_SCRIPT, MARKERS, BREAKS, LENGTH = (
    READ.index(c) for c in ("time", "route", "target", "role", "in_script", "markers", "breaks", "length"))
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # table: (extra key, measures)
    "fidelity_daily": ((), ("replies", "in_script", "breaks")),
    "fidelity_daily_markers": (("marker",), ("replies",)),
    "fidelity_daily_lengths": (("length",), ("replies",)),
}


def ddl(table: str, options: str = "") -> str:
    """The table, keyed route first: a chart reads one route's days as one range of the key
    (and on SQLite, ``options`` = ``WITHOUT ROWID``, from the key itself: 206 -> 89 ms for a year's lengths)."""
    extra, measures = TABLES[table]
    keys = [f"{k} TEXT NOT NULL" for k in KEYS] + [f"{k} {'BIGINT' if k == 'length' else 'TEXT'} NOT NULL"
                                                    for k in extra]
    order = ("route", "day", "target", "role", *extra)
    return (f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(keys)}, "
            f"{', '.join(f'{m} BIGINT NOT NULL' for m in measures)}, PRIMARY KEY ({', '.join(order)})){options}")


def totals(rows: Iterable[Sequence[Any]]) -> dict[str, dict[tuple[Any, ...], list[int]]]:
    """Fidelity rows (``FidelityRecord`` fields, in order) summed per key of each table."""
    out: dict[str, dict[tuple[Any, ...], list[int]]] = {t: defaultdict(lambda: [0, 0, 0]) for t in TABLES}
    daily, markers, lengths = (out[t] for t in TABLES)
    for row in rows:
        key = (utc_day(float(row[TIME])), row[ROUTE], row[TARGET], row[ROLE])
        sums = daily[key]
        sums[0] += 1
        sums[1] += bool(row[IN_SCRIPT])
        sums[2] += bool(row[BREAKS])
        for marker in filter(None, str(row[MARKERS] or "").split(MARKER_SEPARATOR)):
            markers[(*key, marker)][0] += 1
        lengths[(*key, int(row[LENGTH]))][0] += 1
    return out


def statements(rows: Sequence[Sequence[Any]], param: str, max_parameters: int) -> list[tuple[str, list[Any]]]:
    """The upserts that add a batch of fidelity rows to the three tables."""
    out = []
    for table, summed in totals(rows).items():
        extra, measures = TABLES[table]
        items = [(*key, *sums[:len(measures)]) for key, sums in summed.items()]
        out += chunked(table, items, param, max_parameters, (*KEYS, *extra), measures)
    return out


def rebuild(db: Any, param: str, max_parameters: int) -> None:
    """All three from the fidelity rows already there (once, for a store written before them)."""
    for table in TABLES:
        db.execute(f"DELETE FROM {table}")
    cursor = db.execute(f"SELECT {', '.join(READ)} FROM fidelity")
    while batch := cursor.fetchmany(50_000):
        for sql, params in statements(batch, param, max_parameters):
            db.execute(sql, params)
