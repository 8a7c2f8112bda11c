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
    """
    events = whole.count(b"\n\n")
    done = whole.endswith(DONE_EVENT)
    plain = events - done
    # One line per event, every line a data line starting with the proven prefix and ending its object.
    if (
        not plain
        or whole.count(b"\n") != 2 * events
        or b"\r" in whole
        or (b"\n" + whole).count(b"\ndata: " + old) != plain
        or whole.count(b"data: " + old) != plain
        or whole.count(b"}\n\n") != plain
        or (done and whole.count(b"[DONE]") != 1)
        or (secret and secret in whole)
    ):
        return None
    usage = whole.count(_USAGE)
    if usage:
        # Only the null placeholder, as the last key: a real figure goes event by event to be noted.
        if whole.count(_NULL_USAGE_END) != usage:
            return None
        if strip_null_usage:
            if b'"choices":[]' in whole:
                return None  # such an event is left out, not just stripped
            whole = whole.replace(_NULL_USAGE_END, b"}\n\n")
    return Burst(whole.replace(b"data: " + old, b"data: " + new), events, done)
