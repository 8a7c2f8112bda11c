"""``persona-proxy clients``: every named client, its routes and limits, what it used, and its key hashes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from ..clients.report import client_report
from .common import UserError, format_table, load


def _limits(limits: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in limits.items() if k not in ("budget_usd", "budget_period")]
    if "budget_usd" in limits:
        parts.append(f"${limits['budget_usd']:g}/{limits['budget_period']}")
    return ", ".join(parts) or "none"


def _used(entry: dict[str, Any]) -> str:
    used, limits = entry["used"], entry["limits"]
    parts = [f"{used['requests']} req", f"{used['tokens']:,} tok"]
    if used["in_flight"] is not None:
        parts.append(f"{used['in_flight']} in flight")
    if used["spent_usd"] is not None and "budget_usd" in limits:
        parts.append(f"${used['spent_usd']:.4f} of ${limits['budget_usd']:g}")
    return ", ".join(parts)


@click.command("clients")
@click.option("--json", "as_json", is_flag=True, help="Print every client as JSON.")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def clients_command(as_json: bool, config_file: str | None) -> None:
    """Every [clients.NAME]: routes, limits, use this minute and budget period, and the key hashes it accepts."""
    config = load(config_file)
    if not config.clients:
        raise UserError("no clients in this config; add a [clients.NAME] table with key_env (see "
                        "config.example.toml)")
    try:
        entries = asyncio.run(client_report(config))
    except ConnectionError as exc:
        raise UserError(f"{exc}; start it, or check the URL in {config.limits.redis_url_env}") from None
    except Exception as exc:  # an unreadable usage store: its driver's message may hold a URL
        raise UserError(f"cannot read what the clients used ({type(exc).__name__})") from None
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    rows = [("client", "routes", "limits", "per user", "used (this minute, this period)", "keys")]
    for e in entries:
        rows.append((e["client"], ", ".join(e["routes"]), _limits(e["limits"]), _limits(e["per_user"]), _used(e),
                     ", ".join(e["keys"]) or f"none ({e['key_env']} is not set)"))
    for line in format_table(rows):
        click.echo(line)
    source = entries[0]["source"]
    click.echo("used: from Redis, shared by every replica" if source == "redis" else
               "used: from the usage records (without Redis the live counters are inside the serving process)")
