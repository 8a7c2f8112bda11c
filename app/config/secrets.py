"""Secrets from the environment: client, admin, upstream and Redis keys, read once into ``SecretStr``.

Also where a config is refused for its keys: one key listed by two clients,
or a non-loopback address without strong keys. No message here ever holds a
key's value, only the variable or table that lists it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from pydantic import SecretStr

from .errors import ConfigError
from .settings import Config

MIN_KEY_LENGTH = 16


def with_secrets(config: Config, environ: Mapping[str, str], where: str) -> Config:
    keys = _keys(environ.get(config.server.api_keys_env, ""))
    admin_keys = _keys(environ.get(config.server.admin_keys_env, ""))
    upstream_keys = {
        name: SecretStr(environ[up.api_key_env])
        for name, up in config.upstreams.items()
        if up.api_key_env and environ.get(up.api_key_env)
    }
    usage_url = environ.get(config.usage.url_env) if config.usage.url_env else None
    key_sets = {name: _keys(environ.get(client.key_env, "")) for name, client in config.clients.items()}
    _no_shared_keys(config, keys, key_sets, where)
    config = config.model_copy(update={"client_keys": keys, "admin_keys": admin_keys,
                                       "upstream_keys": upstream_keys, "client_key_sets": key_sets,
                                       "redis_url": _redis_url(config, environ, where),
                                       "usage_url": SecretStr(usage_url) if usage_url else None})
    check_exposure(config, where)
    return config


def _redis_url(config: Config, environ: Mapping[str, str], where: str) -> SecretStr | None:
    name = config.limits.redis_url_env
    if name is None:
        return None
    url = environ.get(name, "").strip()
    if not url:
        # Not a fallback to one process's counters: with several replicas that would multiply every limit.
        raise ConfigError(f"{where}: limits.redis_url_env: {name} is not set; set it to a redis:// URL "
                          "(e.g. redis://127.0.0.1:6379/0) or remove redis_url_env to count in one process")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{where}: limits.redis_url_env: {name} does not hold a redis://, rediss:// or "
                          "unix:// URL; put the Redis URL in it")
    return SecretStr(url)


def _no_shared_keys(config: Config, anonymous: tuple[SecretStr, ...],
                    key_sets: Mapping[str, tuple[SecretStr, ...]], where: str) -> None:
    """A key names one client: the same key under two clients (or also in api_keys_env) is refused."""
    owner: dict[str, str] = {k.get_secret_value(): f"server.api_keys_env ({config.server.api_keys_env})"
                             for k in anonymous}
    for name, keys in key_sets.items():
        mine = f"clients.{name} ({config.clients[name].key_env})"
        for key in keys:
            other = owner.setdefault(key.get_secret_value(), mine)
            if other != mine:
                # NOTE: never the key itself, only where it is listed.
                raise ConfigError(f"{where}: {mine}: a key is also listed in {other}; a key belongs to one "
                                  "client: give each client keys of its own")


def _keys(raw: str) -> tuple[SecretStr, ...]:
    return tuple(SecretStr(k.strip()) for k in raw.split(",") if k.strip())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config, where: str) -> None:
    """Refuse to serve a non-loopback address without strong client keys."""
    server = config.server
    if is_loopback(server.host) or server.allow_unauthenticated:
        return
    every_key = (*config.client_keys, *(k for keys in config.client_key_sets.values() for k in keys))
    if not every_key:
        raise ConfigError(
            f"{where}: server.host is {server.host}, which is not loopback, and "
            f"{server.api_keys_env} holds no client keys; set {server.api_keys_env} "
            "(comma-separated keys) or set server.allow_unauthenticated = true"
        )
    sources = [(server.api_keys_env, config.client_keys),
               *((config.clients[n].key_env, keys) for n, keys in config.client_key_sets.items())]
    for variable, keys in sources:
        if any(len(k.get_secret_value()) < MIN_KEY_LENGTH for k in keys):
            raise ConfigError(
                f"{where}: a key in {variable} is shorter than {MIN_KEY_LENGTH} "
                "characters; use long random keys (e.g. `openssl rand -hex 24`) on a non-loopback address"
            )
