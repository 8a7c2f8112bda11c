"""Budgets without Redis survive a restart: the in-process store starts from the usage records.

Only budgets are rebuilt (a minute's rpm and tpm are gone by the time a
process is back up). The records hold tokens, so what was spent is priced
again from ``[prices]``, with today's prices.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Mapping

from ..config.clients import ClientSettings
from ..ops.usage import Store as UsageStore
from ..ops.usage import spent_since
from .gate import Gate
from .limits import Party
from .local import LocalStore, period_bounds


def budgeted(clients: Mapping[str, ClientSettings]) -> bool:
    return any(c.budgeted for c in clients.values())


def rebuild_budgets(store: LocalStore, gate: Gate, usage: UsageStore, now: float | None = None) -> int:
    """Charge each budgeted party of ``gate``'s clients what the records say it spent this period.

    Returns the rows read.
    """
    now = time.time() if now is None else now
    starts = {kind: period_bounds(now, kind)[0] for kind in ("day", "month")}
    rows = spent_since(usage, min(starts.values()))
    spent: dict[Party, int] = defaultdict(int)
    for client, user, model, day, prompt, completion in rows:
        settings = gate.clients.get(client)
        if settings is None:
            continue
        day_start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
        cost = gate.prices.cost(model, prompt, completion)
        for party in gate.parties(client, settings, user):
            if party.budget is not None and day_start >= starts[party.period]:
                spent[party] += cost
    store.restore(spent.items())
    return len(rows)
