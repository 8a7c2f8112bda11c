"""Lorebooks (``character_book``, or a ``lorebook_v3`` file): entries, their decorators and their keys.

Every key of every entry is compiled at load into one RE2 set, so a request
is scanned once for the whole book. RE2 runs in time linear in the text
whatever the pattern, which is the time bound the keys need: they are the
operator's, but the text they run on is the client's, and no pattern may
stall a request. The price is RE2's syntax: no lookaround and no
backreferences (a key using them refuses the book, naming the key).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from .errors import CardError

POSITIONS = ("before_char", "after_char")
ROLES = ("system", "user", "assistant")
# SillyTavern's own placement, a number (in a card's entry extensions, or at the top of an entry in its
# world-info files): 0 before the character, 1 after it, 4 at a depth in the chat; 2 and 3 (around the
# author's note), 5 and 6 (around the example messages) and 7 (an outlet) have no place here and go
# after the character, with a warning. Roles 0/1/2.
ST_POSITIONS, ST_AT_DEPTH = {0: "before_char", 1: "after_char", 4: "depth"}, 4
ST_ROLES = {0: "system", 1: "user", 2: "assistant"}
JS_FLAGS = {"i": "i", "s": "s", "m": "m", "g": "", "u": "", "y": "", "d": ""}
SUPPORTED_DECORATORS = ("depth", "role", "position", "activate", "dont_activate")
MAX_ENTRIES = 5000


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry, normalized; ``content`` has its decorator lines removed."""

    label: str  # its name, else comment, else id, else #index: what the debug log and `card show` name
    keys: tuple[str, ...]
    secondary_keys: tuple[str, ...]
    content: str
    constant: bool = False
    selective: bool = False
    case_sensitive: bool = False
    use_regex: bool = False
    insertion_order: float = 100
    priority: float = 100
    position: str = "before_char"  # before_char | after_char | depth
    depth: int = 0  # conversation messages after it, for position "depth"
    role: str = "system"
    never: bool = False  # @@dont_activate


@dataclass(frozen=True, slots=True)
class Matcher:
    """All of a book's keys in one RE2 set; ``owners[i]`` is (entry index, is a secondary key)."""

    patterns: Any  # re2.Set, or None for a book without keys
    owners: tuple[tuple[int, bool], ...]

    def hits(self, text: str) -> tuple[set[int], set[int]]:
        """The entries a primary key matched, and those a secondary key matched."""
        primary: set[int] = set()
        secondary: set[int] = set()
        if self.patterns is None or not text:
            return primary, secondary
        for index in self.patterns.Match(text) or ():
            entry, is_secondary = self.owners[index]
            (secondary if is_secondary else primary).add(entry)
        return primary, secondary


@dataclass(frozen=True, slots=True)
class Book:
    name: str
    scan_depth: int | None
    token_budget: int | None
    entries: tuple[Entry, ...]
    matcher: Matcher
    raw: dict[str, Any]  # the book as read, for export: unknown fields and extensions kept
    warnings: tuple[str, ...] = field(default=())


def read_book(raw: Any, where: str = "character_book") -> Book:
    """A book from its JSON object (entries as a list, or SillyTavern's object of entries)."""
    if not isinstance(raw, dict):
        raise CardError(f"{where} is not an object")
    entries_raw = raw.get("entries", [])
    if isinstance(entries_raw, dict):
        entries_raw = list(entries_raw.values())
    if not isinstance(entries_raw, list):
        raise CardError(f"{where}.entries is not a list")
    if len(entries_raw) > MAX_ENTRIES:
        raise CardError(f"{where} has {len(entries_raw)} entries, more than {MAX_ENTRIES}")
    warnings: list[str] = []
    entries = tuple(_entry(item, f"{where}.entries[{i}]", i, warnings) for i, item in enumerate(entries_raw))
    if raw.get("recursive_scanning"):
        warnings.append(f"{where}: recursive_scanning is not supported; entries are matched on the conversation only")
    return Book(_text(raw, "name", where), _count(raw, "scan_depth", where), _count(raw, "token_budget", where),
                entries, _matcher(entries, where), raw, tuple(warnings))


def _entry(raw: Any, where: str, index: int, warnings: list[str]) -> Entry:
    if not isinstance(raw, dict):
        raise CardError(f"{where} is not an object")
    keys = _keys(raw, ("keys", "key"), where, warnings)
    secondary = _keys(raw, ("secondary_keys", "keysecondary"), where, warnings)
    content, decorators = _decorators(_text(raw, "content", where))
    label = str(raw.get("name") or raw.get("comment") or raw.get("id") or raw.get("uid") or f"#{index}")[:80]
    ext: dict[str, Any] = raw["extensions"] if isinstance(raw.get("extensions"), dict) else {}
    entry = Entry(
        label=label, keys=keys, secondary_keys=secondary, content=content,
        constant=bool(raw.get("constant")), selective=bool(raw.get("selective")) and bool(secondary),
        case_sensitive=bool(raw.get("case_sensitive")), use_regex=bool(raw.get("use_regex")),
        insertion_order=_number(raw, ("insertion_order", "order"), where, 100),
        priority=_number(raw, ("priority",), where, _number(raw, ("insertion_order", "order"), where, 100)),
        position=_position(raw, ext, f"{where} ({label})", warnings),
        depth=_int(_st(raw, ext, "depth"), 0), role=ST_ROLES.get(_st(raw, ext, "role") or 0, "system"),
    )
    enabled = raw.get("enabled", not raw.get("disable", False))
    entry = _decorated(entry, decorators, where, warnings)
    if not enabled:
        return _replace(entry, never=True)
    if not entry.keys and not entry.constant and not entry.never:
        warnings.append(f"{where} ({label}): no keys and not constant, so it never fires")
    return entry


