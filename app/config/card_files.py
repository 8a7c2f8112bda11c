"""Reading the cards and lorebooks a config names, at load: a bad one is a start-up error, never a request's."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .settings import Config

TARGET_TABLES = ("fallbacks", "canary", "shadow")


def load_cards(config: Config, base_dir: Path, where: str) -> None:
    """Resolve every ``persona_card`` and ``lorebook`` against the config's folder and read each file once.

    The card readers (and RE2) are imported only when a route names a file: a config without cards
    carries none of them in its heap.
    """
    for name, route in config.routes.items():
        targets = [("", route), *((f"{table}[{i}].", t) for table in TARGET_TABLES
                                  for i, t in enumerate(getattr(route, table)))]
        for prefix, target in targets:
            for field in ("persona_card", "lorebook"):
                path = getattr(target, field)
                if path is None:
                    continue
                key = f"routes.{name}.{prefix}{field}"
                path = path if path.is_absolute() else base_dir / path
                if not path.is_file():
                    raise ConfigError(f"{where}: {key}: no such file {path}; the path is relative to the config file")
                setattr(target, field, path)
                from ..cards import CardError, read_card, read_lorebook

                reader = read_card if field == "persona_card" else read_lorebook
                if path not in config.cards:
                    try:
                        config.cards[path] = reader(path)
                    except CardError as exc:
                        raise ConfigError(f"{where}: {key}: {path.name} cannot be used: {exc}") from None
