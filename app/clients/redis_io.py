"""Round trips to Redis on a thread of their own, so their timeout measures Redis, not this process.

A 50 ms timeout on the serving event loop also counts the time that loop
spends on a burst of requests: under load a reply already in the socket
loses the race against the timer and a healthy Redis looks dead. Here the
round trips run on a small event loop of their own, which does nothing
else; the GIL hands it the interpreter within its switch interval (5 ms).
A timer that still fires late (the whole process was descheduled) is given
the time again, up to ``MAX_STALL_FACTOR`` timeouts; a store that is merely
slow once (itself descheduled on a loaded host) gets one more timeout, so
the failure mode applies after two timeouts of silence.

Calls are batched: what arrives while a round trip is out goes together in
the next one, as one pipeline of scripts (``EVALSHA``; ``EVAL`` in a second
round trip when the server has not seen a script, e.g. after a restart).
A store that does not answer fails the batch; for ``DOWN_SECONDS`` calls
then fail at once instead of each waiting, and the next call probes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .limits import StoreUnavailable

DOWN_SECONDS = 1.0
SETTLE_TICK = 0.01
MAX_BATCH = 256
MAX_PENDING = 10_000
MAX_STALL_FACTOR = 10  # how far a stalled process may stretch a round trip (500 ms at the default 50 ms)


class Call:
    """One script to run; ``future`` lives on the caller's loop (None: nobody waits, e.g. a settlement)."""

    __slots__ = ("args", "future", "loop", "script")

    def __init__(self, script: str, args: tuple[Any, ...], future: asyncio.Future[Any] | None = None) -> None:
        self.script, self.args, self.future = script, args, future
        self.loop = future.get_loop() if future is not None else None


