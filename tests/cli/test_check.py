"""`persona-proxy check`: one line per problem, exit 1 on any error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from app.cli.main import cli
from app.proxy.lifecycle import utc_today

from ..fakes.servers import free_port


def run(config: Path, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["check", "--config", str(config)], env=env or {})


def test_a_healthy_config_is_ready_to_serve(tmp_path, fake):
    soon = (utc_today() + dt.timedelta(days=12)).isoformat()
    fake.models = [{"id": "m1", "object": "model", "created": 1, "owned_by": "x", "shutdown_date": soon},
                   {"id": "m2", "object": "model", "created": 1, "owned_by": "x"}]
    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\napi_key_env = "CHECK_KEY"\n'
                      '[routes.maid]\nupstream = "fake"\nmodel = "m1"\n'
                      '[[routes.maid.fallbacks]]\nupstream = "fake"\nmodel = "m2"\n', encoding="utf-8")
    result = run(config, {"CHECK_KEY": "k-canary-123"})
    assert result.exit_code == 0, result.output
    assert f"warning: route maid: primary fake/m1: shuts down on {soon} (in 12 days)" in result.output
    assert result.output.strip().endswith("1 route(s), 1 upstream(s) checked: ready to serve (1 warning(s))")
    assert "k-canary-123" not in result.output
    assert fake.requests[-1].headers["authorization"] == "Bearer k-canary-123"


def test_every_problem_is_one_line_and_exits_1(tmp_path, fake):
    fake.models = [{"id": "old", "object": "model", "created": 1, "owned_by": "x", "shutdown_date": "2025-01-01"}]
    config = tmp_path / "config.toml"
    gone = f"http://127.0.0.1:{free_port()}/v1"
    config.write_text(f"""
[upstreams.fake]
base_url = "{fake.url}/v1"

[upstreams.gone]
base_url = "{gone}"

[upstreams.keyed]
base_url = "{fake.url}/v1"
api_key_env = "CHECK_NOT_SET"

[routes.maid]
upstream = "fake"
model = "old"

[[routes.maid.fallbacks]]
upstream = "fake"
model = "typo-model"

[routes.far]
upstream = "gone"
model = "m"

[routes.locked]
upstream = "keyed"
model = "m"
""", encoding="utf-8")
    result = run(config)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: route maid: primary fake/old: retired on 2025-01-01",
        "error: route maid: fallback 1 fake/typo-model: the upstream does not list this model (check the model id)",
        f"error: upstream gone: cannot reach {gone} (ConnectError); check base_url and the network",
        "error: upstream keyed: CHECK_NOT_SET is not set; export it before starting the proxy",
        "error: route maid: no target can serve it",
        "error: route far: no target can serve it",
        "error: route locked: no target can serve it",
    ]
    assert "Traceback" not in result.output


def test_a_broken_config_is_its_one_message(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[routes.maid]\nupstream = "nowhere"\nmodel = "m"\n', encoding="utf-8")
    result = run(config)
    assert result.exit_code == 1 and "routes.maid.upstream: unknown upstream 'nowhere'" in result.output
