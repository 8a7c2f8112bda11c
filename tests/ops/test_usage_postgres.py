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
    yield
    with psycopg.connect(URL) as db:
        db.execute("DROP TABLE IF EXISTS usage")


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
