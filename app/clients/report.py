"""Every client as an operator sees it: routes, limits, key hashes, and what it used (`persona-proxy clients`).

With Redis the figures are the live counters every replica shares. Without
it the counters live inside the serving process, out of a command's reach,
so they are read back from the usage records instead (the current minute's
requests and tokens, and the budget period's cost): the source says which.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..config import Config
from ..config.clients import LimitFields
from ..ops.usage import client_totals, usage_store
from .demand import PriceBook
from .gate import Gate
from .keys import key_hash
from .limits import NANO, PartyState
from .local import LocalStore, period_bounds
from .redis_store import redis_store_for
from .restore import rebuild_budgets


def limits_of(fields: LimitFields) -> dict[str, Any]:
    found: dict[str, Any] = {k: getattr(fields, k) for k in ("rpm", "tpm", "max_parallel", "budget_usd")
                             if getattr(fields, k) is not None}
    if fields.budget_usd is not None:
        found["budget_period"] = fields.budget_period
    return found


async def client_report(config: Config) -> list[dict[str, Any]]:
    """One entry per client, in name order."""
    prices = PriceBook(config.prices)
    store: Any = redis_store_for(config)
    if store is not None:
        source = "redis"
        if not await store.ping():
            await store.close()
            raise ConnectionError(f"Redis ({config.limits.redis_url_env}) is not reachable")
    else:
        store, source = LocalStore(), "usage records"
    gate = Gate(config.clients, config.limits, prices, store)
    usage = None
    if source != "redis" and config.usage.enabled:
        usage = usage_store(config)
        rebuild_budgets(store, gate, usage)
    now = time.time()
    minute = client_totals(usage, math.floor(now / 60) * 60) if usage is not None else {}
    entries = []
    try:
        for name, settings in sorted(config.clients.items()):
            states = await gate.states(name, settings) if settings.any else ()
            used = used_of(states[0] if states else None, minute.get(name), source, settings, now)
            entries.append(client_entry(config, name, source, used))
    finally:
        await store.close()
    return entries


def client_entry(config: Config, name: str, source: str, used: dict[str, Any] | None) -> dict[str, Any]:
    """One client as `clients` and the console's admin show it: scope, limits, key hashes, and what it used."""
    settings = config.clients[name]
    return {"client": name, "routes": settings.routes or sorted(config.routes), "limits": limits_of(settings),
            "per_user": limits_of(settings.per_user),
            "keys": [key_hash(k.get_secret_value()) for k in config.client_key_sets.get(name, ())],
            "key_env": settings.key_env, "source": source, "used": used}


def used_of(state: PartyState | None, minute: tuple[int, int] | None, source: str, settings: LimitFields,
            now: float) -> dict[str, Any]:
    """What a client used, from its live counters (``source`` "redis" or "this process"), or from the usage
    records' ``minute`` totals and the rebuilt budget ``state`` when the counters are out of reach."""
    window_s = round(60 - now % 60, 1)
    period_end = period_bounds(now, settings.budget_period)[1]
    if source != "usage records" and state is not None:
        return {"requests": state.requests, "tokens": state.tokens, "in_flight": state.in_flight,
                "spent_usd": round(state.spent / NANO, 6), "window_resets_in_s": round(state.window_reset_ms / 1000, 1),
                "period_resets_in_s": state.period_reset_s}
    requests, tokens = minute or (0, 0)
    return {"requests": requests, "tokens": tokens, "in_flight": None,
            "spent_usd": round(state.spent / NANO, 6) if state is not None else None,
            "window_resets_in_s": window_s, "period_resets_in_s": int(period_end - now)}
