"""Accepted keys and whose they are, compared in constant time.

Every accepted key's SHA-256 digest is compared with the presented one's,
all of them every time, so neither a key's length nor its position in the
list shows in the timing. A key belongs to one client at most (the loader
refuses a key listed twice); keys from ``server.api_keys_env`` belong to no
named client and carry no limits.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from pydantic import SecretStr


class Identity(NamedTuple):
    """Who presented an accepted key: its short hash (for records) and its client's name, if it has one."""

    key_id: str
    client: str | None


def digest(key: str | bytes) -> bytes:
    raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


def key_hash(key: str | bytes) -> str:
    """The id records and ``persona-proxy clients`` show for a key: never enough to recover it."""
    return "key-" + digest(key).hex()[:10]


class ProxyKeys:
    """The accepted keys: anonymous ones and each named client's."""

    def __init__(self, keys: Iterable[SecretStr], owned: Mapping[str, Iterable[SecretStr]] | None = None) -> None:
        self.replace(keys, owned)

    def replace(self, keys: Iterable[SecretStr], owned: Mapping[str, Iterable[SecretStr]] | None = None) -> None:
        """Swap in a new key set (config reload); one assignment, so never half-updated."""
        entries: list[tuple[bytes, str | None]] = [(digest(k.get_secret_value()), None) for k in keys]
        entries += [(digest(k.get_secret_value()), name) for name, ks in (owned or {}).items() for k in ks]
        self._entries: tuple[tuple[bytes, str | None], ...] = tuple(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def accepts(self, presented: bytes) -> bool:
        return self.identify(presented) is not None

    def key_id(self, presented: bytes) -> str | None:
        """A short, stable id of an accepted key (for usage records), or None if it is not accepted."""
        found = self.identify(presented)
        return found.key_id if found is not None else None

    def identify(self, presented: bytes) -> Identity | None:
        """The presented key's identity, or None if no client holds it."""
        candidate = digest(presented)
        owner: str | None = None
        ok = False
        for value, name in self._entries:
            match = hmac.compare_digest(candidate, value)
            ok |= match
            if match:
                owner = name
        return Identity("key-" + candidate.hex()[:10], owner) if ok else None
