"""`persona-proxy routes`: every route and target with its state."""

from __future__ import annotations

import json

from click.testing import CliRunner

from app.cli.main import cli

from ..conftest import DATA, MAID_PROMPT


def test_routes_command(tmp_path, fake):
    fake.models = [{"id": "ft:old", "object": "model", "created": 1, "owned_by": "u", "shutdown_date": "2027-01-14"},
                   {"id": "gpt-4.1-mini", "object": "model", "created": 1, "owned_by": "openai"}]
    (tmp_path / "maid.jsonl").write_bytes((DATA / "valid.jsonl").read_bytes())
    config = tmp_path / "config.toml"
    config.write_text(f"""
[upstreams.fake]
base_url = "{fake.url}/v1"

[routes.maid]
upstream = "fake"
model = "ft:old"
system_prompt = "{MAID_PROMPT}"

[[routes.maid.fallbacks]]
upstream = "fake"
model = "gpt-4.1-mini"
few_shot_from = "maid.jsonl"
few_shot_count = 2

[[routes.maid.fallbacks]]
upstream = "fake"
model = "gpt-3-gone"
""", encoding="utf-8")
    result = CliRunner().invoke(cli, ["routes", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["model"], r["reachable"], r["model_exists"], r["shutdown_date"]) for r in rows] == [
        ("ft:old", True, True, "2027-01-14"), ("gpt-4.1-mini", True, True, None), ("gpt-3-gone", True, False, None)]
    assert rows[1]["few_shot_examples"] == 2 and rows[1]["few_shot_tokens"] > 0
    table = CliRunner().invoke(cli, ["routes", "--config", str(config)])
    assert "fake/gpt-3-gone" in table.output and "NO" in table.output and "2 ex," in table.output
