"""Bounding one upstream exchange by phase timeouts and by the client's presence.

A single ``asyncio.Timeout`` guards the whole exchange. The handler moves its
deadline as the exchange goes (first byte, then each chunk), and a watcher
task expires it at once when the client disconnects, so a gone client
cancels the upstream request within one event-loop turn. One task and one
timer per request: the hot path pays for nothing more.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from starlette.types import Receive


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
        self.client_gone = False
        self.phase = ""
        self.seconds = 0.0

    async def __aenter__(self) -> Guard:
        await self._timeout.__aenter__()
        self._watcher = self._loop.create_task(self._watch())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if self.client_gone:
                raise ClientGone() from None
            raise PhaseTimeout(self.phase, self.seconds) from None

    def expect(self, phase: str, seconds: float) -> None:
        """The next wait is ``phase`` and may take at most ``seconds``."""
        # An expired guard is already unwinding (cleanup code may still call this).
        if not self._timeout.expired():
            self.phase, self.seconds = phase, seconds
            self._timeout.reschedule(self._loop.time() + seconds)

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.client_gone = True
        if not self._timeout.expired():
            self._timeout.reschedule(self._loop.time())
