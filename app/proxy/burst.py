"""Relaying a burst of plain chat-stream events in one pass over the bytes.

An upstream stream, once its first event is known, repeats one shape:
``data: {"id":...,"model":"<upstream id>"...}`` followed by a blank line,
each event starting with the same bytes up to the end of its ``model``
value. When a network chunk holds only such events, the model can be
swapped for the route name with a single ``bytes.replace`` instead of
decoding, rewriting and encoding every event; that is most of what a
stream costs the proxy. Whatever does not fit the shape (comments,
``event:``/``id:`` lines, CR line ends, an error, a usage figure, the key
echoed back) returns None and takes the event-by-event path, which is the
reference: for every burst it accepts, this gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE_EVENT = b"data: [DONE]\n\n"
_END_BEFORE_DONE = b"}\n\n" + DONE_EVENT
_USAGE = b'"usage"'
# OpenAI puts "usage": null last in every chunk of a stream that asked for usage.
_NULL_USAGE_END = b',"usage":null}\n\n'


@dataclass(frozen=True, slots=True)
class Burst:
    """What a burst became: the client's bytes, how many events it held, whether it ended in [DONE]."""

    data: bytes
    events: int
    done: bool


def relay_burst(whole: bytes, old: bytes, new: bytes, *, strip_null_usage: bool,
                secret: bytes | None) -> Burst | None:
    """``whole`` (complete events only, ending in a blank line) with each event's prefix ``old`` made ``new``.

    ``old`` is a proven event prefix (see :class:`~app.proxy.rewrite.ModelRewriter`)
    ending just after the upstream's ``model`` value. None: not a plain burst.

    Every scan of the burst costs about as much as the rest of the relay, so the
    shape is proven with as few as possible: the first event starts with the
    prefix, every event boundary is ``}`` + blank line + the prefix, the burst
    ends with ``}`` (and maybe ``[DONE]``), and those account for every LF in
    it, so each event is one data line starting with the prefix and closing
    its object.
    """
    head, boundary = b"data: " + old, b"}\n\ndata: " + old
    done = whole.endswith(DONE_EVENT)
    plain = whole.count(boundary) + 1
    if (
        not whole.startswith(head)
        or not whole.endswith(_END_BEFORE_DONE if done else b"}\n\n")
        or whole.count(b"\n") != 2 * (plain + done)
        or b"\r" in whole
        or old.startswith(b'{"error"')
        or (secret and secret in whole)
    ):
        return None
    if _USAGE in whole:
        kept = _null_usage_only(whole, strip_null_usage)
        if kept is None:
            return None
        whole = kept
    data = b"data: " + new + whole[len(head):].replace(boundary, b"}\n\ndata: " + new)
    return Burst(data, plain + done, done)


def _null_usage_only(whole: bytes, strip: bool) -> bytes | None:
    """The burst with OpenAI's ``"usage":null`` placeholders (stripped if asked); None if any usage is real."""
    if whole.count(_USAGE) != whole.count(_NULL_USAGE_END):
        return None  # a real figure goes event by event, to be noted
    if not strip:
        return whole
    if b'"choices":[]' in whole:
        return None  # such an event is left out, not just stripped
    return whole.replace(_NULL_USAGE_END, b"}\n\n")
