"""``persona-proxy card show`` and ``card export``: what a card makes the proxy send, and a route as a card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..cards import Book, Card, CardError, read_card
from ..cards.macros import unresolved
from ..config import RouteSettings
from ..proxy.card_persona import Persona, build_persona, render
from ..proxy.lorebook import Lore, fire
from ..tuning import fewshot
from ..tuning.tokens import TokenCounter, load_counter
from .common import UserError, load

CONFIG_HELP = "Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one)."


@click.group("card")
def card() -> None:
    """Character cards: see what one makes the proxy send, or export a route as one."""


@card.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--route", "route_name", metavar="ROUTE",
              help="Show it as this route would serve it (its system_prompt, user_name, few-shot and lorebook).")
@click.option("--message", metavar="TEXT", help="Also show which lorebook entries this user message triggers.")
@click.option("--json", "as_json", is_flag=True, help="Print it all as JSON.")
@click.option("--config", "config_file", metavar="PATH", help=CONFIG_HELP)
def show(file: Path, route_name: str | None, message: str | None, as_json: bool, config_file: str | None) -> None:
    """Exactly what the proxy sends for the card in FILE: prompt, few-shot, lorebook, and warnings."""
    try:
        card_read = read_card(file)
    except CardError as exc:
        raise UserError(f"{file}: cannot be used as a card: {exc}") from None
    settings, books = _route_for(card_read, file, route_name, config_file)
    counter = load_counter()
    persona, warnings = build_persona(settings, settings, card_read, books, counter)
    found = dict.fromkeys([*warnings, *card_read.warnings, *(w for b in books for w in b.warnings)])
    report = card_report(file, card_read, persona, counter, list(found))
    if message is not None:
        report["message"] = {"text": message, "fired": fired_by(persona, message)}
    report["route"] = route_name
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report)


def _route_for(card_read: Card, file: Path, route_name: str | None,
               config_file: str | None) -> tuple[RouteSettings, list[Book]]:
    """The route the card is shown on: a named one with this card as its persona_card, or a bare one."""
    books = [card_read.book] if card_read.book else []
    if route_name is None:
        return RouteSettings(upstream="-", model="-"), books
    config = load(config_file)
    if route_name not in config.routes:
        raise UserError(f"no route '{route_name}'; routes: {', '.join(sorted(config.routes))}")
    settings = config.routes[route_name].model_copy(update={"persona_card": file})
    if settings.lorebook is not None:
        books.append(config.book(settings.lorebook))
    return settings, books


def card_report(file: Path, card_read: Card, persona: Persona, counter: TokenCounter,
                warnings: list[str]) -> dict[str, Any]:
    rendered = render(persona, ())
    shots = list(rendered.few_shot)
    taken = sum(1 for m in shots if m["role"] == "user")
    if persona.left_out:
        warnings.append(f"{persona.left_out} of the card's example dialogues left out: over few_shot_count or "
                        "few_shot_max_tokens")
    texts = [rendered.prompt, rendered.post or "", *(m["content"] for m in shots),
             *(c for lore in persona.lore for c in lore.contents)]
    left = sorted({m for text in texts for m in unresolved(text)})
    if left:
        warnings.append(f"macros the proxy does not fill (sent as written): {', '.join(left)}")
    entries = [entry for lore in persona.lore for entry in _entries(lore)]
    for lore in persona.lore:
        total, budget = sum(lore.tokens), lore.book.token_budget
        if budget is not None and total > budget:
            warnings.append(f"lorebook {lore.book.name or '(unnamed)'}: its entries total {total} tokens, over its "
                            f"token_budget of {budget}: when too many fire, the lowest priority are left out")
    return {"file": str(file), "spec": card_read.spec, "name": card_read.name, "prompt": rendered.prompt,
            "prompt_tokens": counter.text(rendered.prompt), "few_shot": shots,
            "few_shot_examples": taken, "few_shot_tokens": fewshot.cost(shots, counter),
            "post_history_instructions": rendered.post, "greeting": card_read.text("first_mes") or None,
            "lorebook": entries, "warnings": warnings}


def _entries(lore: Lore) -> list[dict[str, Any]]:
    scan = lore.scan_depth
    return [{"book": lore.book.name or None, "entry": e.label, "keys": list(e.keys),
             "secondary_keys": list(e.secondary_keys) if e.selective else [], "regex": e.use_regex,
             "case_sensitive": e.case_sensitive, "constant": e.constant, "enabled": not e.never,
             "placement": f"at depth {e.depth} as {e.role}" if e.position == "depth" else e.position,
             "insertion_order": e.insertion_order, "priority": e.priority, "tokens": lore.tokens[i],
             "scan_depth": scan}
            for i, e in enumerate(lore.book.entries)]


def fired_by(persona: Persona, message: str) -> list[str]:
    return [lore.book.entries[i].label for lore in persona.lore for i in fire(lore, [message])]


def _print(report: dict[str, Any]) -> None:
    click.echo(f"{report['name']} ({report['spec']}, {report['file']})")
    click.echo(f"\nprompt ({report['prompt_tokens']} tokens, lorebook entries that always fire included):")
    click.echo(_indent(report["prompt"] or "(empty)"))
    click.echo(f"\nfew-shot: {report['few_shot_examples']} exchange(s), {report['few_shot_tokens']} tokens")
    for m in report["few_shot"]:
        click.echo(_indent(f"{m['role']}: {m['content']}"))
    if report["post_history_instructions"]:
        click.echo("\nafter the conversation (system):")
        click.echo(_indent(report["post_history_instructions"]))
    if report["lorebook"]:
        click.echo(f"\nlorebook: {len(report['lorebook'])} entr{'y' if len(report['lorebook']) == 1 else 'ies'}")
        for e in report["lorebook"]:
            keys = "always" if e["constant"] else ", ".join(e["keys"]) or "(no keys)"
            if e["secondary_keys"]:
                keys += " AND " + ", ".join(e["secondary_keys"])
            state = "" if e["enabled"] else " [disabled]"
            click.echo(f"  {e['entry']}: {keys}{' (regex)' if e['regex'] else ''} -> {e['placement']}, order "
                       f"{e['insertion_order']:g}, priority {e['priority']:g}, {e['tokens']} tok{state}")
    if "message" in report:
        fired = report["message"]["fired"]
        click.echo(f"\nthis message triggers: {', '.join(fired) if fired else 'no entries'}")
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


from .card_export import export  # noqa: E402  (the export command lives in its own module)

card.add_command(export)
