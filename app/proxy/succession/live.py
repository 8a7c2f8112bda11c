"""Live fidelity: every sampled reply measured against the route's training data, off the request path.

A finished request hands over the bytes its client received (a stream's
chunks as they were relayed, unparsed) and nothing more. Once in a while
the measurer turns them into text, scores it with the pure measures of
:mod:`app.tuning.fidelity`, and gives the rows to the recorder, which counts
them in the metrics and writes them beside the usage rows. The queue is
bounded: a reply that finds it full is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ...ops.fidelity import MARKER_SEPARATOR, FidelityRecord
from ...ops.metrics import Metrics
from ...ops.recorder import Periodic
from ...tuning.fidelity import Profile, chrf, measure_reply
from .replies import text_of

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 2_000
MEASURE_SECONDS = 1.0
# Replies measured between two yields to the event loop, so a large batch never holds up requests.
SLICE = 32


@dataclass(slots=True, eq=False)
class Reply:
    """One whole reply waiting to be measured: where it came from and the bytes that carry it."""

    time: float
    route: str
    target: str  # MODEL@UPSTREAM
    role: str
    api: str  # chat | responses: the shape the bytes are in
    stream: bool
    conversation: str | None
    request_id: str | None
    raw: bytes
    profile: Profile
    served: Reply | None = None  # for a shadow: the reply the client got for the same request
    _text: str | None = None
    _read: bool = False

    def text(self) -> str | None:
        """The reply's text, extracted once (a served reply may be read again by its shadow)."""
        if not self._read:
            self._text, self._read = text_of(self.raw, self.api, self.stream), True
            self.raw = b""
        return self._text


class LiveFidelity:
    """The bounded queue of replies to measure and the task that measures them."""

    def __init__(self, submit: Callable[[list[FidelityRecord]], None], metrics: Metrics,
                 keep_replies: bool = False) -> None:
        self.submit = submit
        self.metrics = metrics
        self.keep_replies = keep_replies
        self.dropped = 0
        self._pending: list[Reply] = []
        self._turns = Periodic(self.measure_pending, lambda: MEASURE_SECONDS)

    def add(self, reply: Reply) -> None:
        if len(self._pending) >= QUEUE_LIMIT:
            self.dropped += 1
            self.metrics.fidelity_dropped.labels(reply.route).inc()
            return
        self._pending.append(reply)

    def start(self) -> None:
        self._turns.start()

    async def close(self) -> None:
        """Measure what is queued, then stop."""
        await self._turns.stop()

    async def measure_pending(self) -> None:
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), SLICE):
            records = [r for r in map(self._record, batch[start:start + SLICE]) if r is not None]
            if records:
                self.submit(records)
            await asyncio.sleep(0)

    def _record(self, reply: Reply) -> FidelityRecord | None:
        try:
            return self.record(reply)
        except Exception as exc:  # one odd reply must never stop the measuring of the others
            logger.warning("live fidelity: a reply of %s could not be measured (%s)", reply.target,
                           type(exc).__name__)
            return None

    def record(self, reply: Reply) -> FidelityRecord | None:
        """The row for one reply; None when it has no text to measure (a tool call, an empty answer)."""
        text = reply.text()
        if text is None:
            return None
        found = measure_reply(text, reply.profile)
        paired: tuple[float | None, bool | None, bool | None] = (None, None, None)
        served_text = reply.served.text() if reply.served is not None else None
        if served_text is not None:
            served = measure_reply(served_text, reply.profile)
            paired = (round(chrf(text, served_text), 4), found.script == served.script, served.breaks)
        return FidelityRecord(reply.time, reply.route, reply.target, reply.role, reply.api, reply.conversation,
                              reply.request_id, found.script, found.in_script, MARKER_SEPARATOR.join(found.markers),
                              found.breaks, found.length, *paired, text if self.keep_replies else None)
