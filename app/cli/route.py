"""``persona-proxy route ...``: edit the routes of a config file in place."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import ConfigError
from ..config.editing import upsert_route
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
