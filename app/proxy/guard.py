"""Bounding one upstream exchange by phase timeouts and by the client's presence.

A single ``asyncio.Timeout`` does the cancelling for the whole exchange. The
relay moves a deadline as the exchange goes (first byte, then each chunk);
moving it is a float assignment, and a lazy timer re-arms itself only when
it fires early, so a long stream costs no timer churn per chunk. A watcher
task expires the guard at once when the client disconnects, cancelling the
upstream request within one event-loop turn. The watcher starts only once
the exchange has lasted :data:`WATCH_AFTER`: an answer faster than that
has nothing worth cancelling, and a task per request is a tenth of what a
fast exchange costs (measured in ``bench/``); a client that hangs up
earlier is noticed when the watcher starts.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from starlette.types import Receive

WATCH_AFTER = 0.1  # seconds before the client's presence is watched


class ClientGone(Exception):
    """The client disconnected; nobody is left to answer."""


class PhaseTimeout(Exception):
    """The phase named in ``phase`` took longer than allowed."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(phase)
        self.phase = phase
        self.seconds = seconds


class Guard:
    """``async with Guard(receive) as guard:``; call :meth:`expect` before each wait."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        self._watcher: asyncio.Task[None] | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self.deadline = 0.0
        self.client_gone = False
        self.phase = ""
        self.seconds = 0.0

    async def __aenter__(self) -> Guard:
        await self._timeout.__aenter__()
        self._watch_timer = self._loop.call_later(WATCH_AFTER, self._start_watching)
        return self

    def _start_watching(self) -> None:
        self._watch_timer = None
        self._watcher = self._loop.create_task(self._watch())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watch_timer is not None:
            self._watch_timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._timer is not None:
            self._timer.cancel()
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if self.client_gone:
                raise ClientGone() from None
            raise PhaseTimeout(self.phase, self.seconds) from None

    def expect(self, phase: str, seconds: float) -> None:
        """The next wait is ``phase`` and may take at most ``seconds``."""
        self.phase, self.seconds = phase, seconds
        self.deadline = self._loop.time() + seconds
        if self._timer is None or self.deadline < self._armed_at:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = self.deadline
        self._timer = self._loop.call_at(self.deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._loop.time() < self.deadline:
            self._arm()  # the deadline moved on since this timer was set
        else:
            self._expire()

    def _expire(self) -> None:
        # An expired guard is already unwinding; expiring twice is an error in asyncio.
        if not self._timeout.expired():
            self._timeout.reschedule(self._loop.time())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.client_gone = True
        self._expire()
