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
