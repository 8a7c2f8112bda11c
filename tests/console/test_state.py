"""Store reads for the console: stopped at the deadline, empty before anything was recorded."""

from __future__ import annotations

import time

import pytest

from app.console import state
from app.ops.usage import SqliteStore
from app.proxy.errors import ServiceUnavailable

ENDLESS = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n", ())


async def test_a_query_past_the_deadline_is_stopped_with_a_503(tmp_path, monkeypatch):
    store = SqliteStore(tmp_path / "usage.sqlite3")
    store.open()
    store.reset()
    monkeypatch.setattr(state, "DEADLINE_SECONDS", 0.2)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        await state.run_queries(store, {"endless": ENDLESS})
    assert time.monotonic() - started < 3 and caught.value.code == "store_unavailable"


async def test_a_store_with_nothing_recorded_reads_as_empty(tmp_path):
    missing = SqliteStore(tmp_path / "none.sqlite3")
    assert await state.run_queries(missing, {"a": ("SELECT * FROM usage_daily", ())}) == {"a": []}
    assert not (tmp_path / "none.sqlite3").exists()  # reading never creates the file
