"""A reply's text and usage from the bytes a client got, in both APIs, whole and streamed."""

from __future__ import annotations

import json

from app.proxy.succession.replies import reply_of

from ...fakes.upstream import completion, default_stream, response_events, response_obj, usage_chunk


def joined(chunks) -> bytes:
    return b"".join(c for c in chunks if isinstance(c, bytes))


def test_chat_whole_and_streamed():
    assert reply_of(json.dumps(completion("m", "主人好")).encode(), "chat", False) == (
        "主人好", {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    stream = default_stream("m", ("主", "人", "好"))
    stream.insert(-1, usage_chunk("m"))
    text, usage = reply_of(joined(stream), "chat", True)
    assert text == "主人好" and usage["completion_tokens"] == 2


def test_responses_whole_and_streamed():
    assert reply_of(json.dumps(response_obj("m", "早安")).encode(), "responses", False)[0] == "早安"
    text, usage = reply_of(joined(response_events("m", ("早", "安"))), "responses", True)
    assert text == "早安" and usage["output_tokens"] == 3


def test_a_stream_split_anywhere_and_odd_bytes_give_no_text_rather_than_an_error():
    raw = joined(default_stream("m", ("a", "b")))
    assert reply_of(raw.replace(b"\n\n", b"\r\n\r\n"), "chat", True)[0] == "ab"
    assert reply_of(b"<html>", "chat", False) == (None, None)
    assert reply_of(b"data: not json\n\n", "chat", True) == (None, None)
    tool_call = {"choices": [{"message": {"content": None, "tool_calls": [{"id": "x"}]}}]}
    assert reply_of(json.dumps(tool_call).encode(), "chat", False)[0] is None


def test_the_quick_text_of_a_chat_stream_is_the_careful_one():
    from app.proxy.succession.replies import text_of

    tricky = ("主人", 'say "hi"\\n', "\\u2764 ❤", "end\\\\")
    for words in (("主", "人", "好"), tricky, ("",)):
        raw = joined(default_stream("m", words))
        assert text_of(raw, "chat", True) == reply_of(raw, "chat", True)[0]
    two = json.dumps({"choices": [{"index": 1, "delta": {"content": "other"}}]}).encode()
    raw = joined(default_stream("m", ("a",))) .replace(b"data: [DONE]", b"data: " + two + b"\n\ndata: [DONE]")
    assert text_of(raw, "chat", True) == "a"  # the second choice is not the reply
    assert text_of(joined(response_events("m", ("早", "安"))), "responses", True) == "早安"
