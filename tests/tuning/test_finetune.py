"""The fine-tuning commands against a fake files/fine-tuning API on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.tuning.finetune import FineTuningAPI

from ..conftest import DATA
from ..fakes.finetuning import FakeFineTuning

MAID_PROMPT = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"


@pytest.fixture
def api_server():
    server = FakeFineTuning()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture
def config(tmp_path: Path, api_server: FakeFineTuning) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""# my persona-proxy config
[server]
port = 8080  # keep this port

[upstreams.openai]
# the fake provider
base_url = "{api_server.url}/v1"
api_key_env = "FT_TEST_KEY"

[routes.maid]
upstream = "openai"
model = "ft:gpt-4o-mini-2024-07-18:personal::OLD"
""", encoding="utf-8")
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env={"FT_TEST_KEY": "ft-test-key"})


def test_start_checks_uploads_follows_and_routes(config, api_server, tmp_path):
    dataset = tmp_path / "maid.jsonl"
    dataset.write_bytes((DATA / "valid.jsonl").read_bytes())
    result = run(config, "finetune", "start", str(dataset), "--model", "gpt-4o-mini-2024-07-18",
                 "--suffix", "maid", "--epochs", "3", "--route", "maid-v2", "--poll-interval", "0.01")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "OK: the provider should accept this file." in out
    for status in ("validating_files", "queued", "running", "succeeded"):
        assert f"status: {status}" in out
    assert "step 6/6" in out and "loss 0.3333" in out
    assert out.count("Fine-tuning job started") == 1  # each event shown once
    assert "Fine-tuned model: ft:gpt-4o-mini-2024-07-18:personal:maid:AbC123" in out
    job = next(iter(api_server.jobs.values()))
    assert job.body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    assert job.body["suffix"] == "maid"
    assert api_server.files[job.training_file] == ("maid.jsonl", dataset.read_bytes())
    assert all(h.get("authorization") == "Bearer ft-test-key" for _, _, h in api_server.requests)
    text = config.read_text(encoding="utf-8")
    assert "# my persona-proxy config" in text and "port = 8080  # keep this port" in text
    assert "# the fake provider" in text
    assert 'model = "ft:gpt-4o-mini-2024-07-18:personal::OLD"' in text  # the old route untouched
    assert '[routes.maid-v2]' in text and MAID_PROMPT in text
    assert "ft:gpt-4o-mini-2024-07-18:personal:maid:AbC123" in text


def test_invalid_dataset_is_refused_before_any_upload(config, api_server):
    result = run(config, "finetune", "start", str(DATA / "too_few.jsonl"), "--model", "gpt-4o-mini-2024-07-18")
    assert result.exit_code == 1
    assert "fine-tuning needs at least 10" in result.output and "would be rejected" in result.output
    assert api_server.requests == []


def test_failed_job_shows_the_providers_words_and_what_to_do(config, api_server, tmp_path):
    dataset = tmp_path / "will_fail.jsonl"
    dataset.write_bytes((DATA / "valid.jsonl").read_bytes())
    result = run(config, "finetune", "start", str(dataset), "--model", "gpt-4o-mini-2024-07-18",
                 "--poll-interval", "0.01")
    assert result.exit_code == 1
    assert "Example 3, message 2: missing 'content'." in result.output
    assert "persona-proxy dataset check" in result.output
    assert "Traceback" not in result.output


def test_provider_that_no_longer_accepts_jobs(config, api_server):
    api_server.reject_create = (403, {"message": "Fine-tuning is no longer available for new jobs.",
                                      "type": "invalid_request_error", "code": None})
    result = run(config, "finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini-2024-07-18")
    assert result.exit_code == 1
    assert "Fine-tuning is no longer available for new jobs." in result.output
    assert "route add NAME --model BASE --system-prompt-from DATASET" in result.output


def test_follow_survives_network_blips_and_list_and_cancel(config, api_server):
    started = run(config, "finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini-2024-07-18",
                  "--no-follow")
    assert started.exit_code == 0, started.output
    job_id = next(iter(api_server.jobs))
    assert f"persona-proxy finetune follow {job_id}" in started.output
    api_server.flaky_event_polls = 2
    followed = run(config, "finetune", "follow", job_id, "--poll-interval", "0.01")
    assert followed.exit_code == 0, followed.output
    assert "status: succeeded" in followed.output
    listed = run(config, "finetune", "list")
    assert job_id in listed.output and "succeeded" in listed.output
    as_json = json.loads(run(config, "finetune", "list", "--json").output)
    assert [(j["id"], j["status"]) for j in as_json] == [(job_id, "succeeded")]
    run(config, "finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini-2024-07-18", "--no-follow")
    second = list(api_server.jobs)[-1]
    cancelled = run(config, "finetune", "cancel", second)
    assert cancelled.exit_code == 0 and f"{second}: cancelled" in cancelled.output


