"""The clock in the product: fine-tuning cut-offs and retirements warned about in `routes` and `check`."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from app.cli.main import cli
from app.cli.routes import succession_warnings

FT = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
TODAY = dt.date(2026, 12, 20)


def row(role: str, model: str, *, days_left: int | None = None, cutoff: str | None = None, target: int = 0) -> dict:
    return {"route": "maid", "role": role, "target": target, "model": model, "upstream": "openai",
            "fine_tune": model.startswith("ft:"), "fine_tuning_until": cutoff, "days_left": days_left,
            "shutdown_date": None if days_left is None else (TODAY + dt.timedelta(days_left)).isoformat()}


def test_a_route_whose_every_target_is_ending_is_warned_about():
    rows = [row("primary", FT, days_left=25, cutoff="2027-01-06"), row("fallback", FT, cutoff="2027-01-06", target=1)]
    (line,) = succession_warnings(rows, TODAY)
    assert line.startswith("route maid: every target is ending (primary " + FT + " retires on 2027-01-14")
    assert "fallback 1 " + FT + " is a fine-tune, and new fine-tuning on openai ends on 2027-01-06 (in 17 days)" in line
    assert "add a canary or fallback" in line


def test_one_lasting_target_is_enough_and_shadows_do_not_count():
    lasting = [row("primary", FT, days_left=25), row("fallback", "gpt-4.1-mini", target=1)]
    assert succession_warnings(lasting, TODAY) == []
    shadowed = [row("primary", FT, days_left=25), row("shadow", "gpt-4.1-mini")]
    assert len(succession_warnings(shadowed, TODAY)) == 1
    far = [row("primary", FT, cutoff="2027-06-01")]
    assert succession_warnings(far, TODAY) == []


def test_check_names_the_ending_route_and_a_canary_without_dataset(tmp_path, fake):
    config = tmp_path / "config.toml"
    fake.models = [{"id": FT, "object": "model"}, {"id": "next", "object": "model"}]
    config.write_text(f'''[upstreams.fake]
base_url = "{fake.url}/v1"
fine_tuning_until = 2026-06-30

[routes.maid]
upstream = "fake"
model = "{FT}"

[[routes.maid.shadow]]
upstream = "fake"
model = "next"
''', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--config", str(config)])
    out = result.output
    assert "warning: route maid: every target is ending (primary " + FT in out
    assert "new fine-tuning on fake ended on 2026-06-30" in out
    assert "warning: route maid: it has canary or shadow targets but no dataset" in out
    routes = CliRunner().invoke(cli, ["routes", "--config", str(config)])
    assert "shadow 0" in routes.output and "warning: route maid: every target is ending" in routes.output
