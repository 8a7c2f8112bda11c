"""``persona-proxy dataset ...``: check a fine-tuning dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..tuning.dataset import check_dataset
from ..tuning.report import render, summary
from ..tuning.tokens import load_counter
from .common import UserError


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
