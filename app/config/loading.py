"""Loading the TOML config file, validated at start-up.

The file has three tables: ``[server]``, ``[upstreams.NAME]`` and
``[routes.NAME]`` (their models are in :mod:`app.config.settings`). Secrets are
never stored in the file: it names environment variables and
:func:`load_config` reads them once, into ``SecretStr`` fields. Every
problem becomes one :class:`ConfigError` naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .clients import ClientSettings, LimitFields, LimitsSettings
from .errors import ConfigError
from .secrets import check_exposure, is_loopback, with_secrets
from .settings import (
    SERVER_ENV_PREFIX,
    Config,
    PriceSettings,
    RouteSettings,
    ServerSettings,
    Upstream,
    UpstreamSettings,
    UsageSettings,
    server_env,
)
from .targets import CanarySettings, FallbackSettings, FidelitySettings, ShadowSettings, TargetFields

FILE_TABLES = {"server", "upstreams", "routes", "usage", "fidelity", "prices", "clients", "limits"}
# A route's target tables besides the primary, as written in the file.
TARGET_TABLES = ("fallbacks", "canary", "shadow")


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, validate and resolve a config file (or the built-in default)."""
    environ = os.environ if environ is None else environ
    source = Path(path) if path is not None else None
    raw = _read_toml(source) if source is not None else default_config_data()
    where = str(source) if source is not None else "the built-in default config"
    unknown = sorted(set(raw) - FILE_TABLES)
    if unknown:
        raise ConfigError(f"{where}: unknown table [{unknown[0]}]{_did_you_mean(unknown[0], FILE_TABLES)}; "
                          "a config may have [server], [upstreams.NAME], [routes.NAME], [usage], "
                          '[fidelity], [prices."MODEL"], [clients.NAME] and [limits]')
    try:
        server = ServerSettings(**{**(raw.get("server") or {}), **server_env(environ)})
        # Command-line flags beat the environment, which beats the file.
        for key, value in (overrides or {}).items():
            if value is not None:
                setattr(server, key, value)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where, ("server",), environ)) from None
    try:
        config = Config(server=server, source=source,
                        **{key: raw[key] for key in FILE_TABLES - {"server"} if key in raw})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None
    if not config.routes:
        raise ConfigError(f"{where}: no routes; add a [routes.NAME] table (see config.example.toml)")
    base_dir = source.parent if source is not None else Path.cwd()
    _load_route_files(config, base_dir, where)
    config.usage.path = _usage_path(config.usage.path, source, environ)
    return with_secrets(config, environ, where)


