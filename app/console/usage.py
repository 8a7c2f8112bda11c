"""The usage panel's data: requests, errors, tokens and cost per UTC day, in groups, from the rollups.

Every query reads the daily rollups (``app/ops/rollups.py``), never the usage
rows, so a year on 10 million rows answers in tens of milliseconds
(``bench/results/``). End users are ranked by the monthly rollup of the
months the range touches (a few dozen thousand rows, not a million); the
figures shown for them are the daily rollup's, exact, and "(others)" is the
day's total less theirs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import PriceSettings
from ..proxy.errors import InvalidRequest
from .access import Viewer

# What the panel groups on: the rollup column (a target is its upstream and model).
GROUPS = {"route": "route", "client": "client", "user": "user_id", "target": "upstream", "api": "api",
          "role": "role", "model": "model", "kind": "kind"}
KEY_HOLDER_GROUPS = ("route", "api", "user")  # a key holder's own dimensions: nothing of upstreams or models
MAX_DAYS = 366
TOP = 8
OTHERS = "(others)"
MEASURES = "sum(requests), sum(errors), sum(prompt_tokens), sum(completion_tokens)"


@dataclass(frozen=True, slots=True)
class Span:
    """Whole UTC days, both ends included."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> list[str]:
        return [(self.first + dt.timedelta(d)).isoformat() for d in range((self.last - self.first).days + 1)]


def parse_span(params: Mapping[str, str], today: dt.date) -> Span:
    """``days=N`` (the last N days, today included) or ``from=YYYY-MM-DD&to=YYYY-MM-DD``; 30 days by default."""
    if "from" in params or "to" in params:
        last = _date(params.get("to"), "to") if params.get("to") else today
        first = _date(params.get("from"), "from") if params.get("from") else last - dt.timedelta(29)
        if first > last:
            raise InvalidRequest(f"from ({first}) is after to ({last}).", param="from", code="invalid_range")
    else:
        raw = params.get("days", "30")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
            raise InvalidRequest(f"days must be a whole number from 1 to {MAX_DAYS}, not {raw[:20]!r}.",
                                 param="days", code="invalid_range")
        last, first = today, today - dt.timedelta(int(raw) - 1)
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"A range is at most {MAX_DAYS} days; this one is {(last - first).days + 1}.",
                             param="from", code="invalid_range")
    return Span(first, last)


