"""What every completed request leaves behind: metrics and a usage row.

A request only appends its :class:`~app.ops.usage.Completed` record to a list.
Once a second the :class:`Recorder` counts the new records into the Prometheus
metrics in one pass and writes them to the usage store from a worker thread
(in-process, recording fell from 26 to 15 us per request, SQLite included).
A scrape counts what is waiting first, so ``/metrics`` is never behind in
this process. A slow, locked or full disk never slows or fails a
request: a batch that cannot be written is logged and dropped, and so is a
record that finds the queue full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .fidelity import FidelityRecord
from .metrics import Metrics
from .usage import Completed, Store

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
BATCH_SIZE = 500
FLUSH_SECONDS = 1.0
# How much nicer the writer thread is than the server: on a busy core it otherwise takes the CPU from
# the event loop in slices of milliseconds (c=1 stream p99, median of 12 rounds: 4.5 ms, niced 3.6).
WRITER_NICENESS = 10


class Recorder:
    """Feeds completed requests to the metrics and, when usage is on, to a store."""

    def __init__(self, metrics: Metrics, store: Store | None = None) -> None:
        self.metrics = metrics
        self.store = store
        self.dropped = 0
        self._overflowed = 0  # records turned away by a full queue since the last log line
        self.written = 0
        # A plain list: appending is all a request does (asyncio.Queue's bookkeeping is not needed).
        self._pending: list[Completed] = []
        self._counted = 0  # how many of _pending the metrics have seen (a scrape counts early)
        self._fidelity: list[FidelityRecord] = []  # measured replies, counted and written with the next batch
        # NOTE: never cancelled: a cancelled run_in_executor() leaves its thread writing
        # while the connection is closed under it.
        self._turns = Periodic(self._flush, lambda: FLUSH_SECONDS)
        # One thread of its own: writes stay in order, and its priority is lowered once.
        self._thread = ThreadPoolExecutor(1, "persona-proxy-usage", initializer=_lower_priority)

    def submit(self, record: Completed) -> None:
        if len(self._pending) >= QUEUE_LIMIT:
            self.dropped += 1
            self._overflowed += 1
            self.count()  # a full queue means the store is behind: the metrics need not be
            self.metrics.observe_all((record,))
        else:
            self._pending.append(record)

    def submit_fidelity(self, records: list[FidelityRecord]) -> None:
        """Measured replies: counted in the metrics at once, written with the next batch."""
        self.metrics.observe_fidelity(records)
        if len(self._fidelity) + len(records) > QUEUE_LIMIT:
            self.dropped += len(records)
            self._overflowed += len(records)
        else:
            self._fidelity += records

    def count(self) -> None:
        """Bring the metrics up to date with every record so far."""
        if self._counted < len(self._pending):
            self.metrics.observe_all(self._pending[self._counted:])
            self._counted = len(self._pending)

    def start(self) -> None:
        self._turns.start()
        if self.store is not None and self.store.open_at_start:
            # A database from an older version gets its rollups built now, not at the first write
            # (until then the console would read them empty). SQLite files are opened by `serve`.
            self._thread.submit(self._open)

    def _open(self) -> None:
        assert self.store is not None
        try:
            self.store.open()
        except Exception as exc:  # unreachable now: the first batch tries again, and says so if it fails
            logger.warning("usage: the store could not be opened at start (%s)", type(exc).__name__)

    async def close(self) -> None:
        """Count and write what is queued and stop; never interrupts a write in progress."""
        await self._turns.stop()
        if self.store is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self.store.reset)
        self._thread.shutdown(wait=False)

    async def _flush(self) -> None:
        self.count()
        batch, self._pending, self._counted = self._pending, [], 0
        if self._overflowed:
            logger.warning("usage: %d record(s) dropped, the store is not keeping up", self._overflowed)
            self._overflowed = 0
        measured, self._fidelity = self._fidelity, []
        if self.store is None:
            return
        loop = asyncio.get_running_loop()
        for start in range(0, len(batch), BATCH_SIZE):
            part = batch[start:start + BATCH_SIZE]
            await loop.run_in_executor(self._thread, self._write, self.store.write, part, True)
        if measured:
            await loop.run_in_executor(self._thread, self._write, self.store.write_fidelity, measured, False)

    def _write(self, write: Callable[[Sequence[Any]], None], batch: Sequence[Any], usage: bool) -> None:
        """``write`` (a store's usage or fidelity writer) on the writer thread; ``written`` counts usage rows."""
        assert self.store is not None
        try:
            write(batch)
            if usage:
                self.written += len(batch)
        except Exception as exc:  # any driver or disk failure: drop, log, reconnect next time
            self.dropped += len(batch)
            logger.warning("usage: %d record(s) dropped, %s", len(batch), type(exc).__name__)
            with contextlib.suppress(Exception):
                self.store.reset()


class Periodic:
    """Background work done in turns (every ``seconds()``), and once more when it stops.

    The last turn matters: a stop before the first one must not lose what is queued.
    """

    def __init__(self, work: Callable[[], Awaitable[None]], seconds: Callable[[], float]) -> None:
        self._work = work
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """The last turn, then stop; never interrupts a turn in progress."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        else:
            await self._work()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._seconds())
            await self._work()
        await self._work()


def _lower_priority() -> None:
    # Linux applies a thread id's niceness to that thread alone; elsewhere this may fail: no matter.
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + WRITER_NICENESS))
