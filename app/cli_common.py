"""What the CLI's commands share: the user-facing error and config lookup."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .config import Config, ConfigError, load_config

CONFIG_ENV = "PERSONA_PROXY_CONFIG"


class UserError(click.ClickException):
    """A problem the user can fix; shown as one clean message, exit code 1."""


def config_path(value: str | Path | None) -> Path | None:
    value = value or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load(value: str | Path | None) -> Config:
    try:
        return load_config(config_path(value))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
