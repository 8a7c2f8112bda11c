"""Real servers on loopback for tests: uvicorn in a thread, bound to port 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuickServer(uvicorn.Server):
    """uvicorn's server, stopping in milliseconds instead of 0.2-0.3 s.

    Tests start and stop hundreds of servers, and uvicorn spends most of a
    stop in fixed 0.1 s sleeps: polling for the exit flag, then once more
    before and while it waits for connections. This does the same steps in
    the same order (stop listening, shut connections, wait for them and for
    tasks within the graceful timeout, run the app's lifespan shutdown),
    polling every 5 ms. Graceful shutdown itself is tested against the real
    command (``persona-proxy serve`` in a subprocess), not this.
    """

    async def main_loop(self) -> None:
        ticks = 0
        while not await self.on_tick(ticks // 20):  # on_tick wants a 0.1 s counter
            ticks += 1
            await asyncio.sleep(0.005)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1:<free port> until closed."""

    def __init__(self, app: ASGIApp, **options: object) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, **options)
        self.server = _QuickServer(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serve_process(args: list[str], *, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``persona-proxy serve ARGS`` as a real process on a free port; yields it and its base URL.

    On exit it is sent SIGTERM and its output is kept in ``proc.output``.
    """
    port = free_port()
    environ = dict(os.environ if env is None else env)
    environ.pop("OPENAI_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), *args], env=environ,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
                raise AssertionError(f"serve did not come up:\n{output}")
            time.sleep(0.05)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.output = proc.communicate(timeout=20)[0]  # type: ignore[attr-defined]


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port that never completes a connection: a listener with its queue full drops SYNs."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fillers = []
    for _ in range(4):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        fillers.append(sock)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for sock in [*fillers, hole]:
            sock.close()
