"""Usage records in PostgreSQL (several replicas share them).

Runs where PERSONA_PROXY_TEST_POSTGRES_URL names a database; .ci/run starts
a local PostgreSQL server and sets it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli

URL = os.environ.get("PERSONA_PROXY_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="PERSONA_PROXY_TEST_POSTGRES_URL is not set")
CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def clean_table():
    import psycopg

    with psycopg.connect(URL) as db:
        db.execute("DROP TABLE IF EXISTS usage")
        db.execute("DROP TABLE IF EXISTS fidelity")
        for table in ("usage_daily", "usage_daily_users", "usage_monthly_users", "usage_rollups"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
    yield
    with psycopg.connect(URL) as db:
        db.execute("DROP TABLE IF EXISTS usage")
        db.execute("DROP TABLE IF EXISTS fidelity")
        for table in ("usage_daily", "usage_daily_users", "usage_monthly_users", "usage_rollups"):
            db.execute(f"DROP TABLE IF EXISTS {table}")


def rows(expected: int) -> list[tuple]:
    import psycopg

    deadline = time.monotonic() + 5
    while True:
        found: list[tuple] = []
        try:
            with psycopg.connect(URL) as db:
                found = db.execute("SELECT route, status, prompt_tokens, key_id FROM usage ORDER BY time").fetchall()
        except psycopg.errors.UndefinedTable:
            pass
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_two_replicas_record_into_one_database(make_proxy, fake, clean_table, tmp_path: Path):
    usage = '[usage]\nurl_env = "TEST_USAGE_DB_URL"\n'
    first = make_proxy(extra_upstreams=usage, env={"TEST_USAGE_DB_URL": URL})
    second = make_proxy(extra_upstreams=usage, env={"TEST_USAGE_DB_URL": URL})
    for proxy in (first, second, first):
        with proxy.http() as http:
            assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    found = rows(3)
    assert [(r[0], r[1], r[2]) for r in found] == [("maid", 200, 5)] * 3
    assert len({r[3] for r in found}) == 2  # each replica's own key id
    assert not (tmp_path / "persona-proxy-usage.sqlite3").exists()

    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\n[routes.maid]\nupstream = "fake"\n'
                      f'model = "m"\n{usage}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["usage", "--config", str(config), "--by", "day", "--json"],
                                env={"TEST_USAGE_DB_URL": URL})
    assert result.exit_code == 0, result.output
    (day,) = json.loads(result.output)
    assert day["requests"] == 3 and day["prompt_tokens"] == 15
    assert URL not in result.output


def test_an_unreachable_database_never_fails_a_request(make_proxy, fake, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    bad = "postgresql://nobody:secret-pg-canary@127.0.0.1:1/none"
    proxy = make_proxy(extra_upstreams='[usage]\nurl_env = "TEST_USAGE_DB_URL"\n', env={"TEST_USAGE_DB_URL": bad})
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    deadline = time.monotonic() + 10
    while "record(s) dropped" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "record(s) dropped" in caplog.text
    assert "secret-pg-canary" not in caplog.text


def test_every_column_round_trips_through_postgres(clean_table):
    from app.ops.usage import COLUMNS, PostgresStore

    from .test_usage import ROUND_TRIP

    store = PostgresStore(URL)
    store.write(ROUND_TRIP)
    try:
        found = store._db.execute(f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY time").fetchall()
    finally:
        store.reset()
    assert found == [tuple(row) for row in ROUND_TRIP]


def test_fidelity_rows_round_trip_and_old_tables_get_the_new_columns(clean_table):
    import psycopg

    from app.ops.fidelity import COLUMNS as FIDELITY_COLUMNS
    from app.ops.fidelity import FidelityRecord
    from app.ops.usage import PostgresStore

    with psycopg.connect(URL) as db:  # a table from before the api, role and conversation columns
        db.execute("CREATE TABLE usage (time DOUBLE PRECISION NOT NULL, route TEXT NOT NULL, upstream TEXT NOT NULL,"
                   " model TEXT NOT NULL, kind TEXT NOT NULL, stream BOOLEAN NOT NULL, status INTEGER NOT NULL,"
                   " error_code TEXT, key_id TEXT, user_id TEXT, prompt_tokens BIGINT, completion_tokens BIGINT,"
                   " ttfb_ms DOUBLE PRECISION, duration_ms DOUBLE PRECISION NOT NULL, failover BOOLEAN NOT NULL)")
    records = [FidelityRecord(1.5, "maid", "m@u", "shadow", "responses", "abc", "req-1", "zh-Hant", True,
                              "主人\x1f❤", False, 21, 0.25, True, False, None),
               FidelityRecord(2.5, "maid", "m@u", "primary", "chat", None, None, "latin", False, "", True, 3)]
    store = PostgresStore(URL)
    try:
        store.write_fidelity(records)
        found = store._db.execute(f"SELECT {', '.join(FIDELITY_COLUMNS)} FROM fidelity ORDER BY time").fetchall()
        columns = {r[0] for r in store._db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage'").fetchall()}
    finally:
        store.reset()
    assert found == [tuple(r) for r in records]
    assert {"api", "role", "conversation"} <= columns


def test_live_fidelity_and_shadow_usage_go_to_postgres(make_proxy, fake, clean_table, tmp_path):
    import psycopg

    from ..fakes.styles import MAID, SAMPLE

    fake.speak(MAID)
    extra = ('[usage]\nurl_env = "TEST_USAGE_DB_URL"\n[fidelity]\nsample = 1.0\n')
    routes = (f'[routes.maid]\nupstream = "fake"\nmodel = "m"\ndataset = "{SAMPLE}"\n'
              '[[routes.maid.shadow]]\nupstream = "fake"\nmodel = "shadow-m"\n')
    proxy = make_proxy(routes, extra_upstreams=extra, env={"TEST_USAGE_DB_URL": URL})
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        with psycopg.connect(URL) as db:
            try:
                kinds = sorted(r[0] for r in db.execute("SELECT kind FROM usage").fetchall())
                roles = sorted(r[0] for r in db.execute("SELECT role FROM fidelity").fetchall())
            except psycopg.errors.UndefinedTable:
                kinds = roles = []
        if (len(kinds), len(roles)) == (2, 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert kinds == ["chat", "shadow"] and roles == ["primary", "shadow"]
    result = CliRunner().invoke(cli, ["succession", "maid", "--config", str(tmp_path / "config.toml"), "--json"],
                                env={"TEST_USAGE_DB_URL": URL, "TEST_UPSTREAM_KEY": "x"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_role = {t["role"]: t for t in report["targets"]}
    assert by_role["primary"]["requests"] == 1 and by_role["primary"]["script"] == 1.0
    assert by_role["shadow"]["paired"]["pairs"] == 1 and URL not in result.output
