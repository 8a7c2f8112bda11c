"""Usage records (streamed, plain, unwritable store) and the usage report."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.ops.usage import COLUMNS, Completed, SqliteStore, since_epoch

from ..conftest import FT_MODEL
from ..fakes.styles import table_rows
from ..fakes.upstream import Reply, chunk, default_stream, error_reply

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def usage_rows(path: Path, expected: int, timeout: float = 5.0) -> list[dict]:
    return table_rows(path, "usage", expected, timeout)


def test_usage_records_for_streamed_and_plain_requests(make_proxy, fake, tmp_path):
    proxy = make_proxy()
    headers = {"x-openwebui-user-id": "user-7"}
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=CHAT, headers=headers)
        http.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers)
        fake.enqueue(error_reply(429, "slow down", code="rate_limit_exceeded"))
        http.post("/v1/chat/completions", json=CHAT)
    rows = usage_rows(tmp_path / "persona-proxy-usage.sqlite3", 3)
    plain, streamed, limited = rows
    assert (plain["route"], plain["model"], plain["status"], plain["stream"]) == ("maid", FT_MODEL, 200, 0)
    assert (plain["prompt_tokens"], plain["completion_tokens"], plain["user_id"]) == (5, 2, "user-7")
    assert plain["key_id"].startswith("key-") and proxy.client_key not in json.dumps(rows)
    assert streamed["stream"] == 1 and streamed["prompt_tokens"] == 5  # the usage chunk the proxy asked for
    assert streamed["ttfb_ms"] > 0 and streamed["duration_ms"] >= streamed["ttfb_ms"]
    assert (limited["status"], limited["error_code"]) == (429, "rate_limit_exceeded")


def test_stream_usage_is_recorded_even_when_the_client_did_not_ask(make_proxy, fake, tmp_path):
    from ..fakes.upstream import usage_chunk

    proxy = make_proxy()
    fake.enqueue(Reply(chunks=[*default_stream(FT_MODEL)[:-1], usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
    assert '"usage"' not in text
    (row,) = usage_rows(tmp_path / "persona-proxy-usage.sqlite3", 1)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 2)


def test_an_unwritable_usage_store_never_fails_a_request(make_proxy, fake, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    proxy = make_proxy(extra_upstreams=f'[usage]\npath = "{blocker}/usage.sqlite3"\n')
    with proxy.http() as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    deadline = time.monotonic() + 5
    while "usage:" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "record(s) dropped" in caplog.text
    assert proxy.in_flight() == 0


def row(*values: object, client: str | None = None) -> tuple[object, ...]:
    """A usage row as the chat API writes it for a route's primary (``api``, ``role``, ``conversation``, ``client``)."""
    return (*values, "chat", "primary", None, client)


