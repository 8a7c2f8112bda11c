"""A persona from a character card and lorebooks: assembled at load, rendered per request.

The prompt, in this order, each part only when present, separated by a blank line:

1. the card's ``system_prompt``, its ``{{original}}`` being the route's own
   ``system_prompt`` (a card without one: the route's ``system_prompt``; no
   card: the route's ``system_prompt``);
2. lorebook entries placed ``before_char``;
3. the character: the card's ``description``, then ``[{{char}}'s personality:
   ...]`` and ``[Circumstances and context of the dialogue: ...]`` (labelled as
   SillyTavern long wrote them); without a card, nothing;
4. lorebook entries placed ``after_char``;
5. the target's ``system_prompt_extra``.

Then the few-shot exchanges (the card's ``mes_example`` blocks first, then
``few_shot_from``'s, in one count and token budget), the conversation with
``@@depth`` entries inside it, and ``post_history_instructions`` last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cards import Book, Card
from ..cards.macros import USER, examples, has_original, resolve, with_original
from ..config import RouteSettings
from ..config.targets import TargetFields
from ..tuning import fewshot
from ..tuning.tokens import TokenCounter
from .lorebook import Lore, fire, lore_of, recent_texts

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Insert:
    """A lorebook entry inside the conversation: ``depth`` messages after it."""

    depth: int
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Persona:
    """What a card target renders per request (a target without card or lorebook has none)."""

    head: str
    character: str
    tail: str
    few_shot: tuple[Message, ...]
    post: str
    lore: tuple[Lore, ...]
    personal: bool  # some part says {{user}}: filled in per request
    user_name: str
    scan_depth: int
    left_out: int = 0  # the card's example dialogues that did not fit few_shot_count or few_shot_max_tokens


@dataclass(frozen=True, slots=True)
class Rendered:
    prompt: str
    few_shot: tuple[Message, ...]
    inserts: tuple[Insert, ...]
    post: str | None
    fired: tuple[str, ...]  # the entries' labels, for the debug log


def build_persona(route: RouteSettings, spec: TargetFields, card: Card | None, books: Sequence[Book],
                  counter: TokenCounter) -> tuple[Persona, list[str]]:
    """The target's persona and what its load should warn about."""
    warnings: list[str] = []
    own = route.system_prompt or ""
    char = card.name if card else (route.display_name or "")
    # Without a card the route's prompt stands where a card's system_prompt would: a route exported as a
    # card and served from it again places its lorebook entries the same way.
    head, character, post = own, "", ""
    if card is not None:
        card_prompt = card.text("system_prompt")
        if not card_prompt.strip():
            head = own
        elif has_original(card_prompt):
            head = with_original(card_prompt, own)
        else:
            head = card_prompt
            if own:
                warnings.append("the card's system_prompt replaces the route's system_prompt (put {{original}} "
                                "in the card's system_prompt where the route's should go, to keep both)")
        character = "\n\n".join(part for part in _character(card) if part)
        post = with_original(card.text("post_history_instructions"), "")
    parts = [resolve(text, char).strip() for text in (head, character, spec.system_prompt_extra or "", post)]
    shots, left_out = _few_shot(card, char, spec, counter)
    lore = tuple(lore_of(book, char, counter) for book in books)
    personal = any(USER in text for text in (*parts, *(m["content"] for m in shots), *(c for lo in lore
                                                                                        for c in lo.contents)))
    depth = max((lo.scan_depth for lo in lore), default=0)
    return Persona(parts[0], parts[1], parts[2], shots, parts[3], lore, personal, route.user_name, depth,
                   left_out), warnings


def _character(card: Card) -> list[str]:
    personality, scenario = card.text("personality").strip(), card.text("scenario").strip()
    return [card.text("description").strip(),
            f"[{{{{char}}}}'s personality: {personality}]" if personality else "",
            f"[Circumstances and context of the dialogue: {scenario}]" if scenario else ""]


def _few_shot(card: Card | None, char: str, spec: TargetFields,
              counter: TokenCounter) -> tuple[tuple[Message, ...], int]:
    """The card's example blocks first, then ``few_shot_from``'s, in one count and budget; and how many
    of the card's did not fit."""
    chosen: list[Message] = []
    count, spent, left_out = 0, 0, 0
    names = (char, card.text("name").strip()) if card else ()
    for block in examples(resolve(card.text("mes_example"), char), names) if card else []:
        cost = fewshot.cost(block, counter)
        if count < spec.few_shot_count and spent + cost <= spec.few_shot_max_tokens:
            chosen += block
            count, spent = count + 1, spent + cost
        else:
            left_out += 1
    if spec.few_shot_from is not None and count < spec.few_shot_count and spent < spec.few_shot_max_tokens:
        chosen += fewshot.select(spec.few_shot_from, spec.few_shot_count - count,
                                 spec.few_shot_max_tokens - spent, counter)
    return tuple(chosen), left_out


def render(persona: Persona, items: Sequence[Any], user_name: str | None = None) -> Rendered:
    """The persona for one request: lorebook entries its conversation triggers, and who the user is."""
    before: list[str] = []
    after: list[str] = []
    inserts: list[Insert] = []
    fired: list[str] = []
    if persona.lore:
        texts = recent_texts(items, persona.scan_depth)
        for lore in persona.lore:
            for i in fire(lore, texts):
                entry, content = lore.book.entries[i], lore.contents[i]
                fired.append(entry.label)
                if entry.position == "depth":
                    inserts.append(Insert(entry.depth, entry.role, content))
                else:
                    (before if entry.position == "before_char" else after).append(content)
    prompt = "\n\n".join(p for p in (persona.head, *before, persona.character, *after, persona.tail) if p)
    post = persona.post or None
    shots = persona.few_shot
    if persona.personal:
        name = user_name or persona.user_name
        prompt = prompt.replace(USER, name)
        post = post.replace(USER, name) if post else None
        shots = tuple({"role": m["role"], "content": m["content"].replace(USER, name)} for m in shots)
        inserts = [Insert(i.depth, i.role, i.content.replace(USER, name)) for i in inserts]
    return Rendered(prompt, shots, tuple(inserts), post, tuple(fired))
