"""The route table: virtual model names clients ask for, and what serves them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .config import Config, RouteSettings
from .errors import model_not_found


@dataclass(frozen=True, slots=True)
class Route:
    """One virtual model: its name, its upstream and its persona."""

    name: str
    settings: RouteSettings
    created: int
    # The name JSON-encoded once, for rewriting ``model`` in every response.
    name_json: bytes

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
    def from_config(cls, config: Config) -> RouteTable:
        created = _created(config)
        return cls(
            {
                name: Route(name, settings, created, orjson.dumps(name))
                for name, settings in config.routes.items()
            }
        )

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

    def model_list(self) -> dict[str, Any]:
        return {"object": "list", "data": [route.model_object() for route in self if not route.settings.hidden]}


def _created(config: Config) -> int:
    # A stable timestamp across restarts: when the config file last changed.
    if config.source is not None:
        try:
            return int(config.source.stat().st_mtime)
        except OSError:
            pass
    return int(time.time())
