"""Streaming end to end: events relayed as they arrive, SSE edge cases, stream endings."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from ..conftest import FT_MODEL
from ..fakes.upstream import Gate, Pause, Reply, chunk, default_stream, usage_chunk

BODY = {"model": "maid", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def data_payloads(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def test_events_reach_the_client_before_the_upstream_sends_the_next(proxy, fake):
    gates = [Gate(timeout=5), Gate(timeout=5)]
    fake.enqueue(Reply(chunks=[
        chunk(FT_MODEL, "one", role="assistant"), gates[0],
        chunk(FT_MODEL, "two"), gates[1],
        chunk(FT_MODEL, "three", finish="stop"), b"data: [DONE]\n\n",
    ]))
    seen: list[str] = []
    with proxy.http() as http, http.stream("POST", "/v1/chat/completions", json=BODY) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[len("data: "):]
            if payload == "[DONE]":
                seen.append(payload)
                break
            seen.append(json.loads(payload)["choices"][0]["delta"]["content"])
            # The upstream holds its next event until we have seen this one:
            # a buffering proxy would deadlock here until the gate times out.
            if len(seen) <= len(gates):
                gates[len(seen) - 1].open()
    assert seen == ["one", "two", "three", "[DONE]"]
    assert all(g.event.is_set() for g in gates)


def test_sdk_sync_streaming_reports_route_name(proxy, fake):
    stream = proxy.openai().chat.completions.create(
        model="maid", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    assert {c.model for c in chunks} == {"maid"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_sdk_async_streaming_with_usage_chunk(proxy, fake):
    fake.enqueue(Reply(chunks=[*default_stream(FT_MODEL)[:-1], usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    client = proxy.async_openai()
    stream = await client.chat.completions.create(
        model="maid", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    await client.close()
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 7
    assert fake.chat_requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_headers_disable_buffering(proxy, fake):
    with proxy.http() as http, http.stream("POST", "/v1/chat/completions", json=BODY) as resp:
        resp.read()
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["x-accel-buffering"] == "no"
    assert resp.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in resp.headers


def test_usage_chunk_keeps_empty_choices_byte_for_byte(proxy, fake):
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "x"), usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions",
                         json={**BODY, "stream_options": {"include_usage": True}}).text
    payloads = data_payloads(text)
    usage = json.loads(payloads[1])
    assert usage["choices"] == []
    assert usage["model"] == "maid"
    assert payloads[1] == usage_chunk(FT_MODEL).decode()[len("data: "):].strip().replace(
        json.dumps(FT_MODEL), '"maid"')


def test_crlf_split_lines_split_utf8_and_comments(proxy, fake):
    event = chunk(FT_MODEL, "女僕❤️").replace(b"\n\n", b"\r\n\r\n")
    cut = event.index("❤".encode()) + 1  # inside the heart's UTF-8 bytes
    fake.enqueue(Reply(chunks=[
        b": keep-alive\r\n\r\n",
        event[:7], Pause(0.02), event[7:cut], Pause(0.02), event[cut:-1], Pause(0.02), event[-1:],
        b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"x\",\r",
        Pause(0.02), b"\n", b"data: \"choices\":[]}\r\n\r\n",
        b"data: [DONE]\r\n\r\n",
    ]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json=BODY).text
    assert text.startswith(": keep-alive\n\n")
    payloads = data_payloads(text)
    first = json.loads(payloads[0])
    assert first["choices"][0]["delta"]["content"] == "女僕❤️"
    assert first["model"] == "maid"
    # Two data lines form one event; the relay keeps them as two lines of one event.
    assert payloads[1:3] == ['{"id":"c","object":"chat.completion.chunk","model":"maid",', '"choices":[]}']
    assert payloads[-1] == "[DONE]"
    assert "\r" not in text


def test_error_event_mid_stream_is_relayed_without_a_done(proxy, fake):
    error = b'data: {"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}}\n\n'
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "Hel"), error]))
    stream = proxy.openai().chat.completions.create(
        model="maid", messages=[{"role": "user", "content": "hi"}], stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        list(stream)
    with proxy.http() as http:
        fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "Hel"), error]))
        text = http.post("/v1/chat/completions", json=BODY).text
    assert "[DONE]" not in text
    assert data_payloads(text)[-1] == error.decode()[len("data: "):].strip()


def test_upstream_that_dies_mid_stream_ends_with_error_event_not_done(proxy, fake):
    # A generator that raises makes the fake drop the connection mid-body.
    fake.enqueue(Reply(chunks=_ExplodingChunks([chunk(FT_MODEL, "Hel")])))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json=BODY).text
    payloads = data_payloads(text)
    assert json.loads(payloads[0])["choices"][0]["delta"]["content"] == "Hel"
    assert json.loads(payloads[-1])["error"]["code"] == "upstream_stream_error"
    assert "[DONE]" not in text


def test_garbage_event_becomes_an_error_event_without_echo(proxy, fake):
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "a"), b"data: <html>secret page</html>\n\n", b"data: [DONE]\n\n"]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json=BODY).text
    assert "secret page" not in text
    assert json.loads(data_payloads(text)[-1])["error"]["code"] == "upstream_invalid_response"
    assert "[DONE]" not in text


def test_nothing_after_done_is_relayed(proxy, fake):
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "a"), b"data: [DONE]\n\n", chunk(FT_MODEL, "late")]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json=BODY).text
    assert data_payloads(text)[-1] == "[DONE]"
    assert "late" not in text


def test_error_status_before_the_stream_is_a_plain_http_error(proxy, fake):
    from ..fakes.upstream import error_reply

    fake.enqueue(error_reply(400, "messages too long", code="context_length_exceeded"))
    with pytest.raises(openai.BadRequestError) as info:
        proxy.openai().chat.completions.create(
            model="maid", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert info.value.code == "context_length_exceeded"


def test_json_answer_to_a_stream_request_is_relayed_as_json(proxy, fake):
    from ..fakes.upstream import completion

    fake.enqueue(Reply(body=json.dumps(completion(FT_MODEL)).encode()))
    with proxy.http() as http:
        resp = http.post("/v1/chat/completions", json=BODY)
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["model"] == "maid"


class _ExplodingChunks(list):
    """Chunks whose iteration raises after the listed items, to cut the connection."""

    def __iter__(self):
        yield from super().__iter__()
        yield Pause(0.05)
        raise httpx.RemoteProtocolError("fake upstream drops the connection")


def test_usage_the_client_did_not_ask_for_is_requested_and_kept_from_it(proxy, fake):
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "x"), usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    with proxy.http() as http:
        text = http.post("/v1/chat/completions", json={**BODY, "stream_options": {"other": 1}}).text
    assert fake.chat_requests[0].json["stream_options"] == {"other": 1, "include_usage": True}
    assert "usage" not in text and data_payloads(text)[-1] == "[DONE]"
    assert len(data_payloads(text)) == 2
