"""The ``persona-proxy`` command: the group, with every command group attached."""

from __future__ import annotations

import click

from .. import __version__
from .chat import chat_command
from .check import check_command
from .dataset import dataset
from .eval import eval_command
from .finetune import finetune
from .route import route
from .routes import routes_command
from .serve import serve
from .usage import usage_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="persona-proxy")
def cli() -> None:
    """persona-proxy: fine-tuned personas behind an OpenAI-compatible API."""


def main() -> None:
    cli(prog_name="persona-proxy")


for command in (serve, check_command, dataset, route, finetune, routes_command, usage_command, eval_command,
                chat_command):
    cli.add_command(command)
