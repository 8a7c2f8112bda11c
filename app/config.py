"""Typed configuration: the TOML file, validated at start-up.

The file has three tables: ``[server]``, ``[upstreams.NAME]`` and
``[routes.NAME]``. Every model forbids unknown keys, so a typo is an error
that names the key instead of a setting silently ignored. Secrets are never
stored in the file: the file names environment variables and
:func:`load_config` reads them once, into ``SecretStr`` fields.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

MIN_KEY_LENGTH = 16
FILE_TABLES = {"server", "upstreams", "routes"}
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")]


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""


class ServerSettings(BaseSettings):
    """``[server]``: where the proxy listens and who may call it.

    Environment variables named ``PERSONA_PROXY_<FIELD>`` override the file.
    """

    model_config = SettingsConfigDict(env_prefix="PERSONA_PROXY_", extra="forbid", validate_assignment=True)

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to bind.")
    api_keys_env: str = Field(
        default="PERSONA_PROXY_API_KEYS",
        description="Environment variable holding the comma-separated client keys.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="Serve without client keys on a non-loopback address (not recommended).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above it)."
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="Seconds in-flight requests may finish after SIGTERM."
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For/-Proto are trusted (none by default).",
    )
    forward_user_id: bool = Field(
        default=False,
        description="Send Open WebUI's X-OpenWebUI-User-Id upstream as the 'user' field "
        "(when the client sent none). Off: it gives the provider an identifier.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment must win.
        return (env_settings, init_settings)


class UpstreamSettings(BaseModel):
    """``[upstreams.NAME]``: one OpenAI-compatible API."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai", "demo"] = Field(
        default="openai",
        description="'openai' for any OpenAI-compatible base URL; 'demo' for the built-in offline maid.",
    )
    base_url: str | None = Field(default=None, description="e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the upstream key (none: no auth)."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection.")
    first_byte_timeout: float = Field(
        default=120.0, gt=0, description="Seconds until the upstream's response headers."
    )
    idle_timeout: float = Field(
        default=120.0, gt=0, description="Seconds allowed between two chunks of a response."
    )
    max_connections: int = Field(default=1024, ge=1, description="Connection pool size.")
    pool_timeout: float = Field(
        default=1.0, gt=0, description="Seconds to wait for a free connection before answering 503."
    )

    @model_validator(mode="after")
    def _base_url_for_openai(self) -> UpstreamSettings:
        if self.kind == "openai":
            if not self.base_url:
                raise ValueError("base_url is required, e.g. base_url = \"https://api.openai.com/v1\"")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
        return self


class RouteSettings(BaseModel):
    """``[routes.NAME]``: a virtual model name clients ask for."""

    model_config = ConfigDict(extra="forbid")

    upstream: str = Field(description="Name of an [upstreams.NAME] table.")
    model: str = Field(min_length=1, description="Model id sent to the upstream.")
    display_name: str | None = Field(default=None, description="Human name shown in model lists.")
    description: str | None = Field(default=None, description="One line shown in model lists.")
    system_prompt: str | None = Field(default=None, description="The persona's system prompt.")
    system_prompt_file: Path | None = Field(
        default=None, description="File holding the system prompt, relative to the config file."
    )
    system_prompt_mode: Literal["replace", "prepend", "if_absent"] = Field(default="replace")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Request defaults; values the client sends win."
    )
    hidden: bool = Field(default=False, description="Leave out of /v1/models; still routable.")
    task_model: str | None = Field(
        default=None, description="Model id for Open WebUI background tasks (titles, tags, ...)."
    )
    task_upstream: str | None = Field(default=None, description="Upstream for task_model (default: upstream).")
    task_persona: bool = Field(
        default=False, description="Apply the persona to Open WebUI background tasks too."
    )

    @model_validator(mode="after")
    def _one_prompt_source(self) -> RouteSettings:
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise ValueError("set system_prompt or system_prompt_file, not both")
        for owned in ("model", "messages", "stream"):
            if owned in self.params:
                raise ValueError(f"params may not set '{owned}': the proxy owns it")
        return self


class Upstream(BaseModel):
    """An upstream with its secret resolved from the environment."""

    name: str
    settings: UpstreamSettings
    api_key: SecretStr | None = None

    @property
    def key_missing(self) -> bool:
        return self.settings.api_key_env is not None and self.api_key is None


class Config(BaseModel):
    """The whole validated configuration, secrets included (never logged)."""

    model_config = ConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    upstreams: dict[Name, UpstreamSettings] = Field(default_factory=dict)
    routes: dict[Name, RouteSettings] = Field(default_factory=dict)
    source: Path | None = Field(default=None, exclude=True)
    client_keys: tuple[SecretStr, ...] = Field(default=(), exclude=True)
    upstream_keys: dict[str, SecretStr] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _routes_name_upstreams(self) -> Config:
        for name, route in self.routes.items():
            for key, upstream in (("upstream", route.upstream), ("task_upstream", route.task_upstream)):
                if upstream is not None and upstream not in self.upstreams:
                    known = ", ".join(sorted(self.upstreams)) or "none defined"
                    raise ValueError(
                        f"routes.{name}.{key}: unknown upstream '{upstream}'; "
                        f"define [upstreams.{upstream}] or use one of: {known}"
                    )
        return self

    def upstream(self, name: str) -> Upstream:
        return Upstream(name=name, settings=self.upstreams[name], api_key=self.upstream_keys.get(name))


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
        raise ConfigError(f"{where}: unknown top-level key '{unknown[0]}'; expected only "
                          "[server], [upstreams.NAME] and [routes.NAME] tables")
    try:
        server = ServerSettings(**(raw.get("server") or {}))
        # Command-line flags beat the environment, which beats the file.
        for key, value in (overrides or {}).items():
            if value is not None:
                setattr(server, key, value)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where, "server.")) from None
    try:
        config = Config(
            server=server, upstreams=raw.get("upstreams", {}), routes=raw.get("routes", {}), source=source
        )
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None
    base_dir = source.parent if source is not None else Path.cwd()
    _load_prompt_files(config, base_dir, where)
    return _with_secrets(config, environ, where)


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


def _describe(exc: ValidationError, where: str, prefix: str = "") -> str:
    lines = [f"{where}: invalid configuration"]
    for err in exc.errors(include_url=False, include_input=False):
        key = prefix + ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against config.example.toml"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _load_prompt_files(config: Config, base_dir: Path, where: str) -> None:
    for name, route in config.routes.items():
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


def _with_secrets(config: Config, environ: Mapping[str, str], where: str) -> Config:
    raw_keys = environ.get(config.server.api_keys_env, "")
    keys = tuple(SecretStr(k.strip()) for k in raw_keys.split(",") if k.strip())
    upstream_keys = {
        name: SecretStr(environ[up.api_key_env])
        for name, up in config.upstreams.items()
        if up.api_key_env and environ.get(up.api_key_env)
    }
    config = config.model_copy(update={"client_keys": keys, "upstream_keys": upstream_keys})
    check_exposure(config, where)
    return config


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
    if not config.client_keys:
        raise ConfigError(
            f"{where}: server.host is {server.host}, which is not loopback, and "
            f"{server.api_keys_env} holds no client keys; set {server.api_keys_env} "
            "(comma-separated keys) or set server.allow_unauthenticated = true"
        )
    if any(len(k.get_secret_value()) < MIN_KEY_LENGTH for k in config.client_keys):
        raise ConfigError(
            f"{where}: a key in {server.api_keys_env} is shorter than {MIN_KEY_LENGTH} "
            "characters; use long random keys (e.g. `openssl rand -hex 24`) on a non-loopback address"
        )
