"""Operating it: usage records and report, metrics, and hot reload under an open stream."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.ops.usage import since_epoch

from .fake_openai import Gate, Reply, chunk, default_stream, error_reply
from .servers import free_port

FT_MODEL = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def usage_rows(path: Path, expected: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict] = []
        if path.exists():
            with sqlite3.connect(path) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY time")]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


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
    assert streamed["stream"] == 1 and streamed["prompt_tokens"] is None  # the fake's default stream has no usage
    assert streamed["ttfb_ms"] > 0 and streamed["duration_ms"] >= streamed["ttfb_ms"]
    assert (limited["status"], limited["error_code"]) == (429, "rate_limit_exceeded")


def test_stream_usage_is_recorded_even_when_the_client_did_not_ask(make_proxy, fake, tmp_path):
    from .fake_openai import usage_chunk

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


def test_usage_report(tmp_path, fake):
    config = tmp_path / "config.toml"
    config.write_text(f"""
[upstreams.fake]
base_url = "{fake.url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"

[prices."{FT_MODEL}"]
input = 0.30
output = 1.20
""", encoding="utf-8")
    db_path = tmp_path / "persona-proxy-usage.sqlite3"
    from app.ops.usage import SqliteStore

    store = SqliteStore(db_path)
    now = time.time()
    rows = [
        (now - 60, "maid", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", "u1", 1000, 500, None, 100.0, 0),
        (now - 30, "maid", "fake", FT_MODEL, "chat", 1, 200, None, "key-b", "u2", 3000, 1500, 50.0, 900.0, 0),
        (now - 20, "mini", "fake", "gpt-4.1-mini", "task", 0, 502, "upstream_unreachable", "key-a", None, 0, 0,
         None, 5.0, 1),
        (now - 40 * 86400, "maid", "fake", FT_MODEL, "chat", 0, 200, None, "key-a", "u1", 999999, 0, None, 1.0, 0),
    ]
    store.write(rows)
    store.reset()
    runner = CliRunner()
    by_route = json.loads(runner.invoke(cli, ["usage", "--config", str(config), "--json"]).output)
    assert by_route == [
        {"route": "maid", "requests": 2, "errors": 0, "prompt_tokens": 4000, "completion_tokens": 2000,
         "cost_usd": round(4000 * 0.3 / 1e6 + 2000 * 1.2 / 1e6, 6), "unpriced": []},
        {"route": "mini", "requests": 1, "errors": 1, "prompt_tokens": 0, "completion_tokens": 0,
         "cost_usd": 0.0, "unpriced": []},
    ]
    by_key = json.loads(runner.invoke(cli, ["usage", "--config", str(config), "--by", "key", "--json"]).output)
    assert {r["key"]: r["requests"] for r in by_key} == {"key-a": 2, "key-b": 1}
    table = runner.invoke(cli, ["usage", "--config", str(config), "--by", "user", "--since", "90d"])
    assert table.exit_code == 0 and "u1" in table.output and "total" in table.output
    assert "1,000,999" in table.output  # the 40-day-old row counts within 90 days
    bad = runner.invoke(cli, ["usage", "--config", str(config), "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since takes" in bad.output


def test_since_epoch():
    assert since_epoch("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert since_epoch("30m", now=100_000.0) == 100_000.0 - 1800
    assert since_epoch("2026-11-01") == 1793491200.0
    with pytest.raises(ValueError):
        since_epoch("soon")


def test_metrics_need_an_admin_key_and_count_what_happened(make_proxy, fake, backup_fake):
    admin = "admin-canary-" + os.urandom(8).hex()
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"

[[routes.maid.fallbacks]]
upstream = "backup"
model = "gpt-4.1-mini"
""", env={"PERSONA_PROXY_ADMIN_KEYS": admin},
                       extra_upstreams=f'[upstreams.backup]\nbase_url = "{backup_fake.url}/v1"\n')
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=CHAT)
        http.post("/v1/chat/completions", json={**CHAT, "stream": True})
        fake.enqueue(error_reply(500, "down", "server_error"))
        http.post("/v1/chat/completions", json=CHAT)
        fake.enqueue(error_reply(400, "bad", code="invalid_value"))
        http.post("/v1/chat/completions", json=CHAT)
        assert http.get("/metrics").status_code == 401  # a client key is not an admin key
        http.headers.pop("authorization")
        assert http.get("/metrics").status_code == 401
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {admin}"})
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'persona_proxy_requests_total{kind="chat",route="maid",status="200",stream="no"} 2.0' in text
    assert 'persona_proxy_requests_total{kind="chat",route="maid",status="200",stream="yes"} 1.0' in text
    assert 'persona_proxy_errors_total{code="invalid_value",route="maid"} 1.0' in text
    assert 'persona_proxy_failovers_total{route="maid"} 1.0' in text
    assert 'persona_proxy_tokens_total{route="maid",type="prompt"} 10.0' in text
    assert 'persona_proxy_streams_in_flight{route="maid"} 0.0' in text
    assert "persona_proxy_time_to_first_byte_seconds_bucket" in text
    for secret in (admin, proxy.client_key, proxy.upstream_key):
        assert secret not in text