def _date(value: str | None, param: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        raise InvalidRequest(f"{param} must be a date like 2026-11-01, not {(value or '')[:20]!r}.", param=param,
                             code="invalid_range") from None


def parse_group(value: str | None, viewer: Viewer) -> str:
    allowed = tuple(GROUPS) if viewer.admin else KEY_HOLDER_GROUPS if viewer.client else KEY_HOLDER_GROUPS[:2]
    by = value or "route"
    if by not in allowed:
        raise InvalidRequest(f"Unknown grouping {by[:20]!r}; use one of: {', '.join(allowed)}.", param="by",
                             code="invalid_group")
    return by


def scope_of(viewer: Viewer, param: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL condition (and its values) that keeps a key holder to its own rows (shadows are the operator's)."""
    if viewer.admin:
        return "", ()
    if viewer.client is not None:
        return f" AND client = {param}", (viewer.client,)
    return f" AND key_id = {param} AND kind <> 'shadow'", (viewer.key_id,)


def queries(by: str, span: Span, viewer: Viewer, param: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The queries for one panel (each row: day, group, model, then the four sums), by name; for end users
    also each day's totals, of which the top users' part is taken out as "(others)"."""
    where, values = scope_of(viewer, param)
    days = (span.first.isoformat(), span.last.isoformat())
    if by != "user":
        column = GROUPS[by]
        return {"groups": (f"SELECT day, {column}, model, {MEASURES} FROM usage_daily WHERE day >= {param} "
                           f"AND day <= {param}{where} GROUP BY 1, 2, 3", (*days, *values))}
    months = (span.first.replace(day=1).isoformat(), span.last.isoformat())
    # The top users, ranked in the monthly rollup, then their days read through the daily one's index
    # on end user and day: one statement, one round trip.
    top = (f"SELECT user_id FROM usage_monthly_users WHERE day >= {param} AND day <= {param}{where} "
           f"AND user_id <> '' GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT {TOP}")
    return {
        "groups": (f"WITH top AS ({top}) SELECT day, user_id, model, {MEASURES} FROM usage_daily_users "
                   f"WHERE user_id IN (SELECT user_id FROM top) AND day >= {param} AND day <= {param}{where} "
                   "GROUP BY 1, 2, 3", (*months, *values, *days, *values)),
        "totals": (f"SELECT day, '', model, {MEASURES} FROM usage_daily WHERE day >= {param} AND day <= {param}"
                   f"{where} GROUP BY 1, 2, 3", (*days, *values)),
    }


def series(by: str, span: Span, rows: Sequence[Sequence[Any]], prices: Mapping[str, PriceSettings],
           totals: Sequence[Sequence[Any]] | None = None) -> dict[str, Any]:
    """Per-day series for the busiest groups (the rest as "(others)"), with totals and costs."""
    days = span.days
    index = {d: i for i, d in enumerate(days)}
    groups: dict[str, dict[str, Any]] = {}
    unpriced: set[str] = set()
    for row in rows:
        add(groups, _name(by, row), index, row, prices, unpriced, len(days))
    if totals is not None:  # what the top users leave of each day's total
        rest: dict[str, dict[str, Any]] = {}
        for row in totals:
            add(rest, OTHERS, index, row, prices, unpriced, len(days))
        if rest:
            others = rest[OTHERS]
            for entry in groups.values():
                for measure in ("requests", "errors", "tokens", "cost_usd"):
                    others[measure] = [a - b for a, b in zip(others[measure], entry[measure], strict=True)]
            if any(others["requests"]):
                groups[OTHERS] = others
    ranked = sorted(groups.values(), key=lambda g: (g["name"] == OTHERS, -sum(g["requests"])))
    if totals is None and len(ranked) > TOP:
        folded = ranked[TOP - 1:]
        ranked = [*ranked[:TOP - 1], _fold(folded)]
    for entry in ranked:
        entry["cost_usd"] = [round(c, 6) for c in entry["cost_usd"]]
        entry["total"] = {m: round(sum(entry[m]), 6) for m in ("requests", "errors", "tokens", "cost_usd")}
    return {"by": by, "from": span.first.isoformat(), "to": span.last.isoformat(), "days": days,
            "series": ranked, "unpriced_models": sorted(unpriced)}


def add(groups: dict[str, dict[str, Any]], name: str, index: Mapping[str, int], row: Sequence[Any],
        prices: Mapping[str, PriceSettings], unpriced: set[str], width: int) -> None:
    day, _, model, requests, errors, prompt, completion = row[:7]
    entry = groups.get(name)
    if entry is None:
        entry = groups[name] = {"name": name, **{m: [0] * width for m in ("requests", "errors", "tokens")},
                                "cost_usd": [0.0] * width}
    i = index.get(str(day))
    if i is None:
        return
    prompt, completion = int(prompt or 0), int(completion or 0)
    entry["requests"][i] += int(requests or 0)
    entry["errors"][i] += int(errors or 0)
    entry["tokens"][i] += prompt + completion
    price = prices.get(str(model))
    if price is not None:
        entry["cost_usd"][i] += (prompt * price.input + completion * price.output) / 1e6
    elif prompt or completion:
        unpriced.add(str(model))


def _name(by: str, row: Sequence[Any]) -> str:
    value = str(row[1] or "")
    if by == "target":
        return f"{row[2]}@{value}"
    return value or "(none)"


def _fold(entries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": OTHERS}
    for measure in ("requests", "errors", "tokens", "cost_usd"):
        out[measure] = [sum(values) for values in zip(*(e[measure] for e in entries), strict=True)]
    return out
