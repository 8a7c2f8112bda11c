"""Loading and validating the TOML config."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_config

from ..conftest import REPO

BASE = """
[upstreams.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"

[routes.maid]
upstream = "openai"
model = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=kwargs.pop("environ", {}), **kwargs)
    return str(info.value)


def test_example_and_default_configs_load():
    example = load_config(REPO / "config.example.toml", environ={})
    assert {"maid", "maid-demo"} <= set(example.routes)
    default = load_config(None, environ={})
    assert default.routes["maid"].system_prompt == "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"
    assert default.upstreams["demo"].kind == "demo"
    assert default.server.host == "127.0.0.1"


def test_secrets_come_from_the_environment(tmp_path):
    config = load_config(write(tmp_path, BASE), environ={"OPENAI_API_KEY": "k1", "PERSONA_PROXY_API_KEYS": "a, b,"})
    assert config.upstream("openai").api_key.get_secret_value() == "k1"
    assert [k.get_secret_value() for k in config.client_keys] == ["a", "b"]
    assert "k1" not in repr(config) and "k1" not in config.model_dump_json()


def test_unknown_key_is_named(tmp_path):
    message = error_for(tmp_path, BASE + "temprature = 0.5\n")
    assert "config.toml" in message
    assert "routes.maid.temprature: unknown key" in message


def test_unknown_server_key_and_table(tmp_path):
    assert "server.prot: unknown key" in error_for(tmp_path, "[server]\nprot = 1\n" + BASE)
    assert "unknown table [route] (did you mean `routes`?)" in error_for(tmp_path, BASE + "[route.x]\nmodel = 'y'\n")


def test_unknown_upstream_lists_the_known_ones(tmp_path):
    message = error_for(tmp_path, BASE.replace('upstream = "openai"', 'upstream = "opnai"'))
    assert "routes.maid.upstream: unknown upstream 'opnai'" in message
    assert "[upstreams.opnai]" in message and "openai" in message


def test_bad_values(tmp_path):
    assert "system_prompt_mode" in error_for(tmp_path, BASE + 'system_prompt_mode = "always"\n')
    assert "params may not set 'model'" in error_for(tmp_path, BASE + 'params = { model = "x" }\n')
    assert "base_url is required" in error_for(tmp_path, '[upstreams.x]\napi_key_env = "K"\n')
    assert "http:// or https://" in error_for(tmp_path, '[upstreams.x]\nbase_url = "ftp://h"\n')
    assert "server.port" in error_for(tmp_path, "[server]\nport = 70000\n" + BASE)


