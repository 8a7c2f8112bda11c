"""`POST /v1/responses` against a Responses upstream (native mode), through the official SDK and raw httpx."""

from __future__ import annotations

import json
import logging

import openai
import pytest

from ..conftest import FT_MODEL, MAID_PROMPT
from ..fakes.upstream import FakeOpenAI, Reply, error_reply, response_events, response_obj

LIFECYCLE = {"response.created", "response.in_progress", "response.completed", "response.incomplete",
             "response.failed", "response.queued"}


def events_of(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_sdk_create_puts_the_persona_in_instructions_and_names_the_route(proxy, fake):
    client = proxy.openai()
    reply = client.responses.create(
        model="maid", instructions="You are a pirate.", max_output_tokens=50,
        input=[{"role": "developer", "content": "Talk like a pirate."},
               {"role": "user", "content": [{"type": "input_text", "text": "你好"}]},
               {"type": "function_call", "call_id": "call_1", "name": "tea", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "green"}])
    assert reply.model == "maid" and reply.output_text == "Hello!"
    sent = fake.responses_requests[0].json
    assert sent["model"] == FT_MODEL
    assert sent["instructions"] == MAID_PROMPT  # replace: the persona is the instructions
    assert [i.get("role", i.get("type")) for i in sent["input"]] == ["user", "function_call", "function_call_output"]
    assert sent["temperature"] == 0.8 and sent["max_output_tokens"] == 50  # route default; client's value wins
    assert "stream_options" not in sent


def test_a_plain_string_input_and_route_params_in_responses_terms(make_proxy, fake):
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"
system_prompt_mode = "prepend"
params = {{ temperature = 0.8, max_tokens = 300, stop = ["\\n\\n"], frequency_penalty = 0.5 }}
""")
    proxy.openai().responses.create(model="maid", input="hi", instructions="Be brief.")
    sent = fake.responses_requests[0].json
    assert sent["instructions"] == f"{MAID_PROMPT}\n\nBe brief." and sent["input"] == "hi"
    assert sent["max_output_tokens"] == 300 and sent["temperature"] == 0.8
    assert "max_tokens" not in sent and "stop" not in sent and "frequency_penalty" not in sent


def test_stream_helper_and_every_lifecycle_event_names_the_route(proxy, fake):
    with proxy.openai().responses.stream(model="maid", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.model == "maid" and final.output_text == "Hello!" and final.status == "completed"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    fake.enqueue(Reply(chunks=response_events(FT_MODEL)))
    with proxy.http() as http:
        text = http.post("/v1/responses", json={"model": "maid", "input": "hi", "stream": True}).text
    events = events_of(text)
    lifecycle = [e for e in events if e["type"] in LIFECYCLE]
    assert len(lifecycle) == 3 and all(e["response"]["model"] == "maid" for e in lifecycle)
    assert FT_MODEL not in text
    # Everything else is relayed byte for byte, event: lines included.
    upstream = b"".join(c for c in response_events(FT_MODEL) if isinstance(c, bytes)).decode()
    deltas = [block for block in upstream.split("\n\n") if "output_text.delta" in block]
    assert deltas and all(block in text for block in deltas)


def test_unknown_route_and_bad_bodies_are_openai_shaped(proxy):
    client = proxy.openai()
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="nobody", input="hi")
    assert info.value.code == "model_not_found"
    with proxy.http() as http:
        missing = http.post("/v1/responses", json={"model": "maid"})
        wrong = http.post("/v1/responses", json={"model": "maid", "input": 3})
        stored = http.delete("/v1/responses/resp_1")
    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "input")
    assert (wrong.status_code, wrong.json()["error"]["param"]) == (400, "input")
    assert stored.status_code == 404 and "stored responses live with the upstream" in stored.json()["error"]["message"]


def test_auth_applies_to_responses(proxy):
    with proxy.http() as http:
        refused = http.post("/v1/responses", json={"model": "maid", "input": "hi"},
                            headers={"authorization": "Bearer wrong"})
    assert refused.status_code == 401


def test_open_webui_tasks_get_no_persona(make_proxy, fake, caplog):
    caplog.set_level(logging.INFO)
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"
task_model = "gpt-4.1-nano"
""")
    task = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history."
    proxy.openai().responses.create(model="maid", max_output_tokens=1000,
                                    input=[{"role": "user", "content": [{"type": "input_text", "text": task}]}])
    sent = fake.responses_requests[0].json
    assert sent["model"] == "gpt-4.1-nano" and "instructions" not in sent
    assert any("task route=maid" in r.getMessage() and "api=responses" in r.getMessage() for r in caplog.records)


def test_failover_from_a_retired_target(make_proxy, fake):
    backup = FakeOpenAI().start()
    try:
        proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"

[[routes.maid.fallbacks]]
upstream = "backup"
model = "gpt-4.1-mini"
system_prompt_extra = "你的名字是莉莉。"
""", extra_upstreams=f'[upstreams.backup]\nbase_url = "{backup.url}/v1"\n')
        fake.enqueue(error_reply(404, "The model `ft:...` does not exist", code="model_not_found"))
        with proxy.http() as http:
            resp = http.post("/v1/responses", json={"model": "maid", "input": "hi"})
        assert resp.status_code == 200 and resp.json()["model"] == "maid"
        assert resp.headers["x-persona-target"] == "backup/gpt-4.1-mini"
        assert backup.responses_requests[0].json["instructions"] == f"{MAID_PROMPT}\n\n你的名字是莉莉。"
    finally:
        backup.stop()


def test_a_stream_cut_mid_way_ends_with_an_error_event_never_a_completion(proxy, fake):
    fake.enqueue(Reply(chunks=response_events(FT_MODEL, terminal=False)))
    with proxy.http() as http:
        text = http.post("/v1/responses", json={"model": "maid", "input": "hi", "stream": True}).text
    events = events_of(text)
    assert events[-1]["type"] == "error" and events[-1]["code"] == "upstream_stream_error"
    assert not any(e["type"] == "response.completed" for e in events)
    assert "event: error\n" in text
    fake.enqueue(Reply(chunks=response_events(FT_MODEL, terminal=False)))
    with pytest.raises(RuntimeError), proxy.openai().responses.stream(model="maid", input="hi") as stream:
        for _ in stream:
            pass
        stream.get_final_response()


def test_errors_before_the_first_byte_keep_the_upstream_status(proxy, fake):
    fake.enqueue(error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers={"retry-after": "2"}))
    with pytest.raises(openai.RateLimitError) as info:
        proxy.openai().responses.create(model="maid", input="hi")
    assert info.value.response.headers["retry-after"] == "2"


def test_store_and_previous_response_id_pass_through_in_native_mode(proxy, fake):
    fake.enqueue(Reply(body=json.dumps(response_obj(FT_MODEL, "again")).encode()))
    proxy.openai().responses.create(model="maid", input="more", previous_response_id="resp_prev", store=True)
    sent = fake.responses_requests[0].json
    assert sent["previous_response_id"] == "resp_prev" and sent["store"] is True
    assert sent["instructions"] == MAID_PROMPT  # not carried over by the provider: sent on every turn
