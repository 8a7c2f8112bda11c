"""The SSE decoder and encoder, fed byte streams split at awkward places."""

from __future__ import annotations

import pytest

from app.proxy.sse import SSEComment, SSEDecoder, SSEEvent, encode_comment, encode_event

STREAM = (
    b": keep-alive\r\n"
    b"\r\n"
    b"event: message\r\n"
    b"id: 7\r\n"
    b"data: {\"content\": \"\xe5\xa5\xb3\xe5\x83\x95\xe2\x9d\xa4\xef\xb8\x8f\"}\r\n"
    b"\r\n"
    b"data:no-space\n"
    b"data:  two spaces\n"
    b"\n"
    b"retry: 100\r"
    b"data: [DONE]\r"
    b"\r"
)
EXPECTED = [
    SSEComment(b" keep-alive"),
    SSEEvent(b'{"content": "\xe5\xa5\xb3\xe5\x83\x95\xe2\x9d\xa4\xef\xb8\x8f"}', event=b"message", id=b"7"),
    SSEEvent(b"no-space\n two spaces"),
    SSEEvent(b"[DONE]", retry=b"100"),
]


def decode(chunks: list[bytes]) -> list[SSEEvent | SSEComment]:
    decoder = SSEDecoder()
    items: list[SSEEvent | SSEComment] = []
    for piece in chunks:
        items.extend(decoder.feed(piece))
    return items


def test_whole_stream():
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_in_two_anywhere(cut):
    # Includes cuts inside CRLF pairs and inside multi-byte UTF-8 characters.
    assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time():
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_empty_chunks_change_nothing():
    assert decode([b"", b"data: a\r", b"", b"\n", b"", b"\n"]) == [SSEEvent(b"a")]


def test_cr_then_lf_in_next_chunk_is_one_line_end():
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent(b"a\nb")]


def test_event_without_data_is_not_dispatched():
    assert decode([b"event: ping\n\nid: 3\n\ndata: x\n\n"]) == [SSEEvent(b"x")]


def test_incomplete_event_at_end_is_held():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: partial") == []
    assert decoder.feed(b" more\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(b"partial more")]


def test_unknown_fields_and_bad_values_are_ignored():
    assert decode([b"foo: bar\nretry: soon\nid: a\0b\ndata: x\n\n"]) == [SSEEvent(b"x")]


def test_field_without_colon_is_a_name_with_empty_value():
    assert decode([b"data\ndata\n\n"]) == [SSEEvent(b"\n")]


def test_encode_round_trips():
    for event in EXPECTED:
        if isinstance(event, SSEEvent):
            assert decode([encode_event(event)]) == [event]
    assert encode_event(SSEEvent(b"a\nb")) == b"data: a\ndata: b\n\n"
    assert encode_comment(SSEComment(b" ping")) == b": ping\n\n"
    assert decode([encode_comment(SSEComment(b" ping"))]) == [SSEComment(b" ping")]


def reference_decode(stream: bytes) -> list[SSEEvent | SSEComment]:
    """A deliberately naive decoder straight from the spec, to compare against."""
    out: list[SSEEvent | SSEComment] = []
    data: list[bytes] = []
    fields: dict[str, bytes | None] = {"event": None, "id": None, "retry": None}
    lines = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")[:-1]
    for line in lines:
        if not line:
            if data:
                out.append(SSEEvent(b"\n".join(data), fields["event"], fields["id"], fields["retry"]))
            data, fields = [], {"event": None, "id": None, "retry": None}
        elif line.startswith(b":"):
            out.append(SSEComment(line[1:]))
        else:
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"data":
                data.append(value)
            elif name == b"event":
                fields["event"] = value
            elif name == b"id" and b"\0" not in value:
                fields["id"] = value
            elif name == b"retry" and value.isdigit():
                fields["retry"] = value
    return out


def test_random_streams_match_the_reference_however_they_are_split():
    import random

    rng = random.Random(20261125)
    pieces = [b"data: {\"a\": 1}", b"data:x", b"data: ", b": ping", b"event: e", b"id: 9", b"retry: 5",
              b"data: \xe5\xa5\xb3", b"junk", b"data"]
    endings = [b"\n", b"\r\n", b"\r"]
    for _ in range(300):
        stream = b"".join(
            rng.choice(pieces) + rng.choice(endings) + (rng.choice(endings) if rng.random() < 0.4 else b"")
            for _ in range(rng.randint(1, 12))
        ) + b"\n\n"
        expected = reference_decode(stream)
        assert decode([stream]) == expected, stream
        cuts = sorted(rng.sample(range(1, len(stream)), min(3, len(stream) - 1)))
        parts = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert decode(parts) == expected, (stream, cuts)
