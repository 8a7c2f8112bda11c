"""`persona-proxy eval`: a route's targets and a candidate, each answering in its own way, against real fakes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli

from ..conftest import MAID_PROMPT, REPO
from ..fakes.servers import free_port
from ..fakes.upstream import FakeOpenAI

SAMPLE = REPO / "examples" / "maid_sample.jsonl"
ANSWERS = {
    "hant": "主人，莉莉馬上為您準備好！請稍等一下喔～❤️",
    "hans": "主人，莉莉马上为您准备好！请稍等一下哦～❤️",
    "english": "Of course! I will get that ready for you right away.",
    "robot": "主人，作為一個AI語言模型，我無法真的做到。❤️",
}


@pytest.fixture
def fakes():
    servers = {name: FakeOpenAI().start() for name in ANSWERS}
    for name, server in servers.items():
        server.content = ANSWERS[name]
    yield servers
    for server in servers.values():
        server.stop()


def config_for(tmp_path: Path, fakes: dict[str, FakeOpenAI], extra: str = "") -> Path:
    (tmp_path / "maid.jsonl").write_bytes(SAMPLE.read_bytes())
    upstreams = "".join(f'[upstreams.{name}]\nbase_url = "{s.url}/v1"\n\n' for name, s in fakes.items())
    path = tmp_path / "config.toml"
    path.write_text(f"""{upstreams}
[upstreams.gone]
base_url = "http://127.0.0.1:{free_port()}/v1"

[routes.maid]
upstream = "hant"
model = "ft:maid"
system_prompt = "{MAID_PROMPT}"
params = {{ temperature = 0.8 }}

