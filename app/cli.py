"""The ``persona-proxy`` command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from . import __version__
from .config import ConfigError, load_config

CONFIG_ENV = "PERSONA_PROXY_CONFIG"


class UserError(click.ClickException):
    """A problem the user can fix; shown as one clean message, exit code 1."""


def _config_path(value: str | None) -> Path | None:
    value = value or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="persona-proxy")
def cli() -> None:
    """persona-proxy: fine-tuned personas behind an OpenAI-compatible API."""


@cli.command()
@click.option("--config", "config_path", metavar="PATH",
              help=f"TOML config file (default: ${CONFIG_ENV}, else the built-in demo config).")
@click.option("--host", help="Address to bind (overrides server.host).")
@click.option("--port", type=int, help="Port to bind (overrides server.port).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log verbosity (overrides server.log_level).")
def serve(config_path: str | None, host: str | None, port: int | None, log_level: str | None) -> None:
    """Run the proxy server."""
    import uvicorn

    from .server import create_app

    try:
        config = load_config(_config_path(config_path),
                             overrides={"host": host, "port": port, "log_level": log_level})
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    server = config.server
    _setup_logging(server.log_level)
    uvicorn.Server(uvicorn.Config(
        create_app(config),
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=False,
        server_header=False,
        # X-Forwarded-* is not trusted from anyone by default.
        proxy_headers=False,
    )).run()


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every upstream request at INFO; our own access lines say more.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main() -> None:
    cli(prog_name="persona-proxy")
