"""Whether each upstream answers and has the models its targets name, as last checked.

The console's overview reads what was last found and never waits on an
upstream; the page asks for a fresh check (``POST``) when it is older than
:data:`FRESH_SECONDS`. One upstream is checked once at a time, however many
pages ask, and a slow one costs :data:`TIMEOUT_SECONDS` at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..proxy.lifecycle import ANY_MODEL, Lifecycle, listed_models
from ..proxy.upstream import UpstreamClient

FRESH_SECONDS = 300.0
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Found:
    """One upstream as last checked: ``models`` is None when its list could not be read (``ANY_MODEL``: the demo)."""

    reachable: bool | None
    models: frozenset[str] | None
    note: str
    checked: float


class Probes:
    """The last check of every upstream, and the check in progress."""

    def __init__(self) -> None:
        self.found: dict[str, Found] = {}
        self._running: dict[str, asyncio.Task[Found]] = {}

    def stale(self, names: Iterable[str], now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return any(n not in self.found or now - self.found[n].checked > FRESH_SECONDS for n in names)

    async def refresh(self, clients: Mapping[str, UpstreamClient], demo: set[str], lifecycle: Lifecycle) -> None:
        """Check every upstream in ``clients`` (concurrently; one that is being checked is waited for)."""
        tasks = []
        for name, client in clients.items():
            task = self._running.get(name)
            if task is None:
                task = self._running[name] = asyncio.ensure_future(self._check(name, client, name in demo, lifecycle))
                task.add_done_callback(self._finished(name))
            tasks.append(task)
        await asyncio.gather(*tasks)

    def _finished(self, name: str) -> Callable[[asyncio.Task[Found]], None]:
        def forget(_: asyncio.Task[Found]) -> None:
            self._running.pop(name, None)

        return forget

    async def _check(self, name: str, client: UpstreamClient, demo: bool, lifecycle: Lifecycle) -> Found:
        if demo:  # the built-in demo answers for any model id it is given
            found = Found(True, ANY_MODEL, "built-in demo", time.time())
        else:
            checked = await client.check("models", TIMEOUT_SECONDS)
            if checked.body is not None:
                lifecycle.learn(name, checked.body)  # the shutdown dates it lists, as the daily check learns them
            found = Found(checked.reachable, listed_models(checked.body), checked.note, time.time())
        self.found[name] = found
        return found

