"""``persona-proxy route promote``: a canary, shadow, fallback or new target becomes the primary."""

from __future__ import annotations

import tomllib

from click.testing import CliRunner

from app.cli.main import cli
from app.config import load_config

CONFIG = '''# my maid
[upstreams.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"

[upstreams.vllm]
base_url = "http://127.0.0.1:8000/v1"

[routes.maid]
upstream = "openai"   # the fine-tune, until 2027-01-14
model = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
system_prompt = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"
shutdown_date = 2027-01-14
params = { temperature = 0.8 }

[[routes.maid.fallbacks]]
upstream = "openai"
model = "gpt-4.1-mini"

# the successor on trial
[[routes.maid.canary]]
upstream = "vllm"
model = "qwen-maid"
share = 0.1
system_prompt_extra = "你的名字是莉莉。"
few_shot_count = 4
params = { temperature = 0.3 }

[[routes.maid.shadow]]
upstream = "vllm"
model = "llama-maid"
sample = 0.5
'''


def promote(tmp_path, *args: str):
    path = tmp_path / "config.toml"
    if not path.exists():
        path.write_text(CONFIG, encoding="utf-8")
    return path, CliRunner().invoke(cli, ["route", "promote", *args, "--config", str(path)])


def test_a_canary_becomes_the_primary_and_the_old_primary_the_first_fallback(tmp_path):
    path, result = promote(tmp_path, "maid", "qwen-maid@vllm")
    assert result.exit_code == 0, result.output
    assert "Promoted qwen-maid@vllm (canary[0])" in result.output and "SIGHUP" in result.output
    text = path.read_text(encoding="utf-8")
    # Comments stay, but not one beside a value that changed: it spoke of the old value.
    assert text.startswith("# my maid\n") and "# the successor on trial" in text and "# the fine-tune" not in text
    route = tomllib.loads(text)["routes"]["maid"]
    assert (route["upstream"], route["model"]) == ("vllm", "qwen-maid")
    assert route["system_prompt_extra"] == "你的名字是莉莉。" and route["few_shot_count"] == 4
    assert route["params"] == {"temperature": 0.3} and "shutdown_date" not in route and "share" not in route
    assert "canary" not in route and len(route["shadow"]) == 1
    old, kept = route["fallbacks"]
    assert old["model"] == "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
    assert str(old["shutdown_date"]) == "2027-01-14" and old["params"] == {"temperature": 0.8}
    # The fallback that inherited temperature 0.8 keeps getting it.
    assert kept == {"upstream": "openai", "model": "gpt-4.1-mini", "params": {"temperature": 0.8}}
    load_config(path, environ={})


def test_a_shadow_a_fallback_and_a_new_target_can_be_promoted(tmp_path):
    path, result = promote(tmp_path, "maid", "llama-maid@vllm")
    assert result.exit_code == 0, result.output
    route = tomllib.loads(path.read_text(encoding="utf-8"))["routes"]["maid"]
    assert route["model"] == "llama-maid" and "shadow" not in route and "sample" not in route
    path, result = promote(tmp_path, "maid", "gpt-4.1-mini@openai")
    assert result.exit_code == 0, result.output
    route = tomllib.loads(path.read_text(encoding="utf-8"))["routes"]["maid"]
    assert route["model"] == "gpt-4.1-mini" and [f["model"] for f in route["fallbacks"]][:1] == ["llama-maid"]
    path, result = promote(tmp_path, "maid", "gpt-5-mini@openai")
    assert result.exit_code == 0 and "(a new target)" in result.output
    assert tomllib.loads(path.read_text(encoding="utf-8"))["routes"]["maid"]["model"] == "gpt-5-mini"


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path):
    path, result = promote(tmp_path, "maid", "qwen-maid@vllm", "--dry-run")
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == CONFIG
    assert '-upstream = "openai"   # the fine-tune, until 2027-01-14' in result.output
    assert '+model = "qwen-maid"' in result.output and "+[[routes.maid.fallbacks]]" in result.output


def test_what_cannot_be_promoted_is_refused_in_one_line_and_nothing_written(tmp_path):
    for args, message in ((["maid", "qwen-maid"], "is not MODEL@UPSTREAM"),
                          (["maid", "qwen@nowhere"], "no [upstreams.nowhere]"),
                          (["nope", "qwen-maid@vllm"], "no route 'nope'"),
                          (["maid", "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D@openai"], "already the primary")):
        path, result = promote(tmp_path, *args)
        assert result.exit_code == 1, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert path.read_text(encoding="utf-8") == CONFIG


def test_a_running_server_serves_the_promoted_target_after_its_reload(succession_proxy, tmp_path):
    from ..fakes.styles import SIMPLIFIED, route

    canary = '[[routes.maid.canary]]\nupstream = "canary"\nmodel = "gpt-next"\nshare = 0.5\n'
    proxy = succession_proxy(route(canary=canary), server="reload_on_change = true")
    path = tmp_path / "config.toml"
    result = CliRunner().invoke(cli, ["route", "promote", "maid", "gpt-next@canary", "--config", str(path)])
    assert result.exit_code == 0, result.output
    import time

    deadline = time.monotonic() + 5
    with proxy.http() as http:
        while True:
            reply = http.post("/v1/chat/completions", json={"model": "maid", "messages": [
                {"role": "user", "content": "早安"}]}, headers={"x-openwebui-chat-id": "any"})
            if reply.headers["x-persona-target"] == "canary/gpt-next" and all(
                    http.post("/v1/chat/completions", json={"model": "maid", "messages": [
                        {"role": "user", "content": "早安"}]}, headers={"x-openwebui-chat-id": f"c-{i}"}
                    ).headers["x-persona-target"] == "canary/gpt-next" for i in range(10)):
                break  # every conversation now: it is the primary, no longer a canary
            assert time.monotonic() < deadline, "the promoted target never served"
            time.sleep(0.05)
        assert reply.json()["choices"][0]["message"]["content"] == SIMPLIFIED
