"""``persona-proxy usage``: who used which persona, how many tokens, and what it cost."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import Config
from ..config.settings import PriceSettings
from ..ops import rollups
from ..ops.usage import Store, fetch, rollups_built, since_epoch, usage_store
from .common import UserError, format_table, load

T = TypeVar("T")


def summarize(store: Store, since: float, by: str, prices: dict[str, PriceSettings]) -> list[dict[str, Any]]:
    """Totals per group since ``since``; cost from ``prices`` (models without a price are listed)."""
    rows = grouped_rows(store, since, by)
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "unpriced": [],
        "priced": False})
    for group, model, *counts in rows:
        # PostgreSQL sums to NUMERIC (Decimal); SQLite to int.
        requests, errors, prompt, completion = (int(c or 0) for c in counts)
        entry = totals[str(group) if group is not None else "(none)"]
        entry["requests"] += requests
        entry["errors"] += errors
        entry["prompt_tokens"] += prompt
        entry["completion_tokens"] += completion
        price = prices.get(model)
        if price is None:
            if prompt or completion:
                entry["unpriced"].append(model)
        else:
            entry["priced"] = True
            entry["cost_usd"] += prompt * price.input / 1e6 + completion * price.output / 1e6
    return [{by: group, **values, "cost_usd": round(values["cost_usd"], 6)} for group, values in totals.items()]


def grouped_rows(store: Store, since: float, by: str) -> list[tuple[Any, ...]]:
    """(group, model, requests, errors, prompt, completion) rows: from the daily rollups and the raw rows
    of the day they do not cover when the store has them, else from the raw rows alone."""
    if rollups_built(store):
        queries = rollups.summary_queries(by, since, store.day, store.param)
    else:  # a store no writer of this version has opened yet
        queries = [(rollups.raw_query(by, store.day, store.param), (since,))]
    summed: dict[tuple[Any, Any], list[int]] = {}
    for sql, params in queries:
        for group, model, *counts in fetch(store, sql, params):
            entry = summed.setdefault((group, model), [0, 0, 0, 0])
            for i, value in enumerate(counts):
                entry[i] += int(value or 0)  # PostgreSQL sums to NUMERIC (Decimal); SQLite to int
    # A group whose every row was subtracted (all before `since` on its first day) is not in the range.
    rows = [(*key, *counts) for key, counts in summed.items() if counts[0]]
    return sorted(rows, key=lambda row: (row[0] is None, str(row[0])))


def read_records(config: Config, read: Callable[[Store], T]) -> T:
    """``read`` over the config's usage store (SQLite or PostgreSQL); a missing or unreadable store is one line."""
    store = usage_store(config)
    if not store.exists():
        raise UserError(f"no usage records at {store.where()} yet (usage.path in the config)")
    try:
        return read(store)
    except Exception as exc:  # the driver's message may hold the URL: name the kind only
        raise UserError(f"cannot read usage records from {store.where()} ({type(exc).__name__})") from None


def _cost(value: float, unpriced: bool | list[str], priced: bool) -> tuple[str, str]:
    """The cost cell (``-`` when nothing in it had a price) and its mark (``*`` for a partial sum)."""
    if unpriced and not priced:
        return "-", ""
    return f"{value:.4f}", "*" if unpriced else ""


@click.command("usage")
@click.option("--since", default="7d", show_default=True, help="7d, 12h, 30m or a date (2026-11-01).")
@click.option("--by", type=click.Choice(sorted(rollups.GROUPS)), default="route", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def usage_command(since: str, by: str, as_json: bool, config_file: str | None) -> None:
    """Requests, tokens and estimated cost from the usage records."""
    config = load(config_file)
    try:
        start = since_epoch(since)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    rows = read_records(config, lambda store: summarize(store, start, by, config.prices))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    header = (by, "requests", "errors", "prompt tok", "completion tok", "cost USD", "")
    table = [header] + [(r[by], str(r["requests"]), str(r["errors"]), f"{r['prompt_tokens']:,}",
                         f"{r['completion_tokens']:,}", *_cost(r["cost_usd"], r["unpriced"], r["priced"]))
                        for r in rows]
    if rows:
        total = {key: sum(r[key] for r in rows) for key in ("requests", "errors", "prompt_tokens",
                                                             "completion_tokens", "cost_usd")}
        table.append(("total", str(total["requests"]), str(total["errors"]), f"{total['prompt_tokens']:,}",
                      f"{total['completion_tokens']:,}", *_cost(total["cost_usd"], any(r["unpriced"] for r in rows),
                                                               any(r["priced"] for r in rows))))
    for line in format_table(table, numbers=True):
        click.echo(line)
    if any(r["unpriced"] for r in rows):
        click.echo('- or *: (some) models have no [prices."MODEL"] entry; their tokens are not in the cost')
