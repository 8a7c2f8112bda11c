"""The server loop takes every waiting connection at once (libuv takes one per loop turn)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from app.cli import accept
from app.cli.accept import Listener, new_event_loop

pytest.importorskip("uvloop")
WAITING = 40


class Counting(asyncio.Protocol):
    made: ClassVar[list[int]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(1)
        transport.write(b"hello")


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def serving() -> Iterator[tuple[Any, socket.socket, asyncio.AbstractEventLoop]]:
    """A server made by the proxy's loop on a bound socket (nobody connected yet), its socket and loop."""
    sock = listening()
    loop = new_event_loop()
    try:
        Counting.made = []
        yield loop.run_until_complete(loop.create_server(Counting, sock=sock, backlog=128)), sock, loop
    finally:
        loop.close()
        sock.close()


def connect_waiting(port: int) -> list[socket.socket]:
    # The kernel completes these handshakes; they wait in the backlog until accepted.
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(WAITING)]


def test_a_burst_of_waiting_connections_is_taken_in_one_turn(serving) -> None:
    server, sock, loop = serving
    assert isinstance(server, Listener)
    clients = connect_waiting(sock.getsockname()[1])
    assert server.accept_waiting() == WAITING  # one readiness callback takes them all
    loop.run_until_complete(asyncio.sleep(0.02))
    assert len(Counting.made) == WAITING
    assert all(c.recv(5) == b"hello" for c in clients)  # each one is served
    server.close()
    assert not server.is_serving()
    for client in clients:
        client.close()


def test_out_of_descriptors_backs_off_instead_of_spinning(serving, monkeypatch: pytest.MonkeyPatch) -> None:
    server, sock, loop = serving
    clients = connect_waiting(sock.getsockname()[1])

    class Exhausted(socket.socket):
        def accept(self) -> tuple[socket.socket, object]:
            raise OSError(24, "Too many open files")

    monkeypatch.setattr(server, "_sock", Exhausted(fileno=socket.dup(sock.fileno())))
    monkeypatch.setattr(accept, "RETRY_SECONDS", 0.01)
    assert server.accept_waiting() == 0  # no busy loop: the reader is removed, retried later
    monkeypatch.undo()
    loop.run_until_complete(asyncio.sleep(0.05))
    assert len(Counting.made) == WAITING  # and once descriptors are back, everyone is served
    server.close()
    for client in clients:
        client.close()


def test_an_error_that_repeats_ends_the_turn_instead_of_spinning(serving, monkeypatch: pytest.MonkeyPatch) -> None:
    server, sock, _ = serving
    tries: list[int] = []

    class Aborting(socket.socket):
        def accept(self) -> tuple[socket.socket, object]:
            tries.append(1)
            raise OSError(103, "Software caused connection abort")

    monkeypatch.setattr(server, "_sock", Aborting(fileno=socket.dup(sock.fileno())))
    assert server.accept_waiting() == 0
    assert len(tries) == accept.MAX_PER_TURN
    server.close()