[[routes.maid.fallbacks]]
upstream = "hans"
model = "gpt-4.1-mini"
system_prompt_extra = "你的名字是莉莉。"
few_shot_from = "maid.jsonl"
few_shot_count = 2
{extra}
""", encoding="utf-8")
    return path


def run_eval(config: Path, *args: str):
    return CliRunner().invoke(cli, ["eval", "maid", "--config", str(config), *args])


def test_every_measure_tells_the_targets_apart_and_the_requests_are_the_routes(tmp_path, fakes):
    config = config_for(tmp_path, fakes)
    result = run_eval(config, "--json", "--target", "gpt-4o@english", "--target", "llama@robot",
                      "--target", "m@gone", "--limit", "6")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by = {t["target"]: t for t in data["targets"]}
    assert list(by) == ["training data", "ft:maid@hant", "gpt-4.1-mini@hans", "gpt-4o@english", "llama@robot",
                        "m@gone"]
    assert data["script"] == "zh-Hant" and "主人" in data["markers"]
    hant, hans, english, robot = (by[k] for k in ("ft:maid@hant", "gpt-4.1-mini@hans", "gpt-4o@english",
                                                  "llama@robot"))
    assert (hant["script"], hans["script"], english["script"]) == (1.0, 0.0, 0.0)  # script
    assert english["markers"] < hant["markers"]  # markers
    assert robot["breaks"] == 1.0 and hant["breaks"] == 0.0  # breaks of character
    assert hant["closeness"] > english["closeness"]  # chrF to the reference
    assert hant["fidelity"] > max(t["fidelity"] for t in (hans, english, robot))
    assert all(0 <= t["fidelity"] <= 1 for t in (hant, hans, english, robot))
    assert by["m@gone"]["status"] == "unreachable" and by["m@gone"]["fidelity"] is None
    # Held-out prompts: never one the fallback uses as a few-shot exchange; the same code plans the requests.
    sent = fakes["hans"].chat_requests[0].json["messages"]
    shots = {m["content"] for m in sent[1:-1] if m["role"] == "user"}
    assert sent[0]["content"] == f"{MAID_PROMPT}\n\n你的名字是莉莉。" and len(shots) == 2
    asked = {r.json["messages"][-1]["content"] for r in fakes["hans"].chat_requests}
    assert len(asked) == 6 and not asked & shots
    assert fakes["hant"].chat_requests[0].json["temperature"] == 0.8


def test_the_table_names_what_pulls_each_target_down(tmp_path, fakes):
    result = run_eval(config_for(tmp_path, fakes), "--target", "llama@robot", "--limit", "4")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split()[:2] == ["training", "data"]
    script_row = next(line for line in lines if line.startswith("in zh-Hant"))
    breaks_row = next(line for line in lines if line.startswith("breaks of character"))
    assert script_row.count("◀") == 1 and breaks_row.count("◀") == 1  # hans: script; robot: breaks
    assert any(line.strip().startswith("主人") for line in lines)


def test_a_retired_target_is_reported_not_scored_and_cost_comes_first(tmp_path, fakes):
    # The shutdown date lands in the fallback's table: it is the fallback that is retired.
    config = config_for(tmp_path, fakes, extra='shutdown_date = 2025-01-01\n\n[prices."ft:maid"]\ninput = 300\n'
                                             'output = 1200\n')
    refused = CliRunner().invoke(cli, ["eval", "maid", "--config", str(config), "--limit", "3"], input="n\n")
    assert refused.exit_code == 1 and "above --max-cost" in refused.output and "not sent" in refused.output
    assert fakes["hant"].chat_requests == []
    result = run_eval(config, "--limit", "3", "--yes", "--json")
    by = {t["target"]: t for t in json.loads(result.stdout)["targets"]}
    assert by["gpt-4.1-mini@hans"]["status"] == "retired" and by["gpt-4.1-mini@hans"]["fidelity"] is None
    assert fakes["hans"].chat_requests == []
    assert "ft:maid@hant: 3 requests" in result.stderr


def test_prompts_of_your_own_and_clear_mistakes(tmp_path, fakes):
    config = config_for(tmp_path, fakes)
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text('{"prompt": "幫我泡茶", "reference": "好的，主人！"}\n', encoding="utf-8")
    result = run_eval(config, "--json", "--prompts", str(prompts), "--limit", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prompts"] == 2
    assert "no route 'nobody'" in CliRunner().invoke(cli, ["eval", "nobody", "--config", str(config)]).output
    bad = run_eval(config, "--target", "no-upstream-here")
    assert bad.exit_code == 1 and "MODEL@UPSTREAM" in bad.output


def test_the_offline_demo_can_be_evaluated_with_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["eval", "maid-demo", "--dataset", str(SAMPLE), "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    (demo,) = [t for t in json.loads(result.stdout)["targets"] if t["target"] == "maid-demo@demo"]
    assert demo["status"] == "ok" and demo["script"] == 1.0 and demo["fidelity"] is not None


def test_the_html_report_is_self_contained_with_charts_and_every_reply(tmp_path, fakes):
    config = config_for(tmp_path, fakes)
    report = tmp_path / "report.html"
    result = run_eval(config, "--limit", "3", "--html", str(report), "--target", "gpt-4o@english")
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<script" not in page  # opens offline
    assert page.count("<h2>") == 7  # six measures and the replies
    assert page.count(ANSWERS["english"]) == 3 and page.count(ANSWERS["hant"]) == 3
    assert "gpt-4.1-mini@hans" in page and "class=\"bar ref\"" in page


@pytest.mark.skipif(not shutil.which("chromium"), reason="headless Chromium (Debian's chromium) is not installed")
def test_the_html_report_opens_in_headless_chromium(tmp_path, fakes):
    report = tmp_path / "report.html"
    run_eval(config_for(tmp_path, fakes), "--limit", "2", "--html", str(report))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert "Persona fidelity of route" in dom and "ft:maid@hant" in dom


def test_a_judge_scores_every_reply_with_structured_output(tmp_path, fakes):
    judge = FakeOpenAI().start()
    try:
        judge.content = json.dumps({"score": 4, "reason": "warm, in character"})
        config = config_for(tmp_path, fakes)
        config.write_text(config.read_text(encoding="utf-8") + f'\n[upstreams.judge]\nbase_url = "{judge.url}/v1"\n',
                          encoding="utf-8")
        result = run_eval(config, "--limit", "2", "--judge", "gpt-judge@judge", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        hant = next(t for t in data["targets"] if t["target"] == "ft:maid@hant")
        assert hant["judge"] == 4.0 and hant["components"]["judge"] == 0.75
        assert [r["judge"] for r in hant["replies"]] == [4, 4]
        assert "5 = indistinguishable" in data["rubric"]
        asked = judge.chat_requests[0].json
        assert asked["response_format"]["type"] == "json_schema" and asked["model"] == "gpt-judge"
        assert MAID_PROMPT in asked["messages"][1]["content"]
        assert len(judge.chat_requests) == 4  # two prompts, two targets
        bad = run_eval(config, "--judge", "gpt-judge@nowhere")
        assert bad.exit_code == 1 and "--judge takes MODEL@UPSTREAM" in bad.output
    finally:
        judge.stop()


def test_without_the_eval_extra_it_says_what_to_install(tmp_path, fakes, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_sacrebleu(name, *args, **kwargs):
        if name == "sacrebleu":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_sacrebleu)
    result = run_eval(config_for(tmp_path, fakes))
    assert result.exit_code == 1 and "pip install 'persona-proxy[eval]'" in result.output
    assert fakes["hant"].chat_requests == []


def test_rate_limits_are_waited_out_with_the_upstreams_retry_after(tmp_path, fakes):
    from ..fakes.upstream import error_reply

    fakes["hant"].enqueue(error_reply(429, "Rate limit reached", code="rate_limit_exceeded",
                                      headers={"retry-after": "0.2"}))
    result = run_eval(config_for(tmp_path, fakes), "--limit", "2", "--json", "--concurrency", "1")
    hant = next(t for t in json.loads(result.stdout)["targets"] if t["target"] == "ft:maid@hant")
    assert hant["replies_scored"] == 2 and all(r["reply"] for r in hant["replies"])
    assert len(fakes["hant"].chat_requests) == 3  # one refused, asked again after retry-after