class RedisLane:
    def __init__(self, url: str, timeout: float, scripts: Iterable[str]) -> None:
        self.url = url
        self.timeout = timeout
        self.sha = {s: hashlib.sha1(s.encode()).hexdigest() for s in scripts}
        self.down_until = 0.0
        self._queue: deque[Call] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._redis: Any = None
        self._flushing = False
        self._kick_pending = False
        self._flusher: asyncio.Future[None] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.call_soon(self._tick)
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="persona-proxy-redis", daemon=True)
        self._thread.start()
        ready.wait()

    async def run(self, coro: Any) -> Any:
        """Run a coroutine on the lane's loop and await it from the caller's."""
        self.start()
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def submit(self, call: Call) -> None:
        """Queue a call; what is queued goes in one round trip.

        A call somebody waits for wakes the lane at the end of its event loop's turn, so the
        admissions of every request that turn reached go together; a settlement waits for the
        next batch or tick.
        """
        self.start()
        with self._lock:
            self._queue.append(call)
            while len(self._queue) > MAX_PENDING:  # only settlements wait this long; the oldest go
                _fail([self._queue.popleft()], StoreUnavailable("the limits store queue is full"))
            kick = call.loop is not None and not self._kick_pending
            if kick:
                self._kick_pending = True
        if kick:
            assert call.loop is not None
            call.loop.call_soon(self._kick)

    def _kick(self) -> None:
        assert self._loop is not None
        with self._lock:
            self._kick_pending = False
            start = bool(self._queue) and not self._flushing
            if start:
                self._flushing = True
        if start:
            self._loop.call_soon_threadsafe(self._start_flush)

    def _start_flush(self) -> None:
        self._flusher = asyncio.ensure_future(self._flush())

    def _tick(self) -> None:
        """Every few milliseconds on the lane: send settlements nobody woke it for (they ride with
        admissions under load; alone, they wait at most this long, which saves a wake-up each)."""
        assert self._loop is not None
        with self._lock:
            start = bool(self._queue) and not self._flushing
            if start:
                self._flushing = True
        if start:
            self._start_flush()
        self._loop.call_later(SETTLE_TICK, self._tick)

    def client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No retries in the client (they would multiply the timeout) and only a backstop timeout there.
            backstop = self.timeout * (MAX_STALL_FACTOR + 1)
            self._redis = redis.Redis.from_url(self.url, socket_timeout=backstop, socket_connect_timeout=backstop,
                                               retry=Retry(NoBackoff(), 0), max_connections=4)
        return self._redis

    async def _flush(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._flushing = False
                    return
                if time.monotonic() < self.down_until:
                    waiting = [c for c in self._queue if c.future is not None]
                    self._queue = deque(c for c in self._queue if c.future is None)
                    self._flushing = False
                    _fail(waiting, StoreUnavailable("the limits store is not answering"))
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            try:
                replies = await self._exchange(batch)
            except Exception as exc:  # a timeout, a refused connection, a protocol error: all the store's
                self.down_until = time.monotonic() + DOWN_SECONDS
                with self._lock:  # settlements go back to wait for the store; admissions learn now
                    self._queue.extendleft(reversed([c for c in batch if c.future is None]))
                _fail(batch, StoreUnavailable(f"{type(exc).__name__}: {exc}"[:300]))
                continue
            _resolve(batch, replies)

    async def _exchange(self, batch: list[Call]) -> list[Any]:
        from redis.exceptions import NoScriptError

        replies = await self._round_trip(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # EVAL loads a script as it runs it (a proxy in front of Redis may block SCRIPT LOAD).
            again = await self._round_trip([batch[i] for i in missing], full=True)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _round_trip(self, batch: list[Call], full: bool = False) -> list[Any]:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self._send(batch, full))
        started = loop.time()
        deadline, limit = started + self.timeout, started + self.timeout * MAX_STALL_FACTOR
        patience = 1  # one more timeout for a store that is slow, not gone (a loaded host deschedules it)
        while True:
            await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0))
            if task.done():
                return task.result()
            late = loop.time() - deadline
            if late < self.timeout / 4 and patience:
                patience -= 1
                deadline = loop.time() + self.timeout
                continue
            if late < self.timeout / 4 or loop.time() >= limit:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise TimeoutError(f"no answer in {self.timeout * 1000:.0f} ms (a batch of {len(batch)})")
            deadline = loop.time() + self.timeout  # the process was not running: the store gets its time again

    async def _send(self, batch: list[Call], full: bool) -> list[Any]:
        """One batch on one connection: every script written in one go, then every reply read.

        Below redis-py's pipeline (its connection, its parser, hiredis when installed), with the
        commands packed here: a script call is a short list of small strings and integers, and
        redis-py's general packer took 26 us a command against 11 for this one.
        """
        from redis.exceptions import ResponseError

        pool = self.client().connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(_packed(batch, self.sha, full), check_health=False)
            replies: list[Any] = []
            for _ in batch:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as err:  # this script's error (NOSCRIPT...), not the connection's
                    replies.append(err)
        except BaseException:
            await conn.disconnect()  # cut short (a timeout, an error): what is left unread is garbage
            raise
        finally:
            await pool.release(conn)
        return replies

    async def ping(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.client().ping(), timeout)
        except Exception:
            return False
        for script in self.sha:
            # Loaded now, so the first requests take one round trip; where SCRIPT is blocked, EVAL does it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client().script_load(script), timeout)
        return True

    async def drain(self, timeout: float) -> None:
        """Wait (on the lane) until the queue is empty or ``timeout`` passes, then close the client."""
        deadline = time.monotonic() + timeout
        while (self._queue or self._flushing) and time.monotonic() < deadline and \
                time.monotonic() >= self.down_until:
            await asyncio.sleep(0.005)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def _packed(batch: list[Call], sha: dict[str, str], full: bool) -> bytes:
    """The batch as RESP: ``EVALSHA sha numkeys key... arg...`` (or ``EVAL script ...``) per call."""
    parts: list[bytes] = []
    for call in batch:
        head = (b"EVAL", call.script.encode()) if full else (b"EVALSHA", sha[call.script].encode())
        items = [*head, *(a if isinstance(a, bytes) else str(a).encode() for a in call.args)]
        parts.append(b"*%d\r\n" % len(items))
        for item in items:
            parts.append(b"$%d\r\n%s\r\n" % (len(item), item))
    return b"".join(parts)


def _resolve(batch: list[Call], replies: list[Any]) -> None:
    outcomes: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for call, reply in zip(batch, replies, strict=True):
        if call.future is not None and call.loop is not None:
            value = StoreUnavailable(str(reply)[:200]) if isinstance(reply, Exception) else reply
            outcomes.setdefault(call.loop, []).append((call.future, value))
    for loop, pairs in outcomes.items():
        loop.call_soon_threadsafe(_settle_futures, pairs)  # one wake-up per batch, not per call


def _fail(batch: list[Call], error: Exception) -> None:
    _resolve(batch, [error] * len(batch))


def _settle_futures(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, value in pairs:
        if future.done():
            continue
        if isinstance(value, Exception):
            future.set_exception(value)
        else:
            future.set_result(value)
