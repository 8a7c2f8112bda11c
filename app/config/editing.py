"""Editing the config file in place: add or update one route, keeping comments and layout.

The edited text is validated as a whole config before it replaces the file,
and the file is replaced atomically, so a failed edit changes nothing.
"""

from __future__ import annotations

import os
import re
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
        text = _insert_route(path.read_text(encoding="utf-8"), document, name, values)
    else:
        route = routes[name]
        assert isinstance(route, Table)
        for key, value in values.items():
            route[key] = value
        text = tomlkit.dumps(document)
    _validate(path, text)
    _replace(path, text)
    return created


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")


def _insert_route(text: str, document: tomlkit.TOMLDocument, name: str, values: dict[str, Any]) -> str:
    """``text`` with ``[routes.NAME]`` placed after the last route's last setting.

    tomlkit appends a new table after the comments that trail the last route,
    which describe the table below them; here they stay with it, and the new
    table gets a blank line on each side.
    """
    block = tomlkit.dumps({"routes": {name: values}}).strip("\n") + "\n"
    lines = text.splitlines(keepends=True)
    headers = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _HEADER.match(line))]
    route_headers = [i for i, header in headers if header == "routes" or header.startswith("routes.")]
    if not route_headers:
        return text.rstrip("\n") + "\n\n" + block
    following = [i for i, _ in headers if i > route_headers[-1]]
    end = following[0] if following else len(lines)
    while end > route_headers[-1] + 1 and lines[end - 1].strip()[:1] in ("", "#"):
        end -= 1
    before = "".join(lines[:end])
    after = "".join(lines[end:])
    candidate = before.rstrip("\n") + "\n\n" + block + ("\n" + after.lstrip("\n") if after.strip() else "")
    # Lines inside a multi-line string could fool the scan: keep the result only if it parses to
    # exactly the old document plus the new route; otherwise fall back to tomlkit's placement.
    expected = document.unwrap()
    expected.setdefault("routes", {})[name] = values
    try:
        if tomlkit.parse(candidate).unwrap() == expected:
            return candidate
    except tomlkit.exceptions.ParseError:
        pass
    document["routes"][name] = values
    return tomlkit.dumps(document)


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