def test_invalid_toml_and_missing_file(tmp_path):
    assert "not valid TOML" in error_for(tmp_path, "[routes.maid\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_environment_beats_file_and_flags_beat_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "[server]\nport = 1111\n" + BASE)
    environ = {"PERSONA_PROXY_PORT": "2222"}
    assert load_config(path, environ={}).server.port == 1111
    assert load_config(path, environ=environ).server.port == 2222
    assert load_config(path, overrides={"port": 3333}, environ=environ).server.port == 3333
    monkeypatch.setenv("PERSONA_PROXY_PORT", "4444")  # the process environment, when none is given
    assert load_config(path).server.port == 4444


def test_server_settings_from_the_environment_follow_pydantic_settings_rules(tmp_path):
    environ = {"persona_proxy_log_level": "debug", "PERSONA_PROXY_CORS_ORIGINS": '["https://chat.example.com"]',
               "PERSONA_PROXY_FORWARD_USER_ID": "true", "PERSONA_PROXY_API_KEYS": "not-a-setting-0123456789",
               "PERSONA_PROXY_DATA_DIR": "/data"}
    server = load_config(write(tmp_path, BASE), environ=environ).server
    assert (server.log_level, server.cors_origins, server.forward_user_id) == \
        ("debug", ["https://chat.example.com"], True)
    message = error_for(tmp_path, BASE, environ={"PERSONA_PROXY_CORS_ORIGINS": "https://chat.example.com"})
    assert "server.cors_origins: Input should be a valid list" in message
    assert "(from the environment variable PERSONA_PROXY_CORS_ORIGINS)" in message


def test_system_prompt_file_is_relative_to_the_config(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "maid.txt").write_text("女僕\n", encoding="utf-8")
    config = load_config(write(tmp_path, BASE + 'system_prompt_file = "prompts/maid.txt"\n'), environ={})
    assert config.routes["maid"].system_prompt == "女僕"
    assert "cannot read" in error_for(tmp_path, BASE + 'system_prompt_file = "missing.txt"\n')
    assert "not both" in error_for(tmp_path, BASE + 'system_prompt = "a"\nsystem_prompt_file = "b"\n')


def test_exposed_bind_needs_strong_keys(tmp_path):
    exposed = '[server]\nhost = "0.0.0.0"\n' + BASE
    assert "allow_unauthenticated" in error_for(tmp_path, exposed)
    assert "shorter than 16" in error_for(tmp_path, exposed, environ={"PERSONA_PROXY_API_KEYS": "short"})
    ok = load_config(write(tmp_path, exposed), environ={"PERSONA_PROXY_API_KEYS": "x" * 32})
    assert ok.server.host == "0.0.0.0"
    opted_in = exposed.replace('"0.0.0.0"', '"0.0.0.0"\nallow_unauthenticated = true')
    opted_out = load_config(write(tmp_path, opted_in), environ={})
    assert opted_out.server.allow_unauthenticated
    loopback = load_config(write(tmp_path, '[server]\nhost = "::1"\n' + BASE), environ={})
    assert loopback.server.host == "::1"


PASTED = "sk-proj-" + "Zq8" * 12


@pytest.mark.parametrize("table,key", [
    ("upstreams.openai", "api_key_env"),
    ("server", "api_keys_env"),
    ("server", "admin_keys_env"),
    ("usage", "url_env"),
])
def test_a_key_pasted_where_a_variable_name_goes_is_refused_without_repeating_it(tmp_path, table, key):
    text = BASE.replace('api_key_env = "OPENAI_API_KEY"', "") + f'\n[{table}]\n{key} = "{PASTED}"\n'
    if table == "upstreams.openai":
        text = BASE.replace('"OPENAI_API_KEY"', f'"{PASTED}"')
    message = error_for(tmp_path, text)
    assert f"{table}.{key}: looks like a key, not a variable name" in message
    assert PASTED not in message and "Zq8" not in message


def test_a_key_in_the_file_is_told_to_use_api_key_env(tmp_path):
    message = error_for(tmp_path, BASE.replace('api_key_env = "OPENAI_API_KEY"', f'api_key = "{PASTED}"'))
    assert "upstreams.openai.api_key: a key does not go in the config file" in message
    assert "api_key_env" in message and PASTED not in message


def test_unknown_keys_suggest_the_closest_valid_one(tmp_path):
    message = error_for(tmp_path, BASE + 'system_promt = "x"\n')
    assert "routes.maid.system_promt: unknown key (did you mean `system_prompt`?)" in message
    assert "server.prot: unknown key (did you mean `port`?)" in error_for(tmp_path, "[server]\nprot = 1\n" + BASE)
    fallback = error_for(tmp_path, BASE + '[[routes.maid.fallbacks]]\nupstream = "openai"\nmodel = "m"\nfew_shot = 2\n')
    assert "routes.maid.fallbacks.0.few_shot: unknown key (did you mean `few_shot_from`?)" in fallback


def test_unknown_table_lists_every_table_a_config_may_have(tmp_path):
    message = error_for(tmp_path, BASE + "[useage]\nenabled = false\n")
    assert "unknown table [useage] (did you mean `usage`?)" in message
    assert all(t in message for t in ("[server]", "[upstreams.NAME]", "[routes.NAME]", "[usage]", "[prices"))


def test_a_config_without_routes_is_an_error(tmp_path):
    assert "no routes; add a [routes.NAME] table" in error_for(tmp_path, '[server]\nport = 8080\n')


def test_a_bad_route_name_says_which_characters_are_allowed(tmp_path):
    message = error_for(tmp_path, BASE.replace("[routes.maid]", '[routes."my maid"]'))
    assert "routes.my maid: a name starts with a letter or digit" in message and "(no spaces)" in message
    assert "^[" not in message  # not the regex


def test_an_error_from_the_environment_names_the_variable(tmp_path):
    message = error_for(tmp_path, BASE, environ={"PERSONA_PROXY_PORT": "abc"})
    assert "server.port:" in message and "(from the environment variable PERSONA_PROXY_PORT)" in message
