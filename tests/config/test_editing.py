"""Editing the config in place: a new route goes after the last route, comments stay with their tables."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from click.testing import CliRunner

from app.cli.main import cli
from app.config.editing import upsert_route

from ..conftest import REPO

ROUTE = {"upstream": "openai", "model": "ft:new", "system_prompt": "hi"}


def test_a_new_route_follows_the_last_route_and_leaves_the_next_tables_comments_alone(tmp_path: Path):
    path = tmp_path / "config.toml"
    original = (REPO / "config.example.toml").read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    assert upsert_route(path, "maid2", ROUTE) is True
    text = path.read_text(encoding="utf-8")
    block = '\n\n[routes.maid2]\nupstream = "openai"\nmodel = "ft:new"\nsystem_prompt = "hi"\n\n'
    assert block in text
    # Just after the demo route's last setting, before the comments that describe [usage].
    before, after = text.split(block)
    assert before.rstrip().endswith('system_prompt = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"')
    assert after.startswith("# A prompt-only persona on a base model:")
    assert "# Usage records: one SQLite row per completed request.\n[usage]" in after
    assert text.replace(block, "\n\n") == original  # nothing else moved


def test_a_route_in_a_file_without_routes_is_appended(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[upstreams.openai]\nbase_url = "https://api.openai.com/v1"\n', encoding="utf-8")
    upsert_route(path, "maid", ROUTE)
    assert tomlkit.parse(path.read_text(encoding="utf-8"))["routes"]["maid"]["model"] == "ft:new"
    assert path.read_text(encoding="utf-8").startswith("# mine\n")


def test_multi_line_strings_never_confuse_the_placement(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[upstreams.openai]\nbase_url = "https://api.openai.com/v1"\n\n[routes.maid]\n'
                    'upstream = "openai"\nmodel = "m"\nsystem_prompt = """\nline one\n# not a comment\n'
                    '[not.a.table]\n"""\n', encoding="utf-8")
    upsert_route(path, "maid2", ROUTE)
    doc = tomlkit.parse(path.read_text(encoding="utf-8")).unwrap()
    assert doc["routes"]["maid"]["system_prompt"] == "line one\n# not a comment\n[not.a.table]\n"
    assert doc["routes"]["maid2"] == ROUTE


def test_route_add_honours_the_config_variable(tmp_path: Path):
    path = tmp_path / "elsewhere.toml"
    path.write_text((REPO / "config.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["route", "add", "maid3", "--model", "ft:x"],
                                env={"PERSONA_PROXY_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert "[routes.maid3]" in path.read_text(encoding="utf-8")
