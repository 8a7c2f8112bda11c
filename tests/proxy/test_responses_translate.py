"""`POST /v1/responses` on an upstream that only speaks chat (`responses = "translate"`), and on the demo."""

from __future__ import annotations

import json

import openai
import pytest

from app.config import load_config
from app.proxy.server import create_app

from ..conftest import FT_MODEL, MAID_PROMPT
from ..fakes.servers import ServerThread
from ..fakes.upstream import Reply, chunk, completion, usage_chunk

TOOL = {"type": "function", "name": "brew_tea", "description": "Brew a pot of tea.", "strict": False,
        "parameters": {"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"]}}


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(upstream='responses = "translate"')


def tool_call_chunks(model: str) -> list[bytes]:
    def call(piece: dict) -> bytes:
        obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
               "choices": [{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}]}
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    return [chunk(model, "", role="assistant"),
            call({"index": 0, "id": "call_7", "type": "function", "function": {"name": "brew_tea", "arguments": ""}}),
            call({"index": 0, "function": {"arguments": '{"kind": '}}),
            call({"index": 0, "function": {"arguments": '"oolong"}'}}),
            chunk(model, finish="tool_calls"), usage_chunk(model), b"data: [DONE]\n\n"]


def test_text_round_trips_with_persona_and_usage(proxy, fake):
    reply = proxy.openai().responses.create(model="maid", input="你好", instructions="ignored by replace",
                                            max_output_tokens=64)
    assert reply.model == "maid" and reply.output_text == "Hello!" and reply.status == "completed"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (5, 2, 7)
    sent = fake.chat_requests[0].json
    assert sent["messages"] == [{"role": "system", "content": MAID_PROMPT}, {"role": "user", "content": "你好"}]
    assert sent["max_tokens"] == 64 and sent["model"] == FT_MODEL and sent["temperature"] == 0.8
    assert fake.responses_requests == []


def test_streamed_text_is_the_documented_event_sequence(proxy, fake):
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "", role="assistant"), chunk(FT_MODEL, "Hel"), chunk(FT_MODEL, "lo"),
                               chunk(FT_MODEL, finish="stop"), usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    with proxy.openai().responses.stream(model="maid", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert final.output_text == "Hello"[:5] and final.model == "maid" and final.usage.output_tokens == 2
    assert fake.chat_requests[0].json["stream_options"] == {"include_usage": True}


def test_a_function_call_survives_both_ways(proxy, fake):
    client = proxy.openai()
    fake.enqueue(Reply(chunks=tool_call_chunks(FT_MODEL)))
    with client.responses.stream(model="maid", input="泡茶", tools=[TOOL]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    (call,) = final.output
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", "call_7", "brew_tea",
                                                                   '{"kind": "oolong"}')
    assert fake.chat_requests[0].json["tools"] == [{"type": "function", "function": {
        "name": "brew_tea", "description": "Brew a pot of tea.", "parameters": TOOL["parameters"], "strict": False}}]
    # The next turn sends the call and its output back; the chat upstream sees assistant tool_calls + a tool message.
    answer = completion(FT_MODEL, "Oolong is ready, master!")
    fake.enqueue(Reply(body=json.dumps(answer).encode()))
    reply = client.responses.create(model="maid", tools=[TOOL], input=[
        {"role": "user", "content": "泡茶"},
        {"type": "function_call", "call_id": "call_7", "name": "brew_tea", "arguments": '{"kind": "oolong"}'},
        {"type": "function_call_output", "call_id": "call_7", "output": "brewed"}])
    assert reply.output_text == "Oolong is ready, master!"
    messages = fake.chat_requests[1].json["messages"]
    assert messages[2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_7", "type": "function", "function": {"name": "brew_tea", "arguments": '{"kind": "oolong"}'}}]}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_7", "content": "brewed"}


def test_a_whole_answer_with_tool_calls_becomes_function_call_items(proxy, fake):
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": "brew_tea", "arguments": '{"kind": "green"}'}}]}
    body = completion(FT_MODEL, "")
    body["choices"][0].update(message=message, finish_reason="tool_calls")
    fake.enqueue(Reply(body=json.dumps(body).encode()))
    reply = proxy.openai().responses.create(model="maid", input="tea?", tools=[TOOL])
    assert [(i.type, i.call_id, i.arguments) for i in reply.output] == [
        ("function_call", "call_9", '{"kind": "green"}')]


def test_what_a_chat_upstream_cannot_do_is_a_clear_400(proxy, fake):
    client = proxy.openai()
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="maid", input="more", previous_response_id="resp_1")
    assert info.value.body["param"] == "previous_response_id" and "cannot continue a stored" in info.value.message
    with pytest.raises(openai.BadRequestError) as hosted:
        client.responses.create(model="maid", input="news?", tools=[{"type": "web_search"}])
    assert "web_search" in hosted.value.message
    assert fake.chat_requests == []


def test_an_error_mid_stream_is_an_error_event(proxy, fake):
    broken = b'data: {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}\n\n'
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "", role="assistant"), chunk(FT_MODEL, "Hi"), broken]))
    with proxy.http() as http:
        text = http.post("/v1/responses", json={"model": "maid", "input": "hi", "stream": True}).text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error" and events[-1]["message"] == "overloaded"
    assert not any(e["type"] == "response.completed" for e in events)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_the_offline_demo_answers_the_responses_api(tmp_path):
    config = load_config(None, environ={"PERSONA_PROXY_DATA_DIR": str(tmp_path)})
    with ServerThread(create_app(config)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        reply = client.responses.create(model="maid-demo", input="你好")
        with client.responses.stream(model="maid-demo", input="請幫我泡茶") as stream:
            final = stream.get_final_response()
    assert reply.model == "maid-demo" and "主人" in reply.output_text
    assert "主人" in final.output_text and final.usage.output_tokens > 0