def _decorators(content: str) -> tuple[str, list[tuple[str, str]]]:
    """V3 decorators: ``@@name value`` lines at the start of the content, then the content proper."""
    lines = content.split("\n")
    found: list[tuple[str, str]] = []
    while lines and lines[0].startswith("@@"):
        line = lines.pop(0).strip()
        name, _, value = line.lstrip("@").partition(" ")
        found.append(("@" + name if line.startswith("@@@") else name, value.strip()))
    return "\n".join(lines).strip(), found


def _decorated(entry: Entry, decorators: list[tuple[str, str]], where: str, warnings: list[str]) -> Entry:
    unsupported = []
    for name, value in decorators:
        if name == "depth":
            entry = _replace(entry, position="depth", depth=_int(value, None, f"{where}: @@depth {value}"))
        elif name == "role" and value in ROLES:
            entry = _replace(entry, role=value)
        elif name == "position" and value in ("before_desc", "after_desc"):
            entry = _replace(entry, position="before_char" if value == "before_desc" else "after_char")
        elif name == "activate":
            entry = _replace(entry, constant=True)
        elif name == "dont_activate":
            entry = _replace(entry, never=True)
        else:
            unsupported.append(f"@@{name}" + (f" {value}" if value else ""))
    if unsupported:
        warnings.append(f"{where} ({entry.label}): ignored unsupported decorator(s): {', '.join(unsupported)}")
    return entry


def _replace(entry: Entry, **changes: Any) -> Entry:
    return dataclasses.replace(entry, **changes)


def _keys(raw: Mapping[str, Any], names: tuple[str, ...], where: str, warnings: list[str]) -> tuple[str, ...]:
    value: Any = next((raw[n] for n in names if n in raw), [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise CardError(f"{where}.{names[0]} is not a list of strings")
    kept = tuple(k for k in value if k.strip())
    if len(kept) < len(value):
        warnings.append(f"{where}.{names[0]}: {len(value) - len(kept)} empty key(s) ignored (an empty key would "
                        "match every message)")
    return kept


def _matcher(entries: tuple[Entry, ...], where: str) -> Matcher:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    patterns = re2.Set.SearchSet(options)
    owners: list[tuple[int, bool]] = []
    for index, entry in enumerate(entries):
        if entry.never or entry.constant:  # a constant entry needs no key
            continue
        for secondary, keys in ((False, entry.keys), (True, entry.secondary_keys if entry.selective else ())):
            for key in keys:
                pattern = key_pattern(key, entry.use_regex, entry.case_sensitive)
                try:
                    re2.compile(pattern, options)
                except re2.error as exc:
                    reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                    raise CardError(f"{where}.entries ({entry.label}): key {key!r} is not a usable regular "
                                    f"expression ({reason}; RE2 syntax: no lookaround, no backreferences)") from None
                patterns.Add(pattern)
                owners.append((index, secondary))
    if not owners:
        return Matcher(None, ())
    try:
        patterns.Compile()
    except re2.error:
        raise CardError(f"{where}: its keys are too many or too large to compile together") from None
    return Matcher(patterns, tuple(owners))


def key_pattern(key: str, use_regex: bool, case_sensitive: bool) -> str:
    """The RE2 pattern of a key: a literal, a bare pattern, or SillyTavern's ``/pattern/flags``."""
    if not use_regex:
        return ("" if case_sensitive else "(?i)") + str(re2.escape(key))
    slashed = re.fullmatch(r"/(.+)/([a-z]*)", key, re.DOTALL)
    if slashed is None:
        return ("" if case_sensitive else "(?i)") + key
    body, flags = slashed.groups()
    unknown = sorted(set(flags) - set(JS_FLAGS))
    if unknown:
        raise CardError(f"key {key!r} has unknown regular-expression flag(s) {''.join(unknown)} (use i, s or m)")
    inline = "".join(sorted({JS_FLAGS[f] for f in flags} - {""}))
    return f"(?{inline}){body}" if inline else body


def _position(raw: Mapping[str, Any], ext: Mapping[str, Any], where: str, warnings: list[str]) -> str:
    value, code = raw.get("position"), _st(raw, ext, "position")
    if code == ST_AT_DEPTH:
        return "depth"
    if isinstance(value, str) and value:
        if value not in POSITIONS:
            raise CardError(f"{where}: position is {value!r}; use before_char or after_char")
        return value
    if code is None:
        return "before_char"
    if code not in ST_POSITIONS:
        warnings.append(f"{where}: SillyTavern position {code} (author's note, example messages or an outlet) "
                        "has no place here; it goes after_char")
    return ST_POSITIONS.get(code, "after_char")


def _st(raw: Mapping[str, Any], ext: Mapping[str, Any], name: str) -> int | None:
    """A SillyTavern number (position, depth, role): at the entry's top level in its world-info files,
    in ``extensions`` in its cards."""
    for value in (raw.get(name), ext.get(name)):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _text(raw: Mapping[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(f"{where}.{name} is not a string")
    return str(value)


def _count(raw: Mapping[str, Any], name: str, where: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise CardError(f"{where}.{name} is {value!r}; it must be a whole number of 0 or more")
    return int(value)


def _number(raw: Mapping[str, Any], names: tuple[str, ...], where: str, default: float) -> float:
    for name in names:
        value = raw.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CardError(f"{where}.{name} is {value!r}; it must be a number")
        return float(value)
    return default


def _int(value: Any, default: int | None, problem: str = "") -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        if default is None:
            raise CardError(f"{problem}: the depth must be a whole number") from None
        return default
    if number < 0:
        if default is None:
            raise CardError(f"{problem}: the depth must be 0 or more")
        return default
    return number
