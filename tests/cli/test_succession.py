"""``persona-proxy succession`` on rows a real proxy recorded from canary and shadow traffic."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from app.cli.main import cli

from ..fakes.styles import SAMPLE, route, table_rows

CANARY = '[[routes.maid.canary]]\nupstream = "canary"\nmodel = "gpt-next"\nshare = 0.5\n'
SHADOW = '[[routes.maid.shadow]]\nupstream = "shadow"\nmodel = "open-maid"\n'


def test_succession_reports_every_target_that_served_or_shadowed(succession_proxy, tmp_path):
    text = "[fidelity]\nsample = 1.0\n" + route(canary=CANARY, shadow=SHADOW, extra=f'dataset = "{SAMPLE}"')
    proxy = succession_proxy(text)
    with proxy.http() as http:
        for i in range(20):
            http.post("/v1/chat/completions", json={"model": "maid", "messages": [{"role": "user", "content": "早安"}]},
                      headers={"x-openwebui-chat-id": f"c-{i}"})
    table_rows(tmp_path / "persona-proxy-usage.sqlite3", "fidelity", 40)
    config = str(tmp_path / "config.toml")
    env = {"TEST_UPSTREAM_KEY": "x", "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["succession", "maid", "--config", config, "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["route"] == "maid" and data["since"] == "7d" and data["reference"]["script"] == "zh-Hant"
    by_role = {t["role"]: t for t in data["targets"]}
    assert set(by_role) == {"primary", "canary", "shadow"}
    assert by_role["primary"]["requests"] + by_role["canary"]["requests"] == 20
    assert by_role["shadow"]["requests"] == 20 and by_role["shadow"]["paired"]["pairs"] == 20
    assert by_role["canary"]["script"] == 0.0 and by_role["primary"]["script"] == 1.0
    assert by_role["shadow"]["breaks"] == 1.0 and by_role["primary"]["paired"] is None
    for entry in data["targets"]:
        assert {"target", "role", "requests", "conversations", "errors", "fidelity", "script", "markers", "breaks",
                "length", "paired"} <= set(entry)
    html = tmp_path / "succession.html"
    plain = CliRunner().invoke(cli, ["succession", "maid", "--config", config, "--html", str(html)], env=env)
    assert plain.exit_code == 0, plain.output
    assert "gpt-next@canary" in plain.output and "open-maid@shadow" in plain.output
    assert "best candidate" in plain.output and "<svg" in html.read_text(encoding="utf-8")


def test_succession_says_what_is_wrong_in_one_line(tmp_path, fake):
    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\n' + route(), encoding="utf-8")
    env = {"PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    for args, message in ((["nope"], "no route 'nope'"), (["maid"], "no usage records"),
                          (["maid", "--since", "yesterday"], "--since takes")):
        result = CliRunner().invoke(cli, ["succession", *args, "--config", str(config)], env=env)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


@pytest.mark.skipif(not shutil.which("chromium"), reason="headless Chromium (Debian's chromium) is not installed")
def test_the_succession_page_opens_in_headless_chromium_with_its_chart(succession_proxy, tmp_path):
    text = "[fidelity]\nsample = 1.0\n" + route(canary=CANARY, extra=f'dataset = "{SAMPLE}"')
    proxy = succession_proxy(text)
    with proxy.http() as http:
        for i in range(6):
            http.post("/v1/chat/completions", json={"model": "maid", "messages": [{"role": "user", "content": "早安"}]},
                      headers={"x-openwebui-chat-id": f"c-{i}"})
    table_rows(tmp_path / "persona-proxy-usage.sqlite3", "fidelity", 6)
    page = tmp_path / "succession.html"
    env = {"TEST_UPSTREAM_KEY": "x", "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["succession", "maid", "--config", str(tmp_path / "config.toml"), "--html",
                                      str(page)], env=env)
    assert result.exit_code == 0, result.output
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert "Succession of route" in dom and "<polyline" in dom and "gpt-next@canary" in dom
