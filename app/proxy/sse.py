"""Server-sent events: an incremental decoder and an encoder, on raw bytes.

The decoder follows the SSE spec (lines end in LF, CRLF or CR; one optional
space after the colon; ``:`` starts a comment; ``data`` lines join with LF;
an event ends at a blank line) and accepts network chunks split anywhere,
including inside a CRLF pair or a multi-byte UTF-8 character. It works on
bytes, never decoding text: CR and LF bytes cannot occur inside a UTF-8
sequence, so splitting on them is safe and the payload stays byte-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event; ``data`` holds the joined ``data:`` lines."""

    data: bytes
    event: bytes | None = None
    id: bytes | None = None
    retry: bytes | None = None


@dataclass(slots=True)
class SSEComment:
    """A comment line (``: keep-alive``), kept so keep-alives reach the client."""

    text: bytes


@dataclass(slots=True)
class SSEDecoder:
    """Feed it network chunks; it returns the events and comments they complete."""

    _buffer: bytes = b""
    _skip_lf: bool = False
    _data: list[bytes] = field(default_factory=list)
    _event: bytes | None = None
    _id: bytes | None = None
    _retry: bytes | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent | SSEComment]:
        if self._skip_lf and chunk:
            # NOTE: the previous chunk ended in CR; an LF here completes that CRLF.
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._skip_lf = False
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._buffer += chunk
            return []
        buffer = self._buffer + chunk
        items: list[SSEEvent | SSEComment] = []
        if not self._pending():
            buffer = self._whole_events(buffer, items)
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            item = self._line(line)
            if item is not None:
                items.append(item)
        return items

    @property
    def idle(self) -> bool:
        """Between events: nothing buffered, nothing half-parsed."""
        return not self._buffer and not self._skip_lf and not self._pending()

    def _pending(self) -> bool:
        return bool(self._data) or self._event is not None or self._id is not None or self._retry is not None

    def _whole_events(self, buffer: bytes, items: list[SSEEvent | SSEComment]) -> bytes:
        """Take complete events off the front of ``buffer``; return what is left.

        The common event, one ``data: `` line, is cut out directly; any other
        event goes through the line parser. Both give the same result.
        """
        pos = 0
        while (end := buffer.find(b"\n\n", pos)) >= 0:
            if buffer.startswith(b"data: ", pos) and buffer.find(b"\n", pos, end) < 0:
                items.append(SSEEvent(buffer[pos + 6 : end]))
            else:
                for line in buffer[pos:end].split(b"\n"):
                    item = self._line(line)
                    if item is not None:
                        items.append(item)
                dispatched = self._dispatch()
                if dispatched is not None:
                    items.append(dispatched)
            pos = end + 2
        return buffer[pos:]

    def _line(self, line: bytes) -> SSEEvent | SSEComment | None:
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return SSEComment(line[1:])
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            # NOTE: as per the SSE spec, an id containing NUL is ignored.
            if b"\0" not in value:
                self._id = value
        elif name == b"retry" and value.isdigit():
            self._retry = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            # The spec drops an event with no data; its other fields reset too.
            self._event = self._id = self._retry = None
            return None
        event = SSEEvent(b"\n".join(self._data), self._event, self._id, self._retry)
        self._data = []
        # NOTE: a relay re-emits only the id lines it saw; the client's own
        # decoder keeps the last event id as the spec asks.
        self._event = self._id = self._retry = None
        return event


def encode_event(event: SSEEvent) -> bytes:
    """Serialize an event in the canonical ``field: value`` LF form."""
    if event.event is None and event.id is None and event.retry is None and b"\n" not in event.data:
        return b"data: " + event.data + b"\n\n"
    parts: list[bytes] = []
    if event.event is not None:
        parts.append(b"event: " + event.event + b"\n")
    if event.id is not None:
        parts.append(b"id: " + event.id + b"\n")
    if event.retry is not None:
        parts.append(b"retry: " + event.retry + b"\n")
    if b"\n" in event.data:
        parts.extend(b"data: " + line + b"\n" for line in event.data.split(b"\n"))
    else:
        parts.append(b"data: " + event.data + b"\n")
    parts.append(b"\n")
    return b"".join(parts)


def encode_comment(comment: SSEComment) -> bytes:
    return b":" + comment.text + b"\n\n"
