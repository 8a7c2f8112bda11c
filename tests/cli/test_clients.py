"""`persona-proxy clients`, `usage --by client`, `serve --workers` with limits, and budgets across restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from click.testing import CliRunner

from app.cli.main import cli

from ..clock import fresh_minute
from ..fakes.styles import FT_MODEL
from ..proxy.test_clients import (
    BOT_KEY,
    BOT_KEY_2,
    ENV,
    ROUTES,
    WEB_KEY,
    chat,
    clients,
    usage_rows,
    worst_case_tokens,
)

REDIS_ENV = "TEST_LIMITS_REDIS"


def invoke(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_clients_lists_limits_use_and_key_hashes_never_keys(make_proxy, fake, tmp_path):
    proxy = make_proxy(ROUTES + clients(bot="rpm = 10\nbudget_usd = 2.5", per_user="rpm = 3"), env=ENV)
    fresh_minute(room=5)
    assert chat(proxy.url, BOT_KEY, max_tokens=10).status_code == 200
    assert chat(proxy.url, WEB_KEY).status_code == 200
    usage_rows(tmp_path, 2)
    env = {**ENV, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "TEST_UPSTREAM_KEY": "x"}
    result = invoke(["clients", "--json", "--config", str(tmp_path / "config.toml")], env)
    assert result.exit_code == 0, result.output
    assert BOT_KEY not in result.output and BOT_KEY_2 not in result.output and WEB_KEY not in result.output
    entries = {e["client"]: e for e in json.loads(result.output)}
    bot = entries["bot"]
    assert bot["routes"] == ["maid"] and bot["limits"] == {"rpm": 10, "budget_usd": 2.5, "budget_period": "month"}
    assert len(bot["keys"]) == 2 and all(k.startswith("key-") for k in bot["keys"])
    assert bot["used"]["requests"] == 1 and bot["used"]["tokens"] == 7 and bot["source"] == "usage records"
    assert bot["used"]["spent_usd"] == 0.007  # 7 tokens at $1000 per 1M
    assert entries["web"]["per_user"] == {"rpm": 3} and entries["web"]["routes"] == ["maid", "mini"]
    table = invoke(["clients", "--config", str(tmp_path / "config.toml")], env)
    assert "rpm 10, $2.5/month" in table.output and "from the usage records" in table.output
    by_client = invoke(["usage", "--by", "client", "--json", "--config", str(tmp_path / "config.toml")], env)
    assert {r["client"]: r["requests"] for r in json.loads(by_client.output)} == {"bot": 1, "web": 1}


def test_clients_reads_the_live_counters_from_redis(make_proxy, fake, tmp_path, redis_server):
    text = ROUTES + f'\n[limits]\nredis_url_env = "{REDIS_ENV}"\n' + clients(bot="rpm = 10\ntpm = 100000")
    env = {**ENV, REDIS_ENV: redis_server.url}
    proxy = make_proxy(text, env=env)
    fresh_minute(room=5)
    for _ in range(3):
        assert chat(proxy.url, BOT_KEY).status_code == 200
    time.sleep(0.1)  # settlements are sent after the answers
    result = invoke(["clients", "--json", "--config", str(tmp_path / "config.toml")],
                    {**env, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "TEST_UPSTREAM_KEY": "x"})
    bot = next(e for e in json.loads(result.output) if e["client"] == "bot")
    assert bot["source"] == "redis" and bot["used"]["requests"] == 3 and bot["used"]["tokens"] == 21
    assert bot["used"]["in_flight"] == 0
    redis_server.stop()
    down = invoke(["clients", "--config", str(tmp_path / "config.toml")],
                  {**env, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "TEST_UPSTREAM_KEY": "x"})
    assert down.exit_code == 1 and f"Redis ({REDIS_ENV}) is not reachable" in down.output
    assert "Traceback" not in down.output and redis_server.url not in down.output


def test_serve_with_workers_and_limits_but_no_redis_refuses_in_one_line(tmp_path, fake):
    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\n[routes.maid]\nupstream = "fake"\n'
                      f'model = "{FT_MODEL}"\n[clients.bot]\nkey_env = "BOT_KEYS"\nrpm = 5\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "app", "serve", "--config", str(config), "--workers", "2",
                           "--port", "0"], capture_output=True, text=True, timeout=30, env={**ENV})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == ["Error: these clients have limits: bot; with --workers 2 each worker would count them alone; "
                     "set [limits] redis_url_env to share the counters (e.g. redis_url_env = "
                     "\"PERSONA_PROXY_REDIS_URL\"), or run one worker"]


def test_without_redis_a_budget_is_rebuilt_from_the_usage_records_after_a_restart(make_proxy, fake, tmp_path,
                                                                                   caplog):
    caplog.set_level("INFO")
    # Room for one worst case plus a little: the first request spends $0.007, so a second no longer fits.
    budget = round(worst_case_tokens(10) * 0.001 + 0.005, 6)
    text = ROUTES + clients(bot=f"budget_usd = {budget}")
    first = make_proxy(text, env=ENV)
    assert chat(first.url, BOT_KEY, max_tokens=10).status_code == 200
    usage_rows(tmp_path, 1)
    first.server.stop()
    again = make_proxy(text, env=ENV)
    refused = chat(again.url, BOT_KEY, max_tokens=10)
    said = [r.getMessage() for r in caplog.records if r.name == "app.proxy.runtime"]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota", said


def test_with_redis_a_budget_survives_a_restart_of_the_proxy(make_proxy, fake, tmp_path, redis_server):
    budget = round(worst_case_tokens(10) * 0.001 + 0.005, 6)
    text = ROUTES + f'\n[limits]\nredis_url_env = "{REDIS_ENV}"\n' + clients(bot=f"budget_usd = {budget}")
    env = {**ENV, REDIS_ENV: redis_server.url}
    first = make_proxy(text, env=env)
    assert chat(first.url, BOT_KEY, max_tokens=10).status_code == 200
    first.server.stop()
    (tmp_path / "persona-proxy-usage.sqlite3").unlink()  # not from the records this time: from Redis
    again = make_proxy(text, env=env)
    refused = chat(again.url, BOT_KEY, max_tokens=10)
    assert refused.status_code == 429 and "Budget spent for client 'bot'" in refused.json()["error"]["message"]


def test_check_says_when_the_limits_redis_does_not_answer(tmp_path, redis_server):
    config = tmp_path / "config.toml"
    config.write_text('[upstreams.demo]\nkind = "demo"\n[routes.maid]\nupstream = "demo"\nmodel = "maid"\n'
                      f'[limits]\nredis_url_env = "{REDIS_ENV}"\n[clients.bot]\nkey_env = "BOT_KEYS"\nrpm = 5\n',
                      encoding="utf-8")
    env = {**ENV, REDIS_ENV: redis_server.url, "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    up = CliRunner().invoke(cli, ["check", "--config", str(config)], env=env)
    assert up.exit_code == 0 and "ready to serve" in up.output, up.output
    redis_server.stop()
    down = CliRunner().invoke(cli, ["check", "--config", str(config)], env=env)
    assert down.exit_code == 1
    assert f"error: limits.redis_url_env: Redis ({REDIS_ENV}) is not reachable" in down.output
    assert redis_server.url not in down.output
