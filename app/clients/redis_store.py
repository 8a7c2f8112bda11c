"""Counters in Redis (or Valkey), shared by every worker and replica.

Calls are batched: what arrives while a round trip is out goes together in
the next one, as one pipeline of scripts (``EVALSHA``, and ``EVAL`` when the
server has not seen the script or a proxy in front of it blocks
``SCRIPT``). The timeout applies to each round trip once it is sent, never
to the wait in the queue: a burst of 120 requests is two or three round
trips, not 120 timeouts in a row. A store that does not answer fails the
batch in ``timeout`` seconds; for the next second calls fail at once
instead of each waiting for it, then one is let through to probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from typing import Any

from .limits import Admitted, Ask, Party, PartyState, Refused, StoreUnavailable
from .scripts import ADMIT, REFRESH, SETTLE, STATES

logger = logging.getLogger(__name__)

LEASE_MS = 120_000  # a hold outlives a dead process by this much at most
REFRESH_SECONDS = 30.0
DOWN_SECONDS = 1.0  # after a failure, how long calls fail without trying
MAX_BATCH = 256
MAX_PENDING_SETTLES = 10_000


class _Call:
    __slots__ = ("args", "future", "script")

    def __init__(self, script: str, args: tuple[Any, ...], future: asyncio.Future[Any] | None) -> None:
        self.script, self.args, self.future = script, args, future


class RedisStore:
    def __init__(self, url: str, timeout: float, prefix: str = "pp") -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside the client: a retry would multiply the timeout; the failure mode answers instead.
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0), max_connections=8)
        self.timeout = timeout
        self.prefix = prefix
        self._sha = {script: hashlib.sha1(script.encode()).hexdigest() for script in (ADMIT, SETTLE, REFRESH, STATES)}
        self._queue: deque[_Call] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._held: dict[str, tuple[str, ...]] = {}  # ticket -> its parties' bases, for lease renewal
        self._refresher: asyncio.Task[None] | None = None
        self._errors = 0

    async def ping(self, timeout: float = 1.0) -> bool:
        """Whether Redis answers now (at start-up, to say so; serving never waits for this)."""
        try:
            await asyncio.wait_for(self.redis.ping(), max(timeout, self.timeout))
        except Exception:
            return False
        return True

    def base(self, party: Party) -> str:
        return f"{self.prefix}:{party.key}"

    async def admit(self, ask: Ask) -> Admitted | Refused:
        bases = tuple(self.base(p) for p in ask.parties)
        args: list[Any] = [len(bases), *bases, ask.ticket, LEASE_MS, ask.tokens, ask.cost]
        for p in ask.parties:
            args += [p.rpm or 0, p.tpm or 0, p.max_parallel or 0, p.budget or 0, p.period]
        reply = await self._call(ADMIT, tuple(args))
        if reply[0] == 0:
            limit = reply[2].decode() if isinstance(reply[2], bytes) else str(reply[2])
            return Refused(int(reply[1]) - 1, limit, int(reply[3]), bool(reply[4]), int(reply[5]))
        self._held[ask.ticket] = bases
        if self._refresher is None:
            self._refresher = asyncio.ensure_future(self._refresh_leases())
        return Admitted(_states(reply[1:]))

    def settle(self, ask: Ask, tokens: int, cost: int) -> None:
        bases = self._held.pop(ask.ticket, None)
        if bases is None:
            return  # admitted while the store was down: nothing is held
        self._enqueue(_Call(SETTLE, (len(bases), *bases, ask.ticket, tokens, cost, *(p.period for p in ask.parties)),
                            None))

    async def states(self, parties: tuple[Party, ...]) -> tuple[PartyState, ...]:
        bases = [self.base(p) for p in parties]
        reply = await self._call(STATES, (len(bases), *bases, *(p.period for p in parties)))
        return _states(reply)

    async def close(self) -> None:
        """Send what is still queued (settlements above all), then let go of the connections."""
        if self._refresher is not None:
            self._refresher.cancel()
        with contextlib.suppress(Exception):
            while self._queue or (self._flusher is not None and not self._flusher.done()):
                if self._flusher is None or self._flusher.done():
                    self._flusher = asyncio.ensure_future(self._flush())
                await asyncio.wait_for(asyncio.shield(self._flusher), self.timeout * 4)
        await self.redis.aclose()

    async def _call(self, script: str, args: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            raise StoreUnavailable("the limits store failed less than a second ago")
        future: asyncio.Future[Any] = loop.create_future()
        self._enqueue(_Call(script, args, future))
        return await future

    def _enqueue(self, call: _Call) -> None:
        self._queue.append(call)
        # Settlements wait for the store to come back; their count is bounded, the oldest go first.
        while len(self._queue) > MAX_PENDING_SETTLES:
            dropped = self._queue.popleft()
            if dropped.future is not None and not dropped.future.done():
                dropped.future.set_exception(StoreUnavailable("the limits store queue is full"))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if loop.time() < self._down_until:
                self._fail_waiting()
                return
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            try:
                replies = await asyncio.wait_for(self._send(batch), self.timeout)
            except Exception as exc:  # a timeout, a refused connection, a protocol error: all the store's
                self._down_until = loop.time() + DOWN_SECONDS
                self._errors += 1
                failure = StoreUnavailable(type(exc).__name__)
                # Settlements are kept for the next round trip; admissions learn now.
                self._queue.extendleft(reversed([c for c in batch if c.future is None]))
                for call in batch:
                    if call.future is not None and not call.future.done():
                        call.future.set_exception(failure)
                self._fail_waiting()
                return
            for call, reply in zip(batch, replies, strict=True):
                if call.future is not None and not call.future.done():
                    if isinstance(reply, Exception):
                        call.future.set_exception(StoreUnavailable(str(reply)[:200]))
                    else:
                        call.future.set_result(reply)

    def _fail_waiting(self) -> None:
        """Fail the admissions still queued (they would wait for a store that just failed)."""
        kept: deque[_Call] = deque()
        for call in self._queue:
            if call.future is None:
                kept.append(call)
            elif not call.future.done():
                call.future.set_exception(StoreUnavailable("the limits store is not answering"))
        self._queue = kept

    async def _send(self, batch: list[_Call]) -> list[Any]:
        from redis.exceptions import NoScriptError

        pipe = self.redis.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(self._sha[call.script], *call.args)
        replies = await pipe.execute(raise_on_error=False)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # EVAL loads the script as it runs it; SCRIPT LOAD may be blocked by a proxy in front of Redis.
            again = self.redis.pipeline(transaction=False)
            for i in missing:
                again.eval(batch[i].script, *batch[i].args)
            for i, reply in zip(missing, await again.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        return list(replies)

    async def _refresh_leases(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            pairs = [(base, ticket) for ticket, bases in self._held.items() for base in bases]
            for start in range(0, len(pairs), 500):
                part = pairs[start:start + 500]
                with contextlib.suppress(StoreUnavailable):
                    await self._call(REFRESH, (len(part), *(b for b, _ in part), LEASE_MS, *(t for _, t in part)))


def _states(values: list[Any]) -> tuple[PartyState, ...]:
    numbers = [int(v) for v in values]
    return tuple(PartyState(*numbers[i:i + 6]) for i in range(0, len(numbers), 6))
