"""``persona-proxy check``: is this config ready to serve? One line per problem."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from ..clients.warnings import client_warnings
from ..config import Config
from ..proxy.lifecycle import WARN_WITHIN_DAYS, relative_days, utc_today
from ..proxy.routing import RouteTable
from .common import load
from .routes import report, role_label, succession_warnings


@click.command("check")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def check_command(config_file: str | None) -> None:
    """Validate the config, the files it names, and every upstream: reachable, key set, models present.

    Prints one line per problem and exits 1 on any error (warnings alone exit 0).
    """
    config = load(config_file)  # the file, its keys and every file it names
    routes = RouteTable.from_config(config)
    rows = report(config, utc_today(), routes)
    errors, warnings = problems(config, rows, routes)
    for line in errors:
        click.echo(f"error: {line}")
    for line in warnings:
        click.echo(f"warning: {line}")
    where = config.source or "the built-in config"
    upstreams = len({r["upstream"] for r in rows})
    summary = f"{where}: {len(config.routes)} route(s), {upstreams} upstream(s) checked"
    if errors:
        click.echo(f"{summary}: {len(errors)} error(s)")
        raise SystemExit(1)
    click.echo(f"{summary}: ready to serve" + (f" ({len(warnings)} warning(s))" if warnings else ""))


def problems(config: Config, rows: list[dict[str, Any]],
             routes: RouteTable) -> tuple[list[str], list[str]]:
    """Errors and warnings, worded for the person who fixes them."""
    errors: list[str] = []
    warnings: list[str] = []
    told: set[str] = set()
    for row in rows:
        name = row["upstream"]
        if name not in told:
            told.add(name)
            bad, doubtful = _upstream_problems(config, name, row)
            errors += bad
            warnings += doubtful
        label = f"route {row['route']}: {role_label(row)} {name}/{row['model']}"
        if row["model_exists"] is False:
            errors.append(f"{label}: the upstream does not list this model (check the model id)")
        days = row["days_left"]
        if days is not None and days <= 0:
            errors.append(f"{label}: retired on {row['shutdown_date']}")
        elif days is not None and days <= WARN_WITHIN_DAYS:
            warnings.append(f"{label}: shuts down on {row['shutdown_date']} ({relative_days(days)})")
    for route in dict.fromkeys(r["route"] for r in rows):
        if not any(r["can_serve"] for r in rows if r["route"] == route and r["role"] != "shadow"):
            errors.append(f"route {route}: no target can serve it")
    warnings += succession_warnings(rows, utc_today())
    warnings += client_warnings(config)
    warnings += [line for route in routes for line in route.warnings]
    if config.redis_url is not None and not _redis_answers(config):
        mode = config.limits.on_store_error
        errors.append(f"limits.redis_url_env: Redis ({config.limits.redis_url_env}) is not reachable, so the "
                      + ("clients' limits would not hold (on_store_error = \"open\" serves uncounted)" if mode == "open"
                         else "limited clients would get 503 limits_unavailable (on_store_error = \"closed\")")
                      + "; start it or fix the URL")
    for name, route in config.routes.items():
        if (route.canary or route.shadow) and route.dataset is None:
            warnings.append(f"route {name}: it has canary or shadow targets but no dataset, so their replies are "
                            "not measured; set dataset = \"your-training.jsonl\" on the route")
    return errors, warnings


def _redis_answers(config: Config) -> bool:
    from ..clients.redis_store import redis_store_for

    async def ping() -> bool:
        store = redis_store_for(config)
        assert store is not None
        try:
            return await store.ping()
        finally:
            await store.close()

    return asyncio.run(ping())


def _upstream_problems(config: Config, name: str, row: dict[str, Any]) -> tuple[list[str], list[str]]:
    settings = config.upstreams[name]
    note = row["note"]
    if config.upstream(name).key_missing:
        return [f"upstream {name}: {settings.api_key_env} is not set; export it before starting the proxy"], []
    if row["reachable"] is False:
        return [f"upstream {name}: cannot reach {settings.base_url} ({note}); check base_url and the network"], []
    if note in ("HTTP 401", "HTTP 403"):
        return [f"upstream {name}: the key in {settings.api_key_env} was refused ({note})"], []
    if note and note != "built-in demo":
        return [], [f"upstream {name}: GET /models answered {note}; model ids could not be checked"]
    return [], []
