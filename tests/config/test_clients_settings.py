"""[clients.NAME] and [limits] mistakes: one line each, naming the file, the key and the fix, never a key."""

from __future__ import annotations

import pytest

from app.clients.warnings import client_warnings
from app.config import ConfigError, load_config

BASE = """
[upstreams.up]
base_url = "http://127.0.0.1:9/v1"

[routes.maid]
upstream = "up"
model = "ft:gpt-4o-mini:x::maid"

[routes.mini]
upstream = "up"
model = "gpt-4.1-mini"

[prices."ft:gpt-4o-mini:x::maid"]
input = 0.3
output = 1.2
"""
SECRET = "sk-live-" + "9" * 32


def load(tmp_path, text: str, **environ: str):
    path = tmp_path / "config.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_config(path, environ=environ)


def refused(tmp_path, text: str, **environ: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **environ)
    message = str(caught.value)
    assert SECRET not in message and "Traceback" not in message
    assert str(tmp_path / "config.toml") in message
    return message


def test_a_client_with_keys_routes_and_limits_loads(tmp_path):
    config = load(tmp_path, '[clients.bot]\nkey_env = "BOT_KEYS"\nroutes = ["maid"]\nrpm = 60\nbudget_usd = 5\n'
                            '[clients.bot.per_user]\nrpm = 10\n', BOT_KEYS="k1-" + "a" * 20 + ",k2-" + "b" * 20)
    bot = config.clients["bot"]
    assert bot.routes == ["maid"] and bot.rpm == 60 and bot.budget_usd == 5 and bot.per_user.rpm == 10
    assert bot.budget_period == "month" and len(config.client_key_sets["bot"]) == 2
    assert config.limits.on_store_error == "open" and config.limits.store_timeout_ms == 50


def test_a_client_naming_an_unknown_route(tmp_path):
    message = refused(tmp_path, '[clients.bot]\nkey_env = "K"\nroutes = ["maids"]\n')
    assert "clients.bot.routes: unknown route 'maids'; use one of: maid, mini" in message


@pytest.mark.parametrize("value", ["-5", "0", "1.5", '"60"'])
def test_a_limit_must_be_a_positive_whole_number(tmp_path, value):
    message = refused(tmp_path, f'[clients.bot]\nkey_env = "K"\nrpm = {value}\n')
    assert "clients.bot.rpm" in message


def test_a_negative_budget_and_an_unknown_period(tmp_path):
    assert "clients.bot.budget_usd" in refused(tmp_path, '[clients.bot]\nkey_env = "K"\nbudget_usd = -1\n')
    message = refused(tmp_path, '[clients.bot]\nkey_env = "K"\nbudget_usd = 1\nbudget_period = "week"\n')
    assert "clients.bot.budget_period" in message and "'day' or 'month'" in message


def test_a_typo_in_a_client_or_per_user_key_suggests_the_right_one(tmp_path):
    assert "did you mean `max_parallel`" in refused(tmp_path, '[clients.bot]\nkey_env = "K"\nmax_paralel = 2\n')
    assert "did you mean `rpm`" in refused(tmp_path, '[clients.bot]\nkey_env = "K"\n[clients.bot.per_user]\nrmp = 2\n')
    assert "did you mean `on_store_error`" in refused(tmp_path, '[limits]\non_store_errors = "open"\n')


def test_a_key_pasted_where_the_variable_name_goes_is_never_echoed(tmp_path):
    message = refused(tmp_path, f'[clients.bot]\nkey_env = "{SECRET}"\n')
    assert "clients.bot.key_env: looks like a key, not a variable name" in message
    message = refused(tmp_path, f'[clients.bot]\nkey_env = "K"\nkey = "{SECRET}"\n')
    assert "name that variable in key_env" in message


def test_the_same_key_in_two_clients_is_refused_without_showing_it(tmp_path):
    text = '[clients.bot]\nkey_env = "BOT_KEYS"\n[clients.web]\nkey_env = "WEB_KEYS"\n'
    message = refused(tmp_path, text, BOT_KEYS=f"other-{'x' * 20},{SECRET}", WEB_KEYS=SECRET)
    assert "clients.web (WEB_KEYS): a key is also listed in clients.bot (BOT_KEYS)" in message
    message = refused(tmp_path, '[server]\napi_keys_env = "ANON"\n' + text, ANON=SECRET, BOT_KEYS=SECRET)
    assert "also listed in server.api_keys_env (ANON)" in message


def test_redis_url_env_naming_an_unset_variable(tmp_path):
    message = refused(tmp_path, '[limits]\nredis_url_env = "REDIS_URL"\n')
    assert "limits.redis_url_env: REDIS_URL is not set; set it to a redis:// URL" in message
    message = refused(tmp_path, '[limits]\nredis_url_env = "REDIS_URL"\n', REDIS_URL="127.0.0.1:6379")
    assert "does not hold a redis://" in message and "127.0.0.1:6379" not in message


def test_a_budget_over_unpriced_models_and_a_client_without_keys_are_warnings(tmp_path):
    config = load(tmp_path, '[clients.bot]\nkey_env = "BOT_KEYS"\nbudget_usd = 5\n'
                            '[clients.web]\nkey_env = "WEB_KEYS"\nroutes = ["maid"]\nbudget_usd = 1\n',
                  BOT_KEYS="k" * 20)
    warnings = client_warnings(config)
    assert any(w.startswith("clients.bot: a budget, but these models have no [prices") and "gpt-4.1-mini" in w
               for w in warnings)
    assert not any(w.startswith("clients.web: a budget") for w in warnings)  # its only route is priced
    assert any("clients.web: WEB_KEYS holds no keys, so this client cannot sign in" in w for w in warnings)


def test_a_non_loopback_server_needs_long_client_keys_too(tmp_path):
    message = refused(tmp_path, '[server]\nhost = "0.0.0.0"\n[clients.bot]\nkey_env = "BOT_KEYS"\n',
                      BOT_KEYS="short")
    assert "a key in BOT_KEYS is shorter than 16 characters" in message
    config = load(tmp_path, '[server]\nhost = "0.0.0.0"\n[clients.bot]\nkey_env = "BOT_KEYS"\n',
                  BOT_KEYS="long-enough-key-" + "z" * 10)
    assert config.client_key_sets["bot"]