def test_usage_report(tmp_path, fake):
    config = tmp_path / "config.toml"
    config.write_text(f"""
[upstreams.fake]
base_url = "{fake.url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"

[usage]
path = "records.sqlite3"  # relative: beside the config

[prices."{FT_MODEL}"]
input = 0.30
output = 1.20
""", encoding="utf-8")
    db_path = tmp_path / "records.sqlite3"
    from app.ops.usage import SqliteStore

    store = SqliteStore(db_path)
    now = time.time()
    rows = [
        row(now - 60, "maid", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", "u1", 1000, 500, None, 100.0, 0),
        row(now - 30, "maid", "fake", FT_MODEL, "chat", 1, 200, None, "key-b", "u2", 3000, 1500, 50.0, 900.0, 0),
        row(now - 20, "mini", "fake", "gpt-4.1-mini", "task", 0, 502, "upstream_unreachable", "key-a", None, 0, 0,
         None, 5.0, 1),
        row(now - 40 * 86400, "maid", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", "u1", 999999, 0, None, 1.0, 0),
    ]
    store.write(rows)
    store.reset()
    runner = CliRunner()
    by_route = json.loads(runner.invoke(cli, ["usage", "--config", str(config), "--json"]).output)
    assert by_route == [
        {"route": "maid", "requests": 2, "errors": 0, "prompt_tokens": 4000, "completion_tokens": 2000,
         "cost_usd": round(4000 * 0.3 / 1e6 + 2000 * 1.2 / 1e6, 6), "unpriced": [], "priced": True},
        {"route": "mini", "requests": 1, "errors": 1, "prompt_tokens": 0, "completion_tokens": 0,
         "cost_usd": 0.0, "unpriced": [], "priced": False},
    ]
    by_key = json.loads(runner.invoke(cli, ["usage", "--config", str(config), "--by", "key", "--json"]).output)
    assert {r["key"]: r["requests"] for r in by_key} == {"key-a": 2, "key-b": 1}
    table = runner.invoke(cli, ["usage", "--config", str(config), "--by", "user", "--since", "90d"])
    assert table.exit_code == 0 and "u1" in table.output and "total" in table.output
    assert "1,000,999" in table.output  # the 40-day-old row counts within 90 days
    bad = runner.invoke(cli, ["usage", "--config", str(config), "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since takes" in bad.output


def test_the_cost_column_lines_up_and_shows_a_dash_for_unpriced_models(tmp_path):
    from app.ops.usage import SqliteStore

    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.fake]\nbase_url = "http://127.0.0.1:9/v1"\n[routes.maid]\nupstream = "fake"\n'
                      f'model = "{FT_MODEL}"\n[usage]\npath = "u.sqlite3"\n[prices."{FT_MODEL}"]\ninput = 0.3\n'
                      'output = 1.2\n', encoding="utf-8")
    store = SqliteStore(tmp_path / "u.sqlite3")
    now = time.time()
    store.write([row(now - 9, "maid", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", None, 1000, 500, None, 1.0, 0),
                 row(now - 8, "mystery", "fake", "no-price", "chat", 0, 200, None, "key-a", None, 70, 7, None, 1.0, 0),
                 row(now - 7, "mixed", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", None, 10, 5, None, 1.0, 0),
                 row(now - 6, "mixed", "fake", "no-price", "chat", 0, 200, None, "key-a", None, 10, 5, None, 1.0, 0)])
    store.reset()
    lines = CliRunner().invoke(cli, ["usage", "--config", str(config)]).output.splitlines()
    cells = {line.split()[0]: line for line in lines[1:5]}
    assert cells["mystery"].endswith(" -") and cells["maid"].endswith(" 0.0009")
    assert cells["mixed"].endswith("0.0000  *") and cells["total"].endswith("0.0009  *")
    # Right-aligned: every cost ends in the same column, the marks in a column of their own.
    assert len({len(cells[name]) for name in ("maid", "mystery")}) == 1
    assert len({len(cells[name]) for name in ("mixed", "total")}) == 1
    assert "no [prices" in lines[-1]


def test_since_epoch():
    assert since_epoch("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert since_epoch("30m", now=100_000.0) == 100_000.0 - 1800
    assert since_epoch("2026-11-01") == 1793491200.0
    with pytest.raises(ValueError):
        since_epoch("soon")


def litellm_final_chunk(model: str) -> bytes:
    """LiteLLM's accent: usage (with its cost) on a chunk that still has a choice."""
    obj = {"id": "chatcmpl-l1", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
           "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, "cost": 0.00042}}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_usage_on_a_chunk_with_choices_is_recorded_and_kept_from_a_client_that_did_not_ask(
        make_proxy, fake, tmp_path):
    proxy = make_proxy()
    script = [chunk(FT_MODEL, "", role="assistant"), chunk(FT_MODEL, "Hi"), litellm_final_chunk(FT_MODEL),
              b"data: [DONE]\n\n"]
    fake.enqueue(Reply(chunks=script), Reply(chunks=script))
    with proxy.http() as http:
        hidden = http.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
        asked = http.post("/v1/chat/completions", json={**CHAT, "stream": True,
                                                        "stream_options": {"include_usage": True}}).text
    events = [json.loads(line[6:]) for line in hidden.splitlines() if line.startswith("data: {")]
    assert '"usage"' not in hidden and "cost" not in hidden
    assert events[-1]["choices"][0]["delta"] == {"content": "!"} and events[-1]["model"] == "maid"
    assert '"usage"' in asked and '"cost"' in asked  # asked for: relayed as sent
    rows = usage_rows(tmp_path / "persona-proxy-usage.sqlite3", 2)
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [(11, 3), (11, 3)]


def test_a_stream_refused_before_its_first_byte_is_recorded_as_a_stream(make_proxy, fake, tmp_path):
    proxy = make_proxy()
    fake.enqueue(error_reply(503, "overloaded", "server_error"))
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json={**CHAT, "stream": True}).status_code == 503
    (row,) = usage_rows(tmp_path / "persona-proxy-usage.sqlite3", 1)
    assert (row["stream"], row["status"]) == (1, 503)


def test_responses_requests_are_recorded_with_their_api_and_tokens(make_proxy, fake, tmp_path):
    proxy = make_proxy()
    with proxy.http() as http:
        http.post("/v1/responses", json={"model": "maid", "input": "hi"})
        http.post("/v1/responses", json={"model": "maid", "input": "hi", "stream": True})
        http.post("/v1/chat/completions", json=CHAT)
    rows = usage_rows(tmp_path / "persona-proxy-usage.sqlite3", 3)
    assert [(r["api"], r["stream"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("responses", 0, 9, 3), ("responses", 1, 9, 3), ("chat", 0, 5, 2)]
    by_api = json.loads(CliRunner().invoke(cli, ["usage", "--config", str(tmp_path / "config.toml"), "--by", "api",
                                                 "--json"], env={"PERSONA_PROXY_DATA_DIR": str(tmp_path)}).output)
    assert {r["api"]: r["requests"] for r in by_api} == {"chat": 1, "responses": 2}


def test_a_usage_file_from_before_the_api_column_gets_it(tmp_path):
    from app.ops.usage import SqliteStore

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE usage (time REAL NOT NULL, route TEXT NOT NULL, upstream TEXT NOT NULL, "
                   "model TEXT NOT NULL, kind TEXT NOT NULL, stream INTEGER NOT NULL, status INTEGER NOT NULL, "
                   "error_code TEXT, key_id TEXT, user_id TEXT, prompt_tokens BIGINT, completion_tokens BIGINT, "
                   "ttfb_ms REAL, duration_ms REAL NOT NULL, failover INTEGER NOT NULL)")
        db.execute("INSERT INTO usage VALUES (1, 'maid', 'f', 'm', 'chat', 0, 200, NULL, NULL, NULL, 1, 1, NULL, 1, 0)")
    store = SqliteStore(path)
    store.write([(2, "maid", "f", "m", "chat", 0, 200, None, None, None, 1, 1, None, 1.0, 0, "responses", "canary",
                  "c0ffee", "bot")])
    store.reset()
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT api, role, conversation, client FROM usage ORDER BY time").fetchall()
        assert found == [("chat", "primary", None, None), ("responses", "canary", "c0ffee", "bot")]


ROUND_TRIP = [
    Completed(time=1732492800.25, route="maid", upstream="openai", model="ft:gpt-4o-mini:x::模型", kind="chat",
              stream=True, status=200, error_code=None, key_id="key-0123456789", user_id=None, prompt_tokens=40,
              completion_tokens=30, ttfb_ms=12.5, duration_ms=80.0, failover=False, api="responses", role="canary",
              conversation="0123456789abcdef"),
    Completed(time=1732492801.0, route="maid", upstream="local", model="m", kind="task", stream=False, status=502,
              error_code="upstream_unreachable", key_id=None, user_id="u-1 \"quoted\"", prompt_tokens=None,
              completion_tokens=None, ttfb_ms=None, duration_ms=3.0, failover=True),
]


def test_every_column_round_trips_through_sqlite(tmp_path):
    store = SqliteStore(tmp_path / "u.sqlite3")
    store.write(ROUND_TRIP)
    found = store._db.execute(f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY time").fetchall()
    assert found == [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in ROUND_TRIP]


def test_batches_longer_than_one_insert_are_written_whole_and_in_order(tmp_path):
    from app.ops.usage import ROWS_PER_INSERT

    rows = [ROUND_TRIP[i % 2]._replace(time=1732492800.0 + i) for i in range(2 * ROWS_PER_INSERT + 7)]
    store = SqliteStore(tmp_path / "u.sqlite3")
    store.write(rows)
    store.write(rows[:1])
    found = store._db.execute(f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY rowid").fetchall()
    assert found == [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in [*rows, rows[0]]]
