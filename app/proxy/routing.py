"""The route table: virtual model names clients ask for, and what serves them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..config import CanarySettings, Config, RouteSettings, ShadowSettings
from ..config.targets import TargetFields
from ..tuning import fewshot
from ..tuning.fidelity import Profile
from ..tuning.tokens import TokenCounter, load_counter
from .errors import model_not_found

if TYPE_CHECKING:
    from ..cards import Card
    from .card_persona import Persona


@dataclass(frozen=True, slots=True)
class Target:
    """One model that can answer for a route: the primary (index 0), a fallback, a canary or a shadow."""

    index: int  # the primary is 0 and fallbacks count on from 1; canaries and shadows count in their own table
    upstream: str
    model: str
    prompt: str | None
    few_shot: tuple[dict[str, str], ...]
    params: dict[str, Any]
    shutdown_date: dt.date | None
    role: str = "primary"  # primary | fallback | canary | shadow
    share: float = 0.0  # a canary's share of conversations, a shadow's sample of requests
    max_in_flight: int = 0  # a shadow's concurrency cap
    # A card or lorebook persona with work to do per request (entries to pick, {{user}}, post-history);
    # None for everything else, which pays nothing for cards.
    persona: Persona | None = None

    @property
    def label(self) -> str:
        return f"{self.upstream}/{self.model}"

    @property
    def name(self) -> str:
        """``MODEL@UPSTREAM``, as the succession report and ``route promote`` spell a target."""
        return f"{self.model}@{self.upstream}"


@dataclass(frozen=True, slots=True)
class Route:
    """One virtual model: its name, its persona and the targets that serve it, in order."""

    name: str
    settings: RouteSettings
    created: int
    # The name JSON-encoded once, for rewriting ``model`` in every response.
    name_json: bytes
    targets: tuple[Target, ...] = ()
    canaries: tuple[Target, ...] = ()
    shadows: tuple[Target, ...] = ()
    # The training replies' profile, when the route names a ``dataset``: live fidelity measures against it.
    profile: Profile | None = None
    # What loading its cards and lorebooks found worth saying (logged at start and on reload).
    warnings: tuple[str, ...] = ()

    @property
    def every_target(self) -> tuple[Target, ...]:
        """Primary, fallbacks, canaries, then shadows."""
        return (*self.targets, *self.canaries, *self.shadows)

    @property
    def succession(self) -> bool:
        """Whether requests need a conversation key: a canary, a shadow or live fidelity."""
        return bool(self.canaries or self.shadows or self.profile)

    @property
    def upstream(self) -> str:
        return self.settings.upstream

    def model_object(self) -> dict[str, Any]:
        """This route as an OpenAI model object; no persona text, no upstream id."""
        obj: dict[str, Any] = {
            "id": self.name,
            "object": "model",
            "created": self.created,
            "owned_by": "persona-proxy",
            "name": self.settings.display_name or self.name,
        }
        if self.settings.description:
            obj["description"] = self.settings.description
        return obj


class RouteTable:
    """Resolves a requested model name to a :class:`Route`."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self._routes = routes

    @classmethod
    def from_config(cls, config: Config, counter: Callable[[], TokenCounter] = load_counter) -> RouteTable:
        created = _created(config)
        loaded: list[TokenCounter] = []

        def shared_counter() -> TokenCounter:
            # Only routes with few-shot examples need a tokenizer; load it once.
            if not loaded:
                loaded.append(counter())
            return loaded[0]

        routes = {}
        for name, settings in config.routes.items():
            warnings: list[str] = []
            load = Loader(settings, config.cards, shared_counter, warnings)
            routes[name] = Route(name, settings, created, orjson.dumps(name), load.targets(),
                                 load.extra("canary"), load.extra("shadow"), profile_of(settings),
                                 tuple(dict.fromkeys(f"routes.{name}: {w}" for w in warnings)))
        return cls(routes)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def resolve(self, model: object) -> Route:
        """The route named ``model``, or a 404 ``model_not_found``."""
        route = self._routes.get(model) if isinstance(model, str) else None
        if route is None:
            raise model_not_found(model)
        return route



@dataclass(slots=True)
class Loader:
    """Resolves one route's targets: prompts, few-shot exchanges, cards and lorebooks."""

    route: RouteSettings
    cards: Mapping[Path, Any]
    counter: Callable[[], TokenCounter]
    warnings: list[str]

    def targets(self) -> tuple[Target, ...]:
        """The primary target and the fallbacks."""
        return tuple(self.target(spec, index, "fallback" if index else "primary")
                     for index, spec in enumerate([self.route, *self.route.fallbacks]))

    def extra(self, table: str) -> tuple[Target, ...]:
        """The canary or shadow targets, resolved like fallbacks (the route's persona, their own keys)."""
        specs: list[CanarySettings] | list[ShadowSettings] = getattr(self.route, table)
        return tuple(self.target(spec, index, table) for index, spec in enumerate(specs))

    def target(self, spec: TargetFields, index: int, role: str) -> Target:
        route = self.route
        prompt, shots, persona = self._persona(spec)
        params = dict(route.params) if role == "primary" else {**route.params, **getattr(spec, "params", {})}
        share = getattr(spec, "share", getattr(spec, "sample", 0.0))
        return Target(index, spec.upstream, spec.model, prompt, shots, params, spec.shutdown_date, role,
                      share, getattr(spec, "max_in_flight", 0), persona)

    def _persona(self, spec: TargetFields) -> tuple[str | None, tuple[dict[str, str], ...], Persona | None]:
        route = self.route
        card_path, book_path = spec.persona_card or route.persona_card, spec.lorebook or route.lorebook
        card: Card | None = self.cards[card_path] if card_path else None
        books = [b for b in (card.book if card else None, self.cards[book_path] if book_path else None) if b]
        if card is None and not books:
            prompt = route.system_prompt
            if spec.system_prompt_extra:
                prompt = f"{prompt}\n\n{spec.system_prompt_extra}" if prompt else spec.system_prompt_extra
            shots: list[dict[str, str]] = []
            if spec.few_shot_from is not None:
                shots = fewshot.select(spec.few_shot_from, spec.few_shot_count, spec.few_shot_max_tokens,
                                       self.counter())
            return prompt, tuple(shots), None
        from .card_persona import build_persona, render  # only for routes with a card or a lorebook

        persona, warnings = build_persona(route, spec, card, books, self.counter())
        self.warnings += [*warnings, *(card.warnings if card else ()), *(w for b in books for w in b.warnings)]
        static = render(persona, ())
        # Without per-request work the rendered text is all there is: serve it like any prompt.
        dynamic = persona.lore or persona.personal or persona.post
        return static.prompt or None, static.few_shot, persona if dynamic else None


def profile_of(route: RouteSettings) -> Profile | None:
    """What the route's training replies look like, for live fidelity; None without a ``dataset``."""
    if route.dataset is None:
        return None
    replies = [reply for _, reply in fewshot.exchanges(route.dataset)]
    return Profile.of(replies, route.eval_markers, route.eval_breaks)


def _created(config: Config) -> int:
    # A stable timestamp across restarts: when the config file last changed.
    if config.source is not None:
        try:
            return int(config.source.stat().st_mtime)
        except OSError:
            pass
    return int(time.time())
