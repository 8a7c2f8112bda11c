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
from tomlkit.items import AoT, Item, Table

from .loading import TARGET_TABLES, ConfigError, load_config


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


# The keys that make a target the route's primary; a canary's share or a shadow's sample stay behind.
PRIMARY_KEYS = ("upstream", "model", "system_prompt_extra", "few_shot_from", "few_shot_count",
                "few_shot_max_tokens", "shutdown_date")


def promote_target(path: Path, name: str, spec: str, *, write: bool = True) -> tuple[str, str, str]:
    """Make ``MODEL@UPSTREAM`` the primary of route ``name``; the old primary becomes the first fallback.

    Returns the old text, the new text and where the target came from. Nothing is written when
    ``write`` is off, or when the edited file would not load.
    """
    text = _read(path)
    document = tomlkit.parse(text)
    route = _route_table(document, path, name)
    model, _, upstream = spec.rpartition("@")
    if not model or not upstream:
        raise ConfigError(f"{path}: '{spec}' is not MODEL@UPSTREAM (e.g. gpt-4.1-mini@openai)")
    if route.get("model") == model and route.get("upstream") == upstream:
        raise ConfigError(f"{path}: {spec} is already the primary of route {name}")
    promoted, origin = _take_target(route, model, upstream)
    if promoted is None:
        known = document.get("upstreams") or {}
        if upstream not in known:
            raise ConfigError(f"{path}: {spec} is not a target of route {name}, and there is no [upstreams.{upstream}]"
                              f" to add it on (have: {', '.join(sorted(known)) or 'none'}); name one of the route's "
                              "targets or an upstream of the config")
        promoted, origin = {"upstream": upstream, "model": model}, "a new target"
    _swap_primary(route, promoted)
    new_text = tomlkit.dumps(document)
    _validate(path, new_text)
    if write:
        _replace(path, new_text)
    return text, new_text, origin


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def _route_table(document: tomlkit.TOMLDocument, path: Path, name: str) -> Table:
    routes = document.get("routes") or {}
    route = routes.get(name)
    if not isinstance(route, Table):
        raise ConfigError(f"{path}: no route '{name}' (have: {', '.join(routes) or 'none'})")
    return route


def _take_target(route: Table, model: str, upstream: str) -> tuple[dict[str, Any] | None, str]:
    """Remove the matching fallback, canary or shadow entry from its table and return its keys."""
    for table in TARGET_TABLES:
        entries: Any = route.get(table) or []
        for index, entry in enumerate(entries):
            if entry.get("model") == model and entry.get("upstream") == upstream:
                keys = entry.unwrap()
                del entries[index]
                if not len(entries):
                    del route[table]
                return keys, f"{table}[{index}]"
    return None, ""


def _swap_primary(route: Table, promoted: dict[str, Any]) -> None:
    """The promoted keys on the route, its old primary first among the fallbacks, params kept as they were."""
    old = {key: route[key].unwrap() if hasattr(route[key], "unwrap") else route[key]
           for key in PRIMARY_KEYS if key in route}
    route_params = dict(route["params"].unwrap()) if "params" in route else {}
    wanted = promoted.get("params") or {}
    changed = {key for key, value in wanted.items() if route_params.get(key) != value}
    for key in PRIMARY_KEYS:
        if key in promoted:
            _set(route, key, promoted[key])
        elif key in route:
            del route[key]
    if changed:
        _set(route, "params", _inline({**route_params, **wanted}))
    # The other targets keep what they were sent: the route's params they inherited stay as they were.
    pinned = {key: route_params[key] for key in changed if key in route_params}
    fallbacks = route.get("fallbacks")
    for entry in fallbacks or []:
        own = entry.get("params")
        keep = {k: v for k, v in pinned.items() if own is None or k not in own}
        if keep:
            _set(entry, "params", _inline({**(own.unwrap() if own is not None else {}), **keep}))
    demoted = tomlkit.table()
    demoted.update(old)
    if pinned:
        demoted["params"] = _inline(pinned)
    demoted.add(tomlkit.nl())
    if fallbacks is None:
        fallbacks = tomlkit.aot()
        route["fallbacks"] = fallbacks
    fallbacks.insert(0, demoted)


def _set(table: Table, key: str, value: Any) -> None:
    """Set ``key`` in place if it is there, else after the table's last key (not after its trailing comments)."""
    if key in table:
        table[key] = value
        # A comment beside the old value spoke of the old value.
        item = table.item(key)
        if isinstance(item, Item):
            item.trivia.comment = item.trivia.comment_ws = ""
        return
    keys = [k.key for k, v in table.value.body if k is not None and not isinstance(v, Table | AoT)]
    if not keys:
        table[key] = value
        return
    # tomlkit keeps the comments that stand before the next table as this one's tail; a key added
    # with table[key] would land below them.
    table.value._insert_after(keys[-1], key, tomlkit.item(value) if not hasattr(value, "trivia") else value)


def _inline(values: dict[str, Any]) -> Any:
    table = tomlkit.inline_table()
    table.update(values)
    return table
