"""``persona-proxy dataset ...`` and ``persona-proxy route ...``: the dataset and the config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli_common import UserError
from .config import ConfigError
from .config_edit import upsert_route
from .dataset import check_dataset
from .dataset_report import render, summary
from .tokens import load_counter


@click.group()
def dataset() -> None:
    """Check fine-tuning datasets."""


@dataset.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", metavar="BASE", help="Base model to check limits and cost for.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def dataset_check(file: Path, model: str | None, as_json: bool) -> None:
    """Check FILE against the chat fine-tuning format; exit 1 if the provider would reject it."""
    data = summary(check_dataset(file, load_counter(), model), model)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else render(data))
    sys.exit(0 if data["valid"] else 1)


def dominant_prompt(path: Path) -> str:
    """The system prompt most examples of a dataset were trained with."""
    report = check_dataset(path, load_counter())
    if report.dominant_system_prompt is None:
        raise UserError(f"{path}: no example has a system prompt to take")
    return report.dominant_system_prompt


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
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default="config.toml", show_default=True, help="Config file to edit.")
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
