"""The ``persona-proxy`` command: the group, with every command group attached.

Commands are imported when they run, not when the group is built: the
server process (``serve``) then never loads the evaluation, fine-tuning and
config-editing code (tomlkit, tiktoken's tables, ...), which kept about
4 MB in every worker.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

# name -> (module in app.cli, attribute)
COMMANDS = {
    "card": ("card", "card"),
    "chat": ("chat", "chat_command"),
    "check": ("check", "check_command"),
    "clients": ("clients", "clients_command"),
    "dataset": ("dataset", "dataset"),
    "eval": ("eval", "eval_command"),
    "finetune": ("finetune", "finetune"),
    "route": ("route", "route"),
    "routes": ("routes", "routes_command"),
    "serve": ("serve", "serve"),
    "succession": ("succession", "succession_command"),
    "usage": ("usage", "usage_command"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(f"{__package__}.{target[0]}"), target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="persona-proxy")
def cli() -> None:
    """persona-proxy: fine-tuned personas behind an OpenAI-compatible API."""


def main() -> None:
    cli(prog_name="persona-proxy")
