"""What the console keeps between requests (on ``app.state.console``) and how it reads the store."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from ..evals.runner import training_replies
from ..ops.usage import Store
from ..proxy.errors import ServiceUnavailable
from ..proxy.routing import Route
from ..tuning.fidelity import Scores, reference_scores
from .probe import Probes

# A console query that takes longer is stopped: an answer in OpenAI's shape, never a held server.
DEADLINE_SECONDS = 5.0
Queries = Mapping[str, tuple[str, tuple[Any, ...]]]


class ConsoleState:
    def __init__(self) -> None:
        self.probes = Probes()
        self._references: dict[tuple[str, str], Scores] = {}

    async def reference(self, route: Route) -> Scores:
        """The training data's scores for a route, computed once per dataset (on a thread: it reads the file)."""
        assert route.profile is not None and route.settings.dataset is not None
        key = (route.name, str(route.settings.dataset))
        if key not in self._references:
            replies = await asyncio.to_thread(training_replies, route.settings.dataset)
            self._references[key] = reference_scores(replies, route.profile)
        return self._references[key]


async def run_queries(store: Store, queries: Queries) -> dict[str, list[tuple[Any, ...]]]:
    """Run read-only queries on one connection, on a thread, each stopped past the deadline."""
    try:
        return await asyncio.to_thread(_run, store, queries, time.monotonic() + DEADLINE_SECONDS)
    except Exception as exc:
        if _missing(exc):  # nothing recorded yet: the tables come with the first write
            return {name: [] for name in queries}
        raise ServiceUnavailable(f"The usage store did not answer in time or at all ({type(exc).__name__}); "
                                 "try a shorter range, or check the store.", code="store_unavailable") from None


def _run(store: Store, queries: Queries, deadline: float) -> dict[str, list[tuple[Any, ...]]]:
    if not store.exists():
        return {name: [] for name in queries}
    db = store.connect(read_only=True)
    try:
        if hasattr(db, "set_progress_handler"):  # SQLite: interrupted once past the deadline
            db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        else:  # PostgreSQL
            db.execute(f"SET statement_timeout = {int(DEADLINE_SECONDS * 1000)}")
        return {name: list(db.execute(sql, params).fetchall()) for name, (sql, params) in queries.items()}
    finally:
        with contextlib.suppress(Exception):
            db.close()


def _missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)
