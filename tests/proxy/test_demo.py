"""The built-in offline demo, and the default config a newcomer starts with."""

from __future__ import annotations

import httpx
import openai
import pytest

from app.config import load_config
from app.proxy.demo import demo_reply
from app.proxy.server import create_app

from ..fakes.servers import ServerThread


@pytest.fixture
def default_proxy():
    # No OPENAI_API_KEY, no client keys: exactly a fresh machine.
    config = load_config(None, overrides={"port": 0}, environ={})
    with ServerThread(create_app(config)) as server:
        yield server


def sdk(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=10)


def test_demo_route_answers_in_persona_offline(default_proxy):
    result = sdk(default_proxy).chat.completions.create(
        model="maid-demo", messages=[{"role": "user", "content": "你好"}])
    assert result.model == "maid-demo"
    assert "主人" in result.choices[0].message.content


def test_demo_route_streams_several_chunks_with_usage(default_proxy):
    stream = sdk(default_proxy).chat.completions.create(
        model="maid-demo", messages=[{"role": "user", "content": "請幫我泡茶"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == demo_reply([{"role": "user", "content": "請幫我泡茶"}])
    assert len(chunks) > 5
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_maid_without_openai_key_names_the_variable_and_demo_still_works(default_proxy):
    with pytest.raises(openai.APIStatusError) as info:
        sdk(default_proxy).chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert "OPENAI_API_KEY" in info.value.message
    assert httpx.get(default_proxy.url + "/v1/models").json()["data"][0]["id"] == "maid-demo"


def test_demo_reply_picks_by_keyword_and_quotes_otherwise():
    assert "茶" in demo_reply([{"role": "user", "content": "tea please"}])
    fallback = demo_reply([{"role": "user", "content": [{"type": "text", "text": "天氣如何"}]}])
    assert "天氣如何" in fallback and "OPENAI_API_KEY" in fallback


@pytest.mark.parametrize("extra, param", [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
      "tool_choice": "required"}, "tool_choice"),
])
def test_demo_refuses_what_it_cannot_do_instead_of_pretending(default_proxy, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(default_proxy).chat.completions.create(
            model="maid-demo", messages=[{"role": "user", "content": "你好"}], **extra)
    assert caught.value.body["param"] == param and caught.value.body["code"] == "unsupported_value"
    assert "demo maid" in caught.value.body["message"]


def test_the_unknown_path_answer_names_every_api_and_a_models_call_is_logged(default_proxy, caplog):
    import logging

    caplog.set_level(logging.INFO)
    answer = httpx.get(default_proxy.url + "/v2/chat")
    assert answer.status_code == 404 and "/v1/responses" in answer.json()["error"]["message"]
    assert httpx.get(default_proxy.url + "/v1/models").status_code == 200
    lines = [r for r in caplog.records if getattr(r, "fields", {}).get("kind") == "models"]
    assert lines and lines[-1].fields["listed"] >= 1 and lines[-1].getMessage().startswith("models status=200")


def test_responses_requests_log_as_responses(default_proxy, caplog):
    import logging

    caplog.set_level(logging.INFO)
    assert sdk(default_proxy).responses.create(model="maid-demo", input="你好").output_text
    line = next(r for r in caplog.records if getattr(r, "fields", {}).get("route") == "maid-demo")
    assert line.getMessage().startswith("responses route=maid-demo") and line.fields["kind"] == "responses"
