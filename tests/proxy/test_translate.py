"""The pure Responses <-> chat translation, request by request and event by event."""

from __future__ import annotations

import pytest

from app.proxy.errors import InvalidRequest
from app.proxy.responses import apply_persona, defaults
from app.proxy.translate import chat_to_response, responses_to_chat
from app.proxy.translate_stream import ChatToResponses

PERSONA = "You are the maid."


def test_request_parts_formats_and_choices_map_to_chat():
    chat = responses_to_chat({
        "model": "m", "instructions": "sys", "max_output_tokens": 9, "temperature": 0.2, "store": True,
        "text": {"format": {"type": "json_schema", "name": "tea", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "low"}, "tool_choice": {"type": "function", "name": "brew"},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,xx"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]})
    assert chat["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,xx",
                                                                         "detail": "auto"}}]},
        {"role": "assistant", "content": "ok"}]
    assert chat["max_tokens"] == 9 and chat["temperature"] == 0.2 and "store" not in chat
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "tea", "schema": {"type": "object"}, "strict": True}}
    assert chat["reasoning_effort"] == "low"
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "brew"}}


def test_requests_a_chat_server_cannot_serve_are_refused():
    with pytest.raises(InvalidRequest):
        responses_to_chat({"model": "m", "input": [{"type": "web_search_call", "id": "ws_1"}]})


def test_a_whole_answer_cut_by_the_token_limit_is_incomplete():
    chat = {"id": "c", "created": 1700000000, "model": "up", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hel"}, "finish_reason": "length"}]}
    response = chat_to_response(chat, {"model": "up", "max_output_tokens": 4}, "maid")
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert response["model"] == "maid" and response["output"][0]["content"][0]["text"] == "Hel"
    assert response["usage"]["total_tokens"] == 7 and response["created_at"] == 1700000000


def test_a_stream_with_text_then_a_call_has_consecutive_items_and_one_id():
    t = ChatToResponses({"model": "up"}, "maid")
    events = t.feed({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]})
    events += t.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "brew", "arguments": "{}"}}]}}]})
    events += t.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    events += t.finish()
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.incomplete"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [(0, "message"), (1, "function_call")]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert {e["response"]["id"] for e in events if "response" in e} == {t.response_id}
    assert all(e["response"]["model"] == "maid" for e in events if "response" in e)


def test_a_stream_with_nothing_in_it_still_completes_properly():
    t = ChatToResponses({"model": "up"}, "maid")
    events = t.finish()
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.completed"]
    assert events[-1]["response"]["output"] == []


@pytest.mark.parametrize(("mode", "body", "instructions", "roles"), [
    ("replace", {"instructions": "theirs", "input": [{"role": "system", "content": "s"},
                                                     {"role": "user", "content": "u"}]}, PERSONA, ["user"]),
    ("prepend", {"instructions": "theirs", "input": [{"role": "developer", "content": "d"},
                                                     {"role": "user", "content": "u"}]},
     f"{PERSONA}\n\ntheirs", ["developer", "user"]),
    ("if_absent", {"input": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
     None, ["system", "user"]),
    ("if_absent", {"input": [{"role": "user", "content": "u"}]}, PERSONA, ["user"]),
])
def test_persona_placement_by_mode(mode, body, instructions, roles):
    out = apply_persona({"model": "m", **body}, PERSONA, mode)
    assert out.get("instructions") == instructions
    assert [i["role"] for i in out["input"]] == roles


def test_few_shot_exchanges_go_before_the_clients_input_and_a_string_input_becomes_an_item():
    shots = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    out = apply_persona({"model": "m", "input": "hi"}, PERSONA, "replace", shots)
    assert out["input"] == [*shots, {"role": "user", "content": "hi"}]
    assert apply_persona({"model": "m", "input": "hi"}, PERSONA, "prepend")["input"] == "hi"  # untouched


def test_route_defaults_take_responses_names():
    assert defaults({"max_tokens": 100, "temperature": 0.7, "stop": ["x"], "seed": 1}) == {
        "max_output_tokens": 100, "temperature": 0.7}
