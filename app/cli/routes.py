"""``persona-proxy routes``: every route and target, checked against its upstream."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import httpx

from ..config import Config
from ..proxy.lifecycle import (
    ANY_MODEL,
    WARN_WITHIN_DAYS,
    listed_models,
    relative_days,
    shutdown_dates,
    target_status,
    utc_today,
)
from ..proxy.routing import RouteTable
from ..tuning import fewshot
from ..tuning.tokens import load_counter
from .common import format_table, load


def probe(config: Config, name: str, timeout: float = 10.0) -> dict[str, Any]:
    """What one upstream's ``GET /models`` says: reachable, model ids, shutdown dates."""
    settings = config.upstreams[name]
    if settings.kind == "demo":
        # The built-in demo answers for any model id it is given.
        return {"reachable": True, "models": ANY_MODEL, "shutdowns": {}, "note": "built-in demo"}
    upstream = config.upstream(name)
    if upstream.key_missing:
        return {"reachable": None, "models": None, "shutdowns": {}, "note": f"{settings.api_key_env} not set"}
    headers = {"authorization": f"Bearer {upstream.api_key.get_secret_value()}"} if upstream.api_key else {}
    try:
        response = httpx.get(f"{(settings.base_url or '').rstrip('/')}/models", headers=headers, timeout=timeout,
                             trust_env=False)
    except httpx.HTTPError as exc:
        return {"reachable": False, "models": None, "shutdowns": {}, "note": type(exc).__name__}
    if response.status_code != 200:
        return {"reachable": True, "models": None, "shutdowns": {}, "note": f"HTTP {response.status_code}"}
    try:
        listing = response.json()
    except ValueError:
        return {"reachable": True, "models": None, "shutdowns": {}, "note": "not JSON"}
    models = listed_models(listing)
    return {"reachable": True, "models": models, "shutdowns": shutdown_dates(listing),
            "note": "" if models is not None else "not a model list"}


def report(config: Config, today: dt.date, routes: RouteTable | None = None) -> list[dict[str, Any]]:
    routes = RouteTable.from_config(config) if routes is None else routes
    upstreams = {t.upstream for r in routes for t in r.every_target}
    probes = {name: probe(config, name) for name in sorted(upstreams)}
    counter = load_counter() if any(t.few_shot for r in routes for t in r.every_target) else None
    rows = []
    for route in routes:
        for target in route.every_target:
            found = probes[target.upstream]
            date = target.shutdown_date or found["shutdowns"].get(target.model)
            rows.append({
                "route": route.name, "target": target.index, "role": target.role, "upstream": target.upstream,
                "model": target.model, "note": found["note"],
                **target_status(target, date, found["reachable"], found["models"],
                                config.upstreams[target.upstream].fine_tuning_cutoff, today),
                "few_shot_examples": len(target.few_shot) // 2,
                "few_shot_tokens": fewshot.cost(list(target.few_shot), counter) if counter and target.few_shot else 0,
            })
    return rows


def role_label(row: dict[str, Any]) -> str:
    """``primary``, ``fallback 1``, ``canary 0``, ``shadow 0``."""
    return "primary" if row["role"] == "primary" else f"{row['role']} {row['target']}"


def succession_warnings(rows: list[dict[str, Any]], today: dt.date) -> list[str]:
    """Routes none of whose serving targets will last: each retires within 30 days or is a fine-tune that
    can no longer be made again (its provider's fine-tuning ends within 30 days or has ended)."""
    lines = []
    for route in dict.fromkeys(r["route"] for r in rows):
        serving = [r for r in rows if r["route"] == route and r["role"] != "shadow"]
        reasons = [_at_risk(r, today) for r in serving]
        if serving and all(reasons):
            told = "; ".join(f"{role_label(r)} {r['model']} {why}" for r, why in zip(serving, reasons, strict=True))
            lines.append(f"route {route}: every target is ending ({told}); add a canary or fallback on a model "
                         "that stays (see `persona-proxy succession` and `route promote`)")
    return lines


def _at_risk(row: dict[str, Any], today: dt.date) -> str:
    days = row["days_left"]
    if days is not None and days <= WARN_WITHIN_DAYS:
        return f"retires on {row['shutdown_date']} ({relative_days(days)})"
    cutoff = row["fine_tuning_until"]
    if row["fine_tune"] and cutoff is not None:
        left = (dt.date.fromisoformat(cutoff) - today).days
        if left <= WARN_WITHIN_DAYS:
            ends = "ended" if left < 0 else "ends"
            return (f"is a fine-tune, and new fine-tuning on {row['upstream']} {ends} on {cutoff} "
                    f"({relative_days(left)})")
    return ""


def _yes(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "NO"


@click.command("routes")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def routes_command(config_file: str | None, as_json: bool) -> None:
    """List routes and their targets: reachable, model present, shutdown date, few-shot cost.

    Exits 1 when a route has no target that can serve.
    """
    today = utc_today()
    rows = report(load(config_file), today)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _print_table(rows)
    for line in succession_warnings(rows, today):
        click.echo(f"warning: {line}", err=True)
    serving = [r for r in rows if r["role"] != "shadow"]
    dead = sorted({r["route"] for r in serving} - {r["route"] for r in serving if r["can_serve"]})
    for route in dead:
        click.echo(f"route {route}: no target can serve it (unreachable, key not set, model missing or retired)",
                   err=True)
    if dead:
        raise SystemExit(1)


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("route", "role", "target", "reachable", "model", "shutdown", "few-shot")
    table = [header]
    for row in rows:
        days = row["days_left"]
        shutdown = "-" if days is None else f"{row['shutdown_date']} ({relative_days(days)})"
        if days is not None and days <= 0:
            shutdown = f"{row['shutdown_date']} (retired {relative_days(days).replace('in ', '')})"
        elif days is not None and days <= WARN_WITHIN_DAYS:
            shutdown += " !"
        shots = f"{row['few_shot_examples']} ex, {row['few_shot_tokens']} tok" if row["few_shot_examples"] else "-"
        reach = _yes(row["reachable"]) + (f" ({row['note']})" if row["note"] else "")
        table.append((row["route"], role_label(row), f"{row['upstream']}/{row['model']}", reach,
                      _yes(row["model_exists"]), shutdown, shots))
    for line in format_table(table):
        click.echo(line)