def test_metrics_are_absent_without_admin_keys(proxy):
    with proxy.http() as http:
        assert http.get("/metrics").status_code == 404


@pytest.fixture
def backup_fake():
    from .fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def write_config(path: Path, upstream_url: str, port: int, prompt: str, extra: str = "") -> None:
    path.write_text(f"""
[server]
port = {port}
check_models = false

[upstreams.fake]
base_url = "{upstream_url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{prompt}"
{extra}
""", encoding="utf-8")


def test_sighup_reloads_a_good_config_rejects_a_bad_one_and_never_cuts_a_stream(tmp_path, fake):
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, fake.url, port, "first persona")
    gate = Gate(timeout=15)
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "a", role="assistant"), gate, chunk(FT_MODEL, "b"),
                               b"data: [DONE]\n\n"]))
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--config", str(config)],
                            env={**os.environ, "PERSONA_PROXY_API_KEYS": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)

        async def scenario() -> tuple[str, list[str], int]:
            async with httpx.AsyncClient(base_url=base, timeout=20) as http, \
                    http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
                    lines = resp.aiter_lines()
                    async for line in lines:
                        if line.startswith("data: "):
                            break
                    write_config(config, fake.url, port, "second persona",
                                 '\n[routes.maid-2]\nupstream = "fake"\nmodel = "m2"\n')
                    proc.send_signal(signal.SIGHUP)
                    ids = await _models_after_reload(http)
                    await http.post("/v1/chat/completions", json=CHAT)
                    config.write_text("[routes.broken\n", encoding="utf-8")
                    proc.send_signal(signal.SIGHUP)
                    await asyncio.sleep(0.5)
                    after_bad = (await http.post("/v1/chat/completions", json=CHAT)).status_code
                    gate.open()
                    rest = "\n".join([line async for line in lines])
            return rest, ids, after_bad

        rest, ids, after_bad = asyncio.run(scenario())
    finally:
        gate.open()
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert ids == ["maid", "maid-2"]
    assert '"b"' in rest and rest.rstrip().endswith("data: [DONE]")  # the open stream finished
    prompts = [r.json["messages"][0]["content"] for r in fake.chat_requests]
    assert prompts == ["first persona", "second persona", "second persona"]
    assert after_bad == 200
    assert "config reloaded" in output and "config reload rejected" in output, output


def _wait_up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            return
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.1)


async def _models_after_reload(http: httpx.AsyncClient) -> list[str]:
    for _ in range(100):
        ids = [m["id"] for m in (await http.get("/v1/models")).json()["data"]]
        if len(ids) > 1:
            return ids
        await asyncio.sleep(0.05)
    return ids


def test_reload_on_change_picks_up_an_edited_file(make_proxy, fake, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    proxy = make_proxy(server="reload_on_change = true")
    # A reload reads the environment again, as a restart would.
    monkeypatch.setenv("TEST_PROXY_KEYS", proxy.client_key)
    monkeypatch.setenv("TEST_UPSTREAM_KEY", proxy.upstream_key)
    config = tmp_path / "config.toml"
    original = config.read_text(encoding="utf-8")
    time.sleep(0.05)
    config.write_text(original + '\n[routes.maid-2]\nupstream = "fake"\nmodel = "m2"\n', encoding="utf-8")
    with proxy.http() as http:
        deadline = time.monotonic() + 8
        ids: list[str] = []
        while time.monotonic() < deadline and "maid-2" not in ids:
            ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
            time.sleep(0.2)
        assert ids == ["maid", "maid-2"]
        config.write_text("[routes.broken\n", encoding="utf-8")
        deadline = time.monotonic() + 8
        while "config reload rejected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "config reload rejected" in caplog.text
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["maid", "maid-2"]
        assert http.post("/v1/chat/completions", json={**CHAT, "model": "maid-2"}).status_code == 200
