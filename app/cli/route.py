"""``persona-proxy route ...``: edit the routes of a config file in place."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..config import ConfigError
from ..config.editing import promote_target, upsert_route
from .common import CONFIG_ENV, UserError
from .dataset import dominant_prompt


@click.group()
def route() -> None:
    """Edit routes in the config file."""


@route.command("add")
@click.argument("name")
@click.option("--model", "model_id", required=True, metavar="ID", help="Upstream model id, e.g. ft:gpt-4o-mini-...")
@click.option("--upstream", help="An [upstreams.NAME] of the config (default: openai).")
@click.option("--system-prompt", help="The persona's system prompt.")
@click.option("--system-prompt-from", "prompt_from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="DATASET", help="Take the prompt most examples of this JSONL were trained with.")
@click.option("--display-name", help="Name shown in model pickers.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar=CONFIG_ENV,
              default="config.toml", show_default=True, help=f"Config file to edit (or ${CONFIG_ENV}).")
def route_add(name: str, model_id: str, upstream: str | None, system_prompt: str | None,
              prompt_from: Path | None, display_name: str | None, config_path: Path) -> None:
    """Add route NAME (or update it), keeping the config file's comments and layout."""
    if system_prompt is not None and prompt_from is not None:
        raise UserError("give --system-prompt or --system-prompt-from, not both")
    prompt = dominant_prompt(prompt_from) if prompt_from is not None else system_prompt
    values: dict[str, str] = {"upstream": upstream or "openai", "model": model_id}
    if display_name:
        values["display_name"] = display_name
    if prompt is not None:
        values["system_prompt"] = prompt
    created = write_route(config_path, name, values)
    click.echo(f"{'Added' if created else 'Updated'} route '{name}' in {config_path}: {model_id}")


def write_route(config_path: Path, name: str, values: dict[str, str]) -> bool:
    if not config_path.exists():
        raise UserError(f"{config_path}: no such config file; copy config.example.toml first")
    try:
        return upsert_route(config_path, name, values)
    except ConfigError as exc:
        raise UserError(f"route not written: {exc}") from None


@route.command("promote")
@click.argument("name", metavar="ROUTE")
@click.argument("target", metavar="MODEL@UPSTREAM")
@click.option("--dry-run", is_flag=True, help="Print the change as a diff; write nothing.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar=CONFIG_ENV,
              default="config.toml", show_default=True, help=f"Config file to edit (or ${CONFIG_ENV}).")
def route_promote(name: str, target: str, dry_run: bool, config_path: Path) -> None:
    """Make TARGET the primary of ROUTE: a canary, shadow or fallback of it, or a new MODEL@UPSTREAM.

    The old primary becomes the first fallback, with its own keys (kept until its shutdown date); the
    promoted entry leaves its table and brings its system_prompt_extra, few-shot and params with it.
    The file keeps its comments and layout, and is checked before it replaces the old one.
    """
    if not config_path.exists():
        raise UserError(f"{config_path}: no such config file; copy config.example.toml first")
    try:
        old, new, origin = promote_target(config_path, name, target, write=not dry_run)
    except ConfigError as exc:
        raise UserError(f"route not changed: {exc}") from None
    if dry_run:
        diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                    str(config_path), f"{config_path} (promoted)")
        text = "".join(diff)
        click.echo(text, nl=not text.endswith("\n"))
        click.echo(f"dry run: {config_path} not changed", err=True)
        return
    click.echo(f"Promoted {target} ({origin}) to primary of route '{name}' in {config_path}; "
               "the old primary is now its first fallback.")
    click.echo("A running server picks it up on SIGHUP (kill -HUP <pid of persona-proxy serve>), or within "
               "2 s when server.reload_on_change = true.")
