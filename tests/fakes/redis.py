"""A real Redis server for tests: Debian's ``redis-server`` on a free loopback port, stoppable and restartable.

Tests that need it skip when the binary is missing, except where
``PERSONA_PROXY_REQUIRE_REDIS`` is set (``.ci/run`` sets it), so CI can never
pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .servers import free_port


def redis_binary() -> str | None:
    found = os.environ.get("PERSONA_PROXY_TEST_REDIS_SERVER") or shutil.which("redis-server") \
        or shutil.which("valkey-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


def require_redis() -> str:
    binary = redis_binary()
    if binary is None:
        if os.environ.get("PERSONA_PROXY_REQUIRE_REDIS"):
            pytest.fail("PERSONA_PROXY_REQUIRE_REDIS is set but no redis-server was found")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """One redis-server process; ``stop()`` and ``start()`` keep its port, as a restarted Redis would."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (no client library involved), its raw reply."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), 2) as sock:
            sock.sendall(b"".join(parts))
            time.sleep(0.05)
            return sock.recv(65536)
