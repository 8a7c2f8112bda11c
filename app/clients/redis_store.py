"""Counters in Redis (or Valkey), shared by every worker and replica.

Each admission is one script run (check and increment in one atomic step,
on Redis's clock), batched with whatever else is waiting into one
pipelined round trip (:mod:`app.clients.redis_io`). Settlements are sent
without waiting for them; when the store is down they wait for it (up to a
bound), since a lost settlement would leave a reservation standing until
its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from ..config import Config
from .limits import Admitted, Ask, Party, PartyState, Refused, StoreUnavailable
from .redis_io import Call, RedisLane
from .scripts import ADMIT, REFRESH, SETTLE, STATES

LEASE_MS = 120_000  # a hold outlives a dead process by this much at most
REFRESH_SECONDS = 30.0


class RedisStore:
    """The counters in Redis; :func:`redis_store_for` makes one from a config."""

    def __init__(self, url: str, timeout: float, prefix: str = "pp") -> None:
        self.lane = RedisLane(url, timeout, (ADMIT, SETTLE, REFRESH, STATES))
        self.timeout = timeout
        self.prefix = prefix
        self._held: dict[str, tuple[str, ...]] = {}  # ticket -> its parties' bases, for lease renewal
        self._refresher: asyncio.Task[None] | None = None

    async def ping(self, timeout: float = 1.0) -> bool:
        """Whether Redis answers now (at start-up, to say so; serving never waits for this)."""
        return bool(await self.lane.run(self.lane.ping(max(timeout, self.timeout))))

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
        self.lane.submit(Call(SETTLE, (len(bases), *bases, ask.ticket, tokens, cost,
                                       *(p.period for p in ask.parties))))

    async def states(self, parties: tuple[Party, ...]) -> tuple[PartyState, ...]:
        bases = [self.base(p) for p in parties]
        return _states(await self._call(STATES, (len(bases), *bases, *(p.period for p in parties))))

    async def close(self) -> None:
        """Send what is still queued (settlements above all), then let go of the connections and the thread."""
        if self._refresher is not None:
            self._refresher.cancel()
        with contextlib.suppress(Exception):
            await self.lane.run(self.lane.drain(self.timeout * 20))
        await asyncio.to_thread(self.lane.stop)

    async def _call(self, script: str, args: tuple[Any, ...]) -> Any:
        if time.monotonic() < self.lane.down_until:
            raise StoreUnavailable("the limits store failed less than a second ago")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.lane.submit(Call(script, args, future))
        return await future

    async def _refresh_leases(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            pairs = [(base, ticket) for ticket, bases in list(self._held.items()) for base in bases]
            for start in range(0, len(pairs), 500):
                part = pairs[start:start + 500]
                with contextlib.suppress(StoreUnavailable):
                    await self._call(REFRESH, (len(part), *(b for b, _ in part), LEASE_MS, *(t for _, t in part)))


def _states(values: list[Any]) -> tuple[PartyState, ...]:
    numbers = [int(v) for v in values]
    return tuple(PartyState(*numbers[i:i + 6]) for i in range(0, len(numbers), 6))


def redis_store_for(config: Config) -> RedisStore | None:
    """The config's Redis store (``[limits] redis_url_env``), or None when it names none."""
    if config.redis_url is None:
        return None
    return RedisStore(config.redis_url.get_secret_value(), config.limits.store_timeout_ms / 1000)
