"""The server's event loop: uvloop, accepting every waiting connection at once.

libuv, under uvloop, accepts one connection per event-loop iteration (since
libuv 1.45, PR #3696: "don't accept() connections in a loop"). An idle
worker does not notice; a saturated one runs iterations of 10-15 ms, so a
burst of new connections (a client pool opening 128 at once) is taken one
per iteration. Measured here: the last of 128 connections waited 1.3 s to be
accepted while every request took 60 ms, which was the whole of the
"erratic p99" the benchmark showed at 128 connections. This listener takes
all that are waiting (up to :data:`MAX_PER_TURN`) each time the socket is
readable, as asyncio's own loop and nginx do.

uvicorn takes the loop by name (``loop="app.cli.accept:new_event_loop"``)
when one process serves. Workers sharing a socket keep libuv's way: one
greedy worker would take a whole burst and leave the others idle.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MAX_PER_TURN = 512
# Out of descriptors or memory: retry a little later instead of spinning on a readable socket.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
RETRY_SECONDS = 0.1

try:
    import uvloop
except ImportError:  # Windows: asyncio's own loop already accepts greedily
    uvloop = None  # type: ignore[assignment]


class Listener:
    """Accepts on a listening socket for ``protocol_factory``; what ``create_server`` returns, for uvicorn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.Protocol],
                 sock: socket.socket, backlog: int) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._fd = sock.fileno()
        self.sockets = (sock,)
        sock.setblocking(False)
        sock.listen(backlog)
        self._serving = True
        loop.add_reader(self._fd, self.accept_waiting)

    def accept_waiting(self) -> int:
        """Accept every connection waiting now (at most :data:`MAX_PER_TURN` tries); how many were taken."""
        taken = 0
        for _ in range(MAX_PER_TURN):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    logger.warning("cannot accept connections (%s); retrying in %g s",
                                   errno.errorcode.get(exc.errno or 0, exc.errno), RETRY_SECONDS)
                    self._loop.remove_reader(self._fd)
                    self._loop.call_later(RETRY_SECONDS, self._resume)
                    break
                # ECONNABORTED and the like: that client is gone, the next may be waiting. Counted as
                # a try, so an error that repeats (a socket closed under us) cannot spin here.
                continue
            taken += 1
            conn.setblocking(False)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            task.add_done_callback(_log_failure)
        return taken

    def _resume(self) -> None:
        if self._serving:
            self._loop.add_reader(self._fd, self.accept_waiting)

    def close(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._fd)

    def is_serving(self) -> bool:
        return self._serving

    async def wait_closed(self) -> None:
        return None


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.warning("could not set up a new connection: %s", type(exc).__name__)


if uvloop is not None:
    class GreedyLoop(uvloop.Loop):
        """uvloop, with :class:`Listener` for servers on an existing socket (how the proxy always listens)."""

        async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
            sock = kwargs.get("sock")
            if args or sock is None or kwargs.get("ssl") is not None or \
                    sock.family not in (socket.AF_INET, socket.AF_INET6):
                return await super().create_server(protocol_factory, *args, **kwargs)
            return Listener(self, protocol_factory, sock, kwargs.get("backlog", 100))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop uvicorn runs the proxy on."""
    return GreedyLoop() if uvloop is not None else asyncio.new_event_loop()
