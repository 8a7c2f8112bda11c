"""What the CLI's commands share: the user-facing error and config lookup."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from ..config import Config, ConfigError, load_config

CONFIG_ENV = "PERSONA_PROXY_CONFIG"


class UserError(click.ClickException):
    """A problem the user can fix; shown as one clean message, exit code 1."""


def format_table(rows: Sequence[Sequence[str]], *, numbers: bool = False) -> list[str]:
    """Aligned text columns; with ``numbers``, every column but the first is right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(width) if numbers and i else cell.ljust(width)
                      for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def config_path(value: str | Path | None) -> Path | None:
    value = value or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load(value: str | Path | None) -> Config:
    try:
        return load_config(config_path(value))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
