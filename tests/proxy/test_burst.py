"""The one-pass burst path gives the client exactly what the event-by-event path gives."""

from __future__ import annotations

import random

import orjson
import pytest

from app.proxy import relay as relay_module
from app.proxy.burst import relay_burst
from app.proxy.relay import StreamRelay
from app.proxy.sse import SSEDecoder

MODEL = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
SECRET = b"sk-upstream-secret-123"


def chunk_event(i: int, *, usage: object = "absent", content: str = "主人", choices: bool = True) -> bytes:
    event: dict[str, object] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    event["choices"] = [{"index": 0, "delta": {"content": f"{content}{i}"}, "finish_reason": None}] if choices else []
    if usage != "absent":
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


PLAIN_EVENTS = [chunk_event(i) for i in range(30)]
PLAIN = b"".join(PLAIN_EVENTS) + b"data: [DONE]\n\n"


def with_event(position: int, event: bytes) -> bytes:
    return b"".join(PLAIN_EVENTS[:position]) + event + b"".join(PLAIN_EVENTS[position:]) + b"data: [DONE]\n\n"

NULL_USAGE = (b"".join(chunk_event(i, usage=None) for i in range(20))
              + chunk_event(0, usage={"prompt_tokens": 3, "completion_tokens": 20}, choices=False)
              + b"data: [DONE]\n\n")
STREAMS = {
    "plain": PLAIN,
    "null usage, then the usage chunk": NULL_USAGE,
    "keep-alive comments": with_event(5, b": keep-alive\n\n"),
    "CRLF line ends": PLAIN.replace(b"\n", b"\r\n"),
    "event and id lines": b"".join(b"id: %d\n" % i + chunk_event(i) for i in range(10)) + b"data: [DONE]\n\n",
    "an error event midway": with_event(8, b'data: {"error":{"message":"overloaded"}}\n\n'),
    "the key echoed back": chunk_event(0) + chunk_event(1, content=SECRET.decode()) + PLAIN,
    "bytes after [DONE]": PLAIN + chunk_event(99),
    "blank lines between events": with_event(3, b"\n\n"),
    "a two-line data event": with_event(3, chunk_event(3)[:40] + b"\ndata: " + chunk_event(3)[40:]),
    "a truncated event": with_event(4, chunk_event(3)[:-12] + b"\n\n"),
    "a non-JSON event": chunk_event(0) + chunk_event(1) + b"data: oops\n\n" + PLAIN,
    "a model change midway": with_event(6, chunk_event(5).replace(MODEL.encode(), b"gpt-4o")),
}


def run(stream: bytes, cuts: list[int], *, bursts: bool, strip_usage: bool) -> tuple[bytes, StreamRelay]:
    relay = StreamRelay(None, model=b'"maid"', idle_timeout=1.0, secret=SECRET,  # type: ignore[arg-type]
                        strip_usage=strip_usage)
    relay.bursts = bursts
    decoder = SSEDecoder()
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if relay.done or relay.failure is not None:
            break
        out.append(relay._relay_chunk(decoder, stream[start:end]))
    return b"".join(out), relay


def random_cuts(stream: bytes, rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(1, len(stream)), rng.randint(0, 6)))


def events(data: bytes) -> list[object]:
    def parsed(item: object) -> object:
        try:
            return orjson.loads(item.data)  # type: ignore[union-attr]
        except (AttributeError, orjson.JSONDecodeError):
            return item
    return [parsed(item) for item in SSEDecoder().feed(data)]


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("strip_usage", [False, True])
def test_bursts_give_what_event_by_event_gives(name: str, strip_usage: bool) -> None:
    stream = STREAMS[name]
    rng = random.Random(name)
    for cuts in [[], *(random_cuts(stream, rng) for _ in range(40))]:
        fast, fast_relay = run(stream, cuts, bursts=True, strip_usage=strip_usage)
        slow, slow_relay = run(stream, cuts, bursts=False, strip_usage=strip_usage)
        if strip_usage:
            # The careful path re-serializes an event it strips usage from; the JSON is the same.
            assert events(fast) == events(slow), cuts
        else:
            assert fast == slow, cuts
        assert (fast_relay.events, fast_relay.done, fast_relay.usage) == \
            (slow_relay.events, slow_relay.done, slow_relay.usage), cuts
        assert (fast_relay.failure is None) == (slow_relay.failure is None), cuts
        assert SECRET not in fast
        assert MODEL.encode() not in fast or name == "a model change midway"


def test_a_plain_stream_takes_the_burst_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        burst = relay_burst(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(burst.events if burst else 0)
        return burst

    monkeypatch.setattr(relay_module, "relay_burst", counting)
    out, relay = run(PLAIN, [], bursts=True, strip_usage=False)
    assert taken == [30]  # the first event teaches the prefix, the other 29 and [DONE] go at once
    assert relay.done and relay.events == 31
    assert out.count(b'"model":"maid"') == 30


def test_null_usage_is_stripped_when_the_client_did_not_ask() -> None:
    out, relay = run(NULL_USAGE, [], bursts=True, strip_usage=True)
    assert b'"usage"' not in out
    assert relay.usage == {"prompt_tokens": 3, "completion_tokens": 20}
    out, _ = run(NULL_USAGE, [], bursts=True, strip_usage=False)
    assert out.count(b'"usage":null') == 20


def test_a_burst_that_does_not_fit_the_shape_is_refused() -> None:
    old, new = b'{"id":"c","model":"m"', b'{"id":"c","model":"maid"'
    good = b'data: {"id":"c","model":"m","x":1}\n\n'
    assert relay_burst(good * 3, old, new, strip_null_usage=False, secret=None) is not None
    for bad in (good + b": ping\n\n", good + b"event: x\n" + good, good + b'data: {"id":"d","model":"m"}\n\n',
                good + b'data: {"id":"c","model":"m","usage":{"prompt_tokens":1}}\n\n', good + b"data: [DONE]\n\n" * 2):
        assert relay_burst(bad, old, new, strip_null_usage=False, secret=None) is None, bad
