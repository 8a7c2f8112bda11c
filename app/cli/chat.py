"""``persona-proxy chat ROUTE [PROMPT]``: hear a target before (and after) the numbers."""

from __future__ import annotations

import asyncio

import click

from ..evals.runner import candidate, retired_on
from ..evals.talk import Conversation
from ..proxy.errors import ProxyError
from ..proxy.lifecycle import utc_today
from ..proxy.routing import Route, Target
from .common import UserError, load
from .eval import _route


@click.command("chat")
@click.argument("route_name", metavar="ROUTE")
@click.argument("prompt", required=False)
@click.option("--target", "target_spec", metavar="MODEL@UPSTREAM",
              help="Talk to this target of the route (or a candidate) instead of the first that can serve.")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def chat_command(route_name: str, prompt: str | None, target_spec: str | None, config_file: str | None) -> None:
    """Ask ROUTE one PROMPT, or chat with it turn by turn (Ctrl-C ends a reply, Ctrl-D the chat)."""
    config = load(config_file)
    route = _route(config, route_name)
    target = _pick(route, target_spec)
    if target.upstream not in config.upstreams:
        raise UserError(f"--target {target_spec}: no [upstreams.{target.upstream}] in the config")
    conversation = Conversation(config, route, target)
    if prompt is not None:
        _turn(conversation, prompt)
        return
    click.echo(f"{route.name} via {target.model}@{target.upstream} (Ctrl-C ends a reply, Ctrl-D the chat)", err=True)
    while True:
        try:
            text = input("you> ")
        except EOFError:
            click.echo(err=True)
            return
        if text.strip():
            _turn(conversation, text)


def _pick(route: Route, spec: str | None) -> Target:
    if spec is None:
        usable = [t for t in route.targets if not retired_on(t, utc_today())]
        return (usable or list(route.targets))[0]
    named = [t for t in route.every_target if t.name == spec]
    try:
        return named[0] if named else candidate(route, spec, len(route.targets))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _turn(conversation: Conversation, text: str) -> None:
    async def stream() -> None:
        # One event loop per turn (input() blocks between turns), so the turn's connections close with it.
        try:
            async for piece in conversation.say(text):
                click.echo(piece, nl=False)
        finally:
            await conversation.close()

    try:
        asyncio.run(stream())
    except KeyboardInterrupt:
        click.echo(" [stopped]", nl=False)
    except (ProxyError, RuntimeError) as exc:
        raise UserError(getattr(exc, "message", str(exc))) from None
    click.echo()
