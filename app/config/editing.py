"""Editing the config file in place: add or update one route, keeping comments and layout.

The edited text is validated as a whole config before it replaces the file,
and the file is replaced atomically, so a failed edit changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from .loading import ConfigError, load_config


def upsert_route(path: Path, name: str, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``[routes.NAME]``; return True if the route was new."""
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    routes = document.get("routes")
    if routes is None:
        routes = tomlkit.table(is_super_table=True)
        document["routes"] = routes
    created = name not in routes
    if created:
        route = tomlkit.table()
        for key, value in values.items():
            route[key] = value
        routes[name] = route
    else:
        route = routes[name]
        assert isinstance(route, Table)
        for key, value in values.items():
            route[key] = value
    text = tomlkit.dumps(document)
    _validate(path, text)
    _replace(path, text)
    return created


def _validate(path: Path, text: str) -> None:
    # Load the would-be file from beside the original, so relative paths resolve alike.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".toml", dir=path.parent,
                                     delete=False) as tmp:
        tmp.write(text)
    try:
        # The file's shape is checked here, not the secrets of whoever runs the edit.
        load_config(Path(tmp.name), overrides={"host": "127.0.0.1"}, environ={})
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(tmp.name, str(path))) from None
    finally:
        os.unlink(tmp.name)


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