def test_ctrl_c_detaches_and_says_how_to_resume(config, api_server, monkeypatch):
    run(config, "finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini-2024-07-18", "--no-follow")
    job_id = next(iter(api_server.jobs))

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("app.tuning.finetune.time.sleep", interrupt)
    result = run(config, "finetune", "follow", job_id)
    assert result.exit_code == 0, result.output
    assert "Detached from" in result.output and f"persona-proxy finetune follow {job_id}" in result.output
    assert api_server.jobs[job_id].status not in ("cancelled", "succeeded")


def test_events_page_newest_first_and_each_is_returned_once(api_server):
    run_config_free = FineTuningAPI(api_server.url + "/v1", "k")
    file_id = run_config_free.upload(DATA / "valid.jsonl")
    job = run_config_free.create_job("gpt-4o-mini-2024-07-18", file_id)
    seen: set[str] = set()
    collected = []
    for _ in range(8):
        run_config_free.job(job["id"])
        collected += run_config_free.new_events(job["id"], seen, page_size=2)
    messages = [e["message"] for e in collected]
    assert len(messages) == len(set(e["id"] for e in collected)) == len(api_server.jobs[job["id"]].events)
    assert messages[0].startswith("Created fine-tuning job")
    assert [m for m in messages if m.startswith("Step")] == [f"Step {i}/6: training loss={2.0 / i:.3f}"
                                                            for i in range(1, 7)]
    run_config_free.close()


def test_route_add_keeps_comments_and_takes_the_prompt_from_a_dataset(config):
    result = run(config, "route", "add", "maid-41", "--model", "gpt-4.1-mini",
                 "--system-prompt-from", str(DATA / "warnings.jsonl"), "--display-name", "Maid (4.1 mini)")
    assert result.exit_code == 0, result.output
    text = config.read_text(encoding="utf-8")
    assert "# the fake provider" in text and "port = 8080  # keep this port" in text
    assert '[routes.maid-41]' in text and MAID_PROMPT in text and 'display_name = "Maid (4.1 mini)"' in text
    updated = run(config, "route", "add", "maid", "--model", "ft:new")
    assert "Updated route 'maid'" in updated.output
    assert 'model = "ft:new"' in config.read_text(encoding="utf-8")


def test_route_add_with_an_unknown_upstream_changes_nothing(config):
    before = config.read_text(encoding="utf-8")
    result = run(config, "route", "add", "x", "--model", "m", "--upstream", "nowhere")
    assert result.exit_code == 1
    assert "unknown upstream 'nowhere'" in result.output
    assert config.read_text(encoding="utf-8") == before


def test_missing_key_is_named(config, api_server):
    result = CliRunner().invoke(cli, ["finetune", "list", "--config", str(config)], env={"FT_TEST_KEY": ""})
    assert result.exit_code == 1 and "FT_TEST_KEY" in result.output
    assert json.dumps(api_server.requests) == "[]"


def one_upstream_config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "single.toml"
    path.write_text(f'[upstreams.local]\nbase_url = "{base_url}"\n\n'
                    '[routes.maid]\nupstream = "local"\nmodel = "m"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("args", [["finetune", "list"], ["finetune", "follow", "ftjob-1"],
                                  ["finetune", "cancel", "ftjob-1"],
                                  ["finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini"]])
def test_an_unreachable_provider_is_one_line_fast_and_names_the_upstream(tmp_path, args):
    from ..fakes.servers import free_port

    config = one_upstream_config(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    started = time.monotonic()
    result = run(config, *args)
    assert time.monotonic() - started < 5  # no retry loop against a provider that never answered
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: upstream 'local': cannot reach http://127.0.0.1:") and "base_url" in last
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)


def test_a_provider_that_is_not_openai_shaped_is_quoted(tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ..fakes.servers import ServerThread

    async def not_found(request):
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    with ServerThread(Starlette(routes=[Route("/{p:path}", not_found, methods=["GET", "POST"])])) as server:
        result = run(one_upstream_config(tmp_path, server.url + "/v1"), "finetune", "list")
    assert result.exit_code == 1
    assert "the provider said: HTTP 404: Not Found" in result.output
    assert "Traceback" not in result.output


def test_with_one_upstream_every_command_uses_it(tmp_path, api_server):
    config = one_upstream_config(tmp_path, f"{api_server.url}/v1")
    result = run(config, "finetune", "list")
    assert result.exit_code == 0, result.output
    assert "No fine-tuning jobs." in result.output


def test_start_after_the_providers_fine_tuning_cutoff_uploads_nothing(config, api_server):
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("# the fake provider\n", "fine_tuning_until = 2026-01-06\n"), encoding="utf-8")
    result = run(config, "finetune", "start", str(DATA / "valid.jsonl"), "--model", "gpt-4o-mini-2024-07-18")
    assert result.exit_code == 1
    assert result.output.startswith("Error: upstream openai stopped accepting new fine-tuning jobs after 2026-01-06")
    assert "nothing was uploaded" in result.output and len(result.output.strip().splitlines()) == 1
    assert api_server.requests == []
