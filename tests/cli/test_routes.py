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


def test_routes_says_retired_and_exits_1_when_a_route_has_no_target_that_can_serve(tmp_path, fake):
    fake.models = [{"id": "ft:old", "object": "model", "created": 1, "owned_by": "u", "shutdown_date": "2025-12-31"}]
    config = tmp_path / "config.toml"
    config.write_text(f"""
[upstreams.fake]
base_url = "{fake.url}/v1"

[upstreams.demo]
kind = "demo"

[routes.maid]
upstream = "fake"
model = "ft:old"

[routes.maid-demo]
upstream = "demo"
model = "maid-demo"
""", encoding="utf-8")
    result = CliRunner().invoke(cli, ["routes", "--config", str(config)])
    assert result.exit_code == 1
    assert "(retired " in result.output and " days ago)" in result.output and "(-" not in result.output
    assert "route maid: no target can serve it" in result.output
    demo = next(line for line in result.output.splitlines() if line.startswith("maid-demo"))
    assert " yes " in demo.split("built-in demo)")[1]  # the demo's model is present, not "?"
    rows = json.loads(CliRunner().invoke(cli, ["routes", "--config", str(config), "--json"]).stdout)
    assert [(r["route"], r["can_serve"]) for r in rows] == [("maid", False), ("maid-demo", True)]
