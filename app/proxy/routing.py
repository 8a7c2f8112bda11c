"""The route table: virtual model names clients ask for, and what serves them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import CanarySettings, Config, RouteSettings, ShadowSettings
from ..config.targets import TargetFields
from ..tuning import fewshot
from ..tuning.fidelity import Profile
from ..tuning.tokens import TokenCounter, load_counter
from .errors import model_not_found


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

        return cls({
            name: Route(name, settings, created, orjson.dumps(name), targets_of(settings, shared_counter),
                        extra_targets(settings, "canary", shared_counter),
                        extra_targets(settings, "shadow", shared_counter), profile_of(settings))
            for name, settings in config.routes.items()
        })

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



def targets_of(route: RouteSettings, counter: Callable[[], TokenCounter]) -> tuple[Target, ...]:
    """The primary target and the fallbacks, with their prompts and few-shot examples resolved."""
    return tuple(_target(route, spec, index, "fallback" if index else "primary", counter)
                 for index, spec in enumerate([route, *route.fallbacks]))


def extra_targets(route: RouteSettings, table: str, counter: Callable[[], TokenCounter]) -> tuple[Target, ...]:
    """A route's canary or shadow targets, resolved like fallbacks (the route's persona, their own keys)."""
    specs: list[CanarySettings] | list[ShadowSettings] = getattr(route, table)
    return tuple(_target(route, spec, index, table, counter) for index, spec in enumerate(specs))


def _target(route: RouteSettings, spec: TargetFields, index: int, role: str,
            counter: Callable[[], TokenCounter]) -> Target:
    prompt = route.system_prompt
    if spec.system_prompt_extra:
        prompt = f"{prompt}\n\n{spec.system_prompt_extra}" if prompt else spec.system_prompt_extra
    few_shot: list[dict[str, str]] = []
    if spec.few_shot_from is not None:
        few_shot = fewshot.select(spec.few_shot_from, spec.few_shot_count, spec.few_shot_max_tokens, counter())
    params = dict(route.params) if role == "primary" else {**route.params, **getattr(spec, "params", {})}
    share = getattr(spec, "share", getattr(spec, "sample", 0.0))
    return Target(index, spec.upstream, spec.model, prompt, tuple(few_shot), params, spec.shutdown_date, role,
                  share, getattr(spec, "max_in_flight", 0))


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
