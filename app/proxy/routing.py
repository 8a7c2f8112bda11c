"""The route table: virtual model names clients ask for, and what serves them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import Config, RouteSettings
from ..tuning import fewshot
from ..tuning.tokens import TokenCounter, load_counter
from .errors import model_not_found


@dataclass(frozen=True, slots=True)
class Target:
    """One model that can answer for a route: the primary (index 0) or a fallback."""

    index: int
    upstream: str
    model: str
    prompt: str | None
    few_shot: tuple[dict[str, str], ...]
    params: dict[str, Any]
    shutdown_date: dt.date | None

    @property
    def label(self) -> str:
        return f"{self.upstream}/{self.model}"


@dataclass(frozen=True, slots=True)
class Route:
    """One virtual model: its name, its persona and the targets that serve it, in order."""

    name: str
    settings: RouteSettings
    created: int
    # The name JSON-encoded once, for rewriting ``model`` in every response.
    name_json: bytes
    targets: tuple[Target, ...] = ()

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
            name: Route(name, settings, created, orjson.dumps(name), targets_of(settings, shared_counter))
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
    targets = []
    for index, spec in enumerate([route, *route.fallbacks]):
        prompt = route.system_prompt
        if spec.system_prompt_extra:
            prompt = f"{prompt}\n\n{spec.system_prompt_extra}" if prompt else spec.system_prompt_extra
        few_shot: list[dict[str, str]] = []
        if spec.few_shot_from is not None:
            few_shot = fewshot.select(spec.few_shot_from, spec.few_shot_count, spec.few_shot_max_tokens, counter())
        params = {**route.params, **getattr(spec, "params", {})} if index else dict(route.params)
        targets.append(Target(index, spec.upstream, spec.model, prompt, tuple(few_shot), params, spec.shutdown_date))
    return tuple(targets)


def _created(config: Config) -> int:
    # A stable timestamp across restarts: when the config file last changed.
    if config.source is not None:
        try:
            return int(config.source.stat().st_mtime)
        except OSError:
            pass
    return int(time.time())
