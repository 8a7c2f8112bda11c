"""``persona-proxy card export ROUTE -o maid.png``: a route's persona as a character card other apps read.

The card carries what the route's primary target serves: its persona prompt
as ``system_prompt`` (a route served from a card keeps the card's own fields,
unknown ones included), its few-shot exchanges as ``mes_example``, a greeting,
the lorebook. Served again from the card, a route sends the same prompt and
the same exchanges.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..cards import Card
from ..cards.export import card_object, to_json, to_png
from ..cards.macros import example_text, has_original, with_original
from ..cards.png import SIGNATURE, avatar
from ..config import Config, RouteSettings
from ..proxy.routing import Loader, Target
from ..tuning import fewshot
from ..tuning.greeting import typical_greeting
from ..tuning.tokens import TokenCounter, load_counter
from .common import UserError, load


@click.command("export")
@click.argument("route_name", metavar="ROUTE")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Where to write the card (maid.png, or maid.json with --json).")
@click.option("--json", "as_json", is_flag=True, help="Write the card as JSON instead of a PNG.")
@click.option("--greeting", metavar="TEXT", help="Her first message (default: from the card or the training set).")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False),
              help="A PNG to carry the card, kept as it is (default: the route's card's own PNG, else a plain "
                   "generated avatar).")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def export(route_name: str, output: Path, as_json: bool, greeting: str | None, image: Path | None,
           config_file: str | None) -> None:
    """Export ROUTE as a V3 character card (with a V2 copy beside it, as SillyTavern writes them)."""
    config = load(config_file)
    if route_name not in config.routes:
        raise UserError(f"no route '{route_name}'; routes: {', '.join(sorted(config.routes))}")
    settings = config.routes[route_name]
    counter = functools.cache(load_counter)  # the tokenizer once, for every target and the training set
    loader = Loader(settings, config.cards, counter, [])
    targets = (*loader.targets(), *loader.extra("canary"))
    target = targets[0]
    base = config.card(settings.persona_card) if settings.persona_card else None
    fields = _fields(route_name, settings, target, base, _examples(settings, targets, counter))
    first = greeting if greeting is not None else (base.text("first_mes") if base else "") or _greeting(settings)
    book = _book(config, settings, base)
    card = card_object(base.data if base else None, first_mes=first or "", character_book=book, **fields)
    if image is None and settings.persona_card is not None and settings.persona_card.read_bytes()[:8] == SIGNATURE:
        image = settings.persona_card  # the card's own art, kept as it is
    payload = to_json(card) if as_json or output.suffix.lower() == ".json" else to_png(card, _image(image, card))
    try:
        output.write_bytes(payload)
    except OSError as exc:
        raise UserError(f"cannot write {output} ({exc.strerror})") from None
    shots = sum(1 for line in card["data"]["mes_example"].split("\n") if line == "<START>")
    kind = "PNG with ccv3 and chara chunks" if payload.startswith(SIGNATURE) else "JSON"
    click.echo(f"wrote {output}: {card['data']['name']}, V3 card ({kind}), {shots} example exchange(s), "
               f"greeting {'yes' if first else 'none'}, lorebook entries {len(_entry_list(book)) if book else 0}")


def _examples(settings: RouteSettings, targets: tuple[Target, ...],
              counter: Callable[[], TokenCounter]) -> list[dict[str, str]]:
    """The primary's few-shot exchanges; a fine-tune has none, so then a fallback's or canary's (the
    successors'), else the training set's (``dataset``), chosen as ``few_shot_from`` would."""
    primary = targets[0]
    if primary.persona is not None:
        return list(primary.persona.few_shot)  # {{user}} still a macro, as in a card
    found = next((t.few_shot for t in targets if t.few_shot), ())
    if not found and settings.dataset is not None:
        found = tuple(fewshot.select(Path(settings.dataset), settings.few_shot_count, settings.few_shot_max_tokens,
                                     counter()))
    return list(found)


def _fields(route_name: str, settings: RouteSettings, target: Target, base: Card | None,
            shots: list[dict[str, str]]) -> dict[str, Any]:
    note = (f"Exported from persona-proxy route '{route_name}' (model {target.model} on upstream "
            f"{target.upstream}) on {dt.date.today().isoformat()}.")
    extension = {"route": route_name, "model": target.model, "upstream": target.upstream}
    if base is None:
        persona = target.persona
        # The prompt without the lorebook's entries (they go in the card's book), {{user}} kept as a macro.
        prompt = "\n\n".join(p for p in (persona.head, persona.tail) if p) if persona else target.prompt or ""
        return {"name": settings.display_name or route_name, "system_prompt": prompt,
                "mes_example": example_text(shots), "creator_notes": note,
                "creator": "persona-proxy", "extensions": {"persona_proxy": extension}}
    # A card route keeps its card: only what the route added is written into it.
    own = settings.system_prompt or ""
    prompt = base.text("system_prompt")
    prompt = with_original(prompt, own) if has_original(prompt) else (prompt or own)
    notes = "\n\n".join(n for n in (base.text("creator_notes"), note) if n)
    return {"system_prompt": prompt, "mes_example": example_text(shots), "creator_notes": notes,
            "extensions": {**(base.data.get("extensions") or {}), "persona_proxy": extension}}


def _greeting(settings: RouteSettings) -> str | None:
    sources = [settings.dataset, *(t.few_shot_from for t in (settings, *settings.fallbacks, *settings.canary))]
    return next((g for path in sources if path is not None and (g := typical_greeting(Path(path)))), None)


def _book(config: Config, settings: RouteSettings, base: Card | None) -> dict[str, Any] | None:
    """The card's book, with a standalone lorebook's entries after its own (or that lorebook alone)."""
    own = dict(base.book.raw) if base and base.book else None
    extra = config.book(settings.lorebook).raw if settings.lorebook else None
    if own is None:
        return dict(extra) if extra else None
    if extra:
        own["entries"] = [*_entry_list(own), *_entry_list(extra)]
    return own


def _entry_list(book: dict[str, Any]) -> list[Any]:
    entries = book.get("entries") or []
    return list(entries.values()) if isinstance(entries, dict) else list(entries)


def _image(path: Path | None, card: dict[str, Any]) -> bytes:
    if path is None:
        return avatar(seed=card["data"]["name"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read --image {path} ({exc.strerror})") from None
    if not data.startswith(SIGNATURE):
        raise UserError(f"--image {path} is not a PNG; convert it to PNG first (cards live in PNG text chunks)")
    return data

