"""`persona-proxy chat`: one-shot and multi-turn, streamed, planned like the route serves."""

from __future__ import annotations

from click.testing import CliRunner

from app.cli.main import cli

from ..conftest import MAID_PROMPT
from ..fakes.upstream import FakeOpenAI, error_reply


def config_for(tmp_path, fake: FakeOpenAI):
    path = tmp_path / "config.toml"
    path.write_text(f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\n\n[routes.maid]\nupstream = "fake"\n'
                    f'model = "ft:maid"\nsystem_prompt = "{MAID_PROMPT}"\n', encoding="utf-8")
    return path


def test_one_prompt_is_answered_streamed_with_the_persona(tmp_path, fake):
    result = CliRunner().invoke(cli, ["chat", "maid", "你好", "--config", str(config_for(tmp_path, fake))])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello!\n"
    sent = fake.chat_requests[0].json
    assert sent["stream"] is True and sent["messages"][0] == {"role": "system", "content": MAID_PROMPT}


def test_turns_keep_the_conversation_and_end_with_ctrl_d(tmp_path, fake):
    config = config_for(tmp_path, fake)
    result = CliRunner().invoke(cli, ["chat", "maid", "--config", str(config), "--target", "gpt-4.1-mini@fake"],
                                input="你好\n\n再一次\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Hello!") == 2
    second = fake.chat_requests[1].json
    assert second["model"] == "gpt-4.1-mini"  # the candidate, with the route's persona
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] == "Hello!"


def test_an_upstream_refusal_is_one_line(tmp_path, fake):
    fake.enqueue(error_reply(404, "The model `ft:maid` does not exist", code="model_not_found"))
    result = CliRunner().invoke(cli, ["chat", "maid", "hi", "--config", str(config_for(tmp_path, fake))])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
