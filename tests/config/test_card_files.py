"""Cards and lorebooks named by a config: read at load, so a bad one stops the start or the reload, never a request."""

from __future__ import annotations

import json
import logging
import time

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.config import ConfigError, load_config

from ..cards.cardfiles import LILY, card_png, write
from ..fakes.styles import FT_MODEL

ROUTE = '[upstreams.demo]\nkind = "demo"\n[routes.lily]\nupstream = "demo"\nmodel = "demo-maid"\n'


def test_a_bad_card_is_one_line_naming_the_file_and_the_key(tmp_path):
    write(tmp_path / "lily.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 5)
    config = tmp_path / "config.toml"
    config.write_text(ROUTE + 'persona_card = "lily.png"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "routes.lily.persona_card: lily.png cannot be used: the PNG is truncated" in message
    assert "\n" not in message
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 1 and "lily.png cannot be used" in result.output and "Traceback" not in result.output


def test_a_missing_card_and_a_bad_lorebook_on_a_target(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(ROUTE + 'persona_card = "nowhere.png"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes.lily.persona_card: no such file .*nowhere.png; the path is"):
        load_config(config)
    write(tmp_path / "facts.json", json.dumps({"entries": [{"keys": ["(a"], "use_regex": True,
                                                            "content": "x", "name": "paren"}]}).encode())
    config.write_text(ROUTE + '[[routes.lily.fallbacks]]\nupstream = "demo"\nmodel = "m"\nlorebook = "facts.json"\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes.lily.fallbacks\[0\].lorebook: facts.json cannot be used: .*"
                                          r"\(paren\): key '\(a' is not a usable regular expression"):
        load_config(config)


def test_check_lists_the_cards_warnings(tmp_path):
    odd = json.loads(json.dumps(LILY))
    odd["data"]["character_book"]["entries"].append({"keys": ["a"], "content": "@@bogus 1\nx", "name": "odd"})
    write(tmp_path / "lily.json", json.dumps(odd).encode())
    config = tmp_path / "config.toml"
    config.write_text(ROUTE + 'system_prompt = "Own."\npersona_card = "lily.json"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--config", str(config)])
    assert "routes.lily: data.character_book.entries[3] (odd): ignored unsupported decorator(s): @@bogus 1" \
        in result.output, result.output


def test_a_reload_with_a_bad_card_keeps_the_previous_config(make_proxy, tmp_path, caplog, monkeypatch):
    write(tmp_path / "lily.png", card_png())
    proxy = make_proxy(f'[routes.lily]\nupstream = "fake"\nmodel = "{FT_MODEL}"\npersona_card = "lily.png"\n',
                       server="reload_on_change = true")
    monkeypatch.setenv("TEST_PROXY_KEYS", proxy.client_key)
    monkeypatch.setenv("TEST_UPSTREAM_KEY", proxy.upstream_key)
    caplog.set_level(logging.INFO)
    time.sleep(0.05)
    write(tmp_path / "lily.png", b"garbage")
    config = tmp_path / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n# touched\n", encoding="utf-8")
    deadline = time.monotonic() + 8
    while "config reload rejected" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "config reload rejected, still serving the previous config" in caplog.text
    assert "lily.png cannot be used" in caplog.text
    with proxy.http() as http:
        chat = {"model": "lily", "messages": [{"role": "user", "content": "hi"}]}
        answer = http.post("/v1/chat/completions", json=chat)
        assert answer.status_code == 200
