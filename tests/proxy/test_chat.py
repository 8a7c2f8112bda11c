"""Chat completions end to end: openai SDK -> proxy -> fake upstream, all real servers."""

from __future__ import annotations

import json

import pytest

from ..conftest import FT_MODEL, MAID_PROMPT
from ..fakes.upstream import Reply, completion


def routes_with_mode(mode: str) -> str:
    return f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"
system_prompt_mode = "{mode}"
"""


def test_replace_mode_puts_persona_first_and_drops_client_system(make_proxy, fake):
    proxy = make_proxy(routes_with_mode("replace"))
    proxy.openai().chat.completions.create(
        model="maid",
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "你是誰？"},
            {"role": "assistant", "content": "我是莉莉。"},
            {"role": "user", "content": "泡茶"},
        ],
    )
    sent = fake.chat_requests[0].json
    assert sent["messages"] == [
        {"role": "system", "content": MAID_PROMPT},
        {"role": "user", "content": "你是誰？"},
        {"role": "assistant", "content": "我是莉莉。"},
        {"role": "user", "content": "泡茶"},
    ]


def test_replace_mode_never_drops_a_lone_user_message(make_proxy, fake):
    # The Pipelines script popped messages[0] unconditionally, losing this message.
    proxy = make_proxy(routes_with_mode("replace"))
    proxy.openai().chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}])
    assert fake.chat_requests[0].json["messages"] == [
        {"role": "system", "content": MAID_PROMPT},
        {"role": "user", "content": "hi"},
    ]


def test_prepend_mode_keeps_client_system_after_persona(make_proxy, fake):
    proxy = make_proxy(routes_with_mode("prepend"))
    proxy.openai().chat.completions.create(
        model="maid",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    )
    assert [m["content"] for m in fake.chat_requests[0].json["messages"]] == [MAID_PROMPT, "Be brief.", "hi"]


@pytest.mark.parametrize(
    ("client_messages", "expected_first"),
    [
        ([{"role": "user", "content": "hi"}], MAID_PROMPT),
        ([{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}], "Mine."),
        ([{"role": "developer", "content": "Dev."}, {"role": "user", "content": "hi"}], "Dev."),
    ],
)
def test_if_absent_mode_injects_only_without_a_client_system_message(
    make_proxy, fake, client_messages, expected_first
):
    proxy = make_proxy(routes_with_mode("if_absent"))
    proxy.openai().chat.completions.create(model="maid", messages=client_messages)
    sent = fake.chat_requests[0].json["messages"]
    assert sent[0]["content"] == expected_first
    assert sum(m["role"] in ("system", "developer") for m in sent) == 1


def test_route_without_prompt_forwards_messages_as_sent(make_proxy, fake):
    proxy = make_proxy('[routes.plain]\nupstream = "fake"\nmodel = "gpt-4o-mini"\n')
    messages = [{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}]
    proxy.openai().chat.completions.create(model="plain", messages=messages)
    assert fake.chat_requests[0].json["messages"] == messages


def test_params_are_defaults_and_client_values_win(make_proxy, fake):
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
params = {{ temperature = 0.8, top_p = 0.9, max_tokens = 300 }}
""")
    client = proxy.openai()
    client.chat.completions.create(model="maid", messages=[{"role": "user", "content": "a"}], temperature=0.2)
    sent = fake.chat_requests[0].json
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.9
    assert sent["max_tokens"] == 300


def test_unknown_fields_pass_through_untouched(proxy, fake):
    tools = [{"type": "function", "function": {"name": "get_tea", "description": "Tea.",
                                               "parameters": {"type": "object", "properties": {}}}}]
    extra = {
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "seed": 42,
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
        "stop": ["\n\n"],
        "user": "someone",
        "vendor_extension": {"nested": [1, 2, {"deep": None}]},
    }
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json={
            "model": "maid", "messages": [{"role": "user", "content": "hi"}], **extra})
    assert resp.status_code == 200
    sent = fake.chat_requests[0].json
    for key, value in extra.items():
        assert sent[key] == value, key


def test_upstream_gets_its_model_and_key_never_the_clients(proxy, fake):
    with proxy.http() as http:
        http.post("/v1/chat/completions", json={"model": "maid", "messages": [{"role": "user", "content": "hi"}]},
                  headers={"x-openwebui-user-id": "u1", "openai-organization": "org-evil"})
    recorded = fake.chat_requests[0]
    assert recorded.json["model"] == FT_MODEL
    assert recorded.headers["authorization"] == f"Bearer {proxy.upstream_key}"
    assert proxy.client_key not in json.dumps(recorded.headers)
    assert "x-openwebui-user-id" not in recorded.headers
    assert "openai-organization" not in recorded.headers
    assert recorded.headers["accept-encoding"] == "identity"
    assert recorded.path == "/v1/chat/completions"


def test_response_reports_route_name_and_keeps_the_rest(proxy, fake):
    upstream = completion(FT_MODEL, "主人好！❤️", service_tier="default")
    raw = json.dumps(upstream, ensure_ascii=False, separators=(", ", ": ")).encode()
    fake.enqueue(Reply(body=raw, headers={"x-request-id": "req_123", "openai-processing-ms": "42"}))
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions",
                         json={"model": "maid", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200
    assert resp.json() == {**upstream, "model": "maid"}
    # Byte-faithful: only the model value changed, formatting and escapes kept.
    assert resp.content == raw.replace(json.dumps(FT_MODEL).encode(), b'"maid"')
    assert resp.headers["x-upstream-request-id"] == "req_123"
    assert resp.headers["x-request-id"].startswith("req_") and resp.headers["x-request-id"] != "req_123"
    assert resp.headers["openai-processing-ms"] == "42"


def test_sdk_sync_and_async_non_streaming(proxy, fake):
    result = proxy.openai().chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}])
    assert result.model == "maid"
    assert result.choices[0].message.content == "Hello!"
    assert result.usage.total_tokens == 7


async def test_sdk_async_non_streaming(proxy, fake):
    client = proxy.async_openai()
    result = await client.chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    assert result.model == "maid"
    assert result.choices[0].message.content == "Hello!"


def test_unknown_model_is_404_and_never_reaches_upstream(proxy, fake):
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        proxy.openai().chat.completions.create(model=FT_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
    assert info.value.body["param"] == "model"
    assert fake.chat_requests == []


def test_two_upstreams_each_get_their_own_model_and_key(make_proxy, fake):
    from ..fakes.upstream import FakeOpenAI

    other = FakeOpenAI().start()
    try:
        proxy = make_proxy(
            f'{routes_with_mode("replace")}\n[routes.local]\nupstream = "local"\nmodel = "llama3.1:8b"\n',
            extra_upstreams=f'[upstreams.local]\nbase_url = "{other.url}/v1"\n',
        )
        client = proxy.openai()
        client.chat.completions.create(model="maid", messages=[{"role": "user", "content": "a"}])
        local = client.chat.completions.create(model="local", messages=[{"role": "user", "content": "b"}])
    finally:
        other.stop()
    assert [r.json["model"] for r in fake.chat_requests] == [FT_MODEL]
    assert [r.json["model"] for r in other.chat_requests] == ["llama3.1:8b"]
    assert "authorization" not in other.chat_requests[0].headers  # no api_key_env: no auth sent
    assert local.model == "local"