def default_config_data() -> dict[str, Any]:
    """The config used when no file is given: the offline demo plus the maid."""
    text = (Path(__file__).parent / "default_config.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; copy config.example.toml and edit it") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def _describe(exc: ValidationError, where: str, prefix: tuple[str, ...] = (),
              environ: Mapping[str, str] | None = None) -> str:
    # NOTE: include_input=False: a value may be a secret pasted in the wrong place.
    lines = [f"{where}: invalid configuration"]
    for err in exc.errors(include_url=False, include_input=False):
        loc = (*prefix, *(str(part) for part in err["loc"] if part != "[key]"))
        key = ".".join(loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_key(loc)
        env = _env_source(loc, environ or {})
        lines.append(f"  {key}: {message}" + (f" (from the environment variable {env})" if env else ""))
    return "\n".join(lines)


SECRET_KEYS = {"api_key", "key", "api_keys", "admin_keys", "token", "password", "secret"}


def _unknown_key(loc: tuple[str, ...]) -> str:
    name = loc[-1]
    if name in SECRET_KEYS and loc[0] == "clients":
        return "a key does not go in the config file: put the client's keys in an environment variable and " \
               "name that variable in key_env"
    if name in SECRET_KEYS:
        return (f"a key does not go in the config file: put it in an environment variable and name that "
                f"variable in {'api_key_env' if name in ('api_key', 'key', 'token') else name + '_env'}")
    table = next((part for part in loc if part in TARGET_TABLES), None)
    if table is not None and len(loc) > 1 and name in RouteSettings.model_fields:
        # TOML puts a key in the table above it: a route key written after [[routes.NAME.canary]] lands there.
        return (f"{name} is a key of [routes.{loc[1]}], not of its {table} entries: move it above the first "
                f"[[routes.{loc[1]}.{table}]] line")
    return f"unknown key{_did_you_mean(name, _fields_at(loc[:-1]))}; see config.example.toml for every option"


def _fields_at(loc: tuple[str, ...]) -> set[str]:
    """The keys valid in the table at ``loc`` (a route, a fallback, an upstream...)."""
    models: dict[str, type[BaseModel]] = {"server": ServerSettings, "usage": UsageSettings,
                                          "fidelity": FidelitySettings}
    if not loc:
        return set(FILE_TABLES)
    if loc[0] in models:
        return set(models[loc[0]].model_fields)
    if loc[0] == "upstreams":
        return set(UpstreamSettings.model_fields)
    if loc[0] == "prices":
        return set(PriceSettings.model_fields)
    if loc[0] == "limits":
        return set(LimitsSettings.model_fields)
    if loc[0] == "clients":
        return set((LimitFields if "per_user" in loc else ClientSettings).model_fields)
    if loc[0] == "routes":
        table: dict[str, type[BaseModel]] = {"fallbacks": FallbackSettings, "canary": CanarySettings,
                                             "shadow": ShadowSettings}
        inner: type[BaseModel] = next((table[part] for part in loc if part in table), RouteSettings)
        return set(inner.model_fields)
    return set()


def _did_you_mean(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _env_source(loc: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    """The variable a [server] value came from, when the environment set it."""
    if len(loc) >= 2 and loc[0] == "server":
        name = SERVER_ENV_PREFIX + loc[1].upper()
        return next((key for key in environ if key.upper() == name), None)
    return None


def _load_route_files(config: Config, base_dir: Path, where: str) -> None:
    for name, route in config.routes.items():
        targets = [("", route), *((f"{table}[{i}].", t) for table in TARGET_TABLES
                                  for i, t in enumerate(getattr(route, table)))]
        for key, target in targets:
            if target.few_shot_from is not None:
                target.few_shot_from = _existing(target.few_shot_from, base_dir, where,
                                                 f"routes.{name}.{key}few_shot_from")
            _read_cards(config, target, f"routes.{name}.{key}", base_dir, where)
        if route.dataset is not None:
            route.dataset = _existing(route.dataset, base_dir, where, f"routes.{name}.dataset")
            _check_dataset(route.dataset, where, f"routes.{name}.dataset")
        if route.system_prompt_file is None:
            continue
        path = route.system_prompt_file
        path = path if path.is_absolute() else base_dir / path
        try:
            route.system_prompt = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{where}: routes.{name}.system_prompt_file: cannot read {path} ({exc}); "
                "the path is relative to the config file"
            ) from None


def _read_cards(config: Config, target: TargetFields, prefix: str, base_dir: Path, where: str) -> None:
    """A target's ``persona_card`` and ``lorebook``, each file read and checked once, into ``config.cards``.

    The card readers (and RE2) are imported only when a route names a file: a config without cards
    carries none of them in its heap.
    """
    for field in ("persona_card", "lorebook"):
        path = getattr(target, field)
        if path is None:
            continue
        path = _existing(path, base_dir, where, prefix + field)
        setattr(target, field, path)
        if path in config.cards:
            continue
        from ..cards import CardError, read_card, read_lorebook

        reader = read_card if field == "persona_card" else read_lorebook
        try:
            config.cards[path] = reader(path)
        except CardError as exc:
            raise ConfigError(f"{where}: {prefix}{field}: {path.name} cannot be used: {exc}") from None


def _existing(path: Path, base_dir: Path, where: str, key: str) -> Path:
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ConfigError(f"{where}: {key}: no such file {path}; the path is relative to the config file")
    return path


def _check_dataset(path: Path, where: str, key: str) -> None:
    """A training JSONL: one JSON object with ``messages`` per line, at least one with an assistant reply.

    Only the shape is checked here; ``persona-proxy dataset check`` reports everything else.
    """
    replies = 0
    try:
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    example = json.loads(line.lstrip(b"\xef\xbb\xbf"))
                except ValueError:
                    example = None
                messages = example.get("messages") if isinstance(example, dict) else None
                if not isinstance(messages, list):
                    raise ConfigError(f"{where}: {key}: {path} line {number} is not a training example; a "
                                      'training JSONL has one {"messages": [...]} object per line '
                                      "(check it with `persona-proxy dataset check`)")
                replies += any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
    except OSError as exc:
        raise ConfigError(f"{where}: {key}: cannot read {path} ({exc.strerror})") from None
    if not replies:
        raise ConfigError(f"{where}: {key}: {path} has no assistant replies to compare with; "
                          "point it at the persona's training JSONL")


DATA_DIR_ENV = "PERSONA_PROXY_DATA_DIR"
USAGE_FILE = "persona-proxy-usage.sqlite3"


def data_dir(environ: Mapping[str, str]) -> Path:
    """Where the proxy keeps its own files (usage records) unless the config says otherwise."""
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV])
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "persona-proxy"


def _usage_path(path: Path | None, source: Path | None, environ: Mapping[str, str]) -> Path:
    # Not beside the config by default: configs are often read-only mounts.
    if path is None:
        return data_dir(environ) / USAGE_FILE
    if path.is_absolute() or source is None:
        return path if path.is_absolute() else data_dir(environ) / path
    return source.parent / path


__all__ = ["Config", "ConfigError", "RouteSettings", "ServerSettings", "Upstream", "UpstreamSettings",
           "check_exposure", "is_loopback", "load_config"]
