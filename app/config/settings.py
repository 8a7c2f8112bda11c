"""The typed settings: what a config file may say, with defaults and descriptions.

Every model forbids unknown keys, so a typo is an error that names the key
instead of a setting silently ignored. Loading, secrets and error wording
live in :mod:`app.config`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from .clients import ClientSettings, LimitsSettings
from .names import EnvName, Name
from .server import SERVER_ENV_PREFIX, ServerSettings, server_env
from .targets import CanarySettings, FallbackSettings, FidelitySettings, ShadowSettings, TargetFields

if TYPE_CHECKING:  # cards (and RE2) are imported only by configs that name one
    from ..cards import Book, Card

__all__ = ["OPENAI_FINE_TUNING_UNTIL", "SERVER_ENV_PREFIX", "Config", "PriceSettings", "RouteSettings",
           "ServerSettings", "Upstream", "UpstreamSettings", "UsageSettings", "server_env"]

# OpenAI stops every new self-serve fine-tuning job after this day (any base model).
OPENAI_FINE_TUNING_UNTIL = dt.date(2027, 1, 6)


class UpstreamSettings(BaseModel):
    """``[upstreams.NAME]``: one OpenAI-compatible API."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai", "demo"] = Field(
        default="openai",
        description="'openai' for any OpenAI-compatible base URL; 'demo' for the built-in offline maid.",
    )
    base_url: str | None = Field(default=None, description="e.g. https://api.openai.com/v1")
    api_key_env: EnvName | None = Field(
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
    responses: Literal["native", "translate"] = Field(
        default="native",
        description="How /v1/responses reaches this upstream: 'native' (it serves the Responses API: OpenAI, "
        "vLLM, Ollama) or 'translate' (chat only: requests and answers are converted).",
    )
    stream_usage: bool = Field(
        default=True,
        description="Ask for stream_options.include_usage on streams (for usage records); "
        "turn off for servers that reject it.",
    )
    fine_tuning_until: dt.date | None = Field(
        default=None,
        description="Last day this provider accepts new fine-tuning jobs (YYYY-MM-DD); built in as "
        f"{OPENAI_FINE_TUNING_UNTIL} for OpenAI's base URL.",
    )

    @property
    def fine_tuning_cutoff(self) -> dt.date | None:
        """The day new fine-tuning jobs end here: the configured one, else OpenAI's own for OpenAI."""
        if self.fine_tuning_until is not None:
            return self.fine_tuning_until
        host = urlsplit(self.base_url or "").hostname or ""
        return OPENAI_FINE_TUNING_UNTIL if host == "api.openai.com" else None

    @model_validator(mode="after")
    def _base_url_for_openai(self) -> UpstreamSettings:
        if self.kind == "openai":
            if not self.base_url:
                raise ValueError("base_url is required, e.g. base_url = \"https://api.openai.com/v1\"")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
        return self


class RouteSettings(TargetFields):
    """``[routes.NAME]``: a virtual model name clients ask for, and its primary target."""

    display_name: str | None = Field(default=None, description="Human name shown in model lists.")
    description: str | None = Field(default=None, description="One line shown in model lists.")
    system_prompt: str | None = Field(default=None, description="The persona's system prompt.")
    system_prompt_file: Path | None = Field(
        default=None, description="File holding the system prompt, relative to the config file."
    )
    system_prompt_mode: Literal["replace", "prepend", "if_absent"] = Field(
        default="replace", description="What happens to the client's own system messages: 'replace' drops them "
        "(the route owns the persona), 'prepend' keeps them after the persona (a frontend that sends its own "
        "character card, as SillyTavern does), 'if_absent' applies the persona only when the client sent none.")
    user_name: str = Field(
        default="User", min_length=1, max_length=64,
        description="Who {{user}} is in a persona card when Open WebUI does not send the user's name.")
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
    fallbacks: list[FallbackSettings] = Field(
        default_factory=list, description="Targets tried in order when the primary cannot answer."
    )
    canary: list[CanarySettings] = Field(
        default_factory=list, description="Targets that each serve a share of conversations, sticky per chat.")
    shadow: list[ShadowSettings] = Field(
        default_factory=list, description="Targets sent a sample of requests too; their replies are only measured.")
    dataset: Path | None = Field(
        default=None, description="The persona's training JSONL: live fidelity and `eval` compare replies with it.")
    failover_on_rate_limit: bool = Field(default=False, description="Also fail over on 429 answers.")
    eval_markers: list[str] | None = Field(
        default=None, description="Persona markers `eval` counts (default: derived from the training replies).")
    eval_breaks: list[str] = Field(
        default_factory=list, description="More phrases that break character, for `eval` (added to its list).")

    @model_validator(mode="after")
    def _one_prompt_source(self) -> RouteSettings:
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise ValueError("set system_prompt or system_prompt_file, not both")
        for owned in ("model", "messages", "stream"):
            if owned in self.params:
                raise ValueError(f"params may not set '{owned}': the proxy owns it")
        total = sum(c.share for c in self.canary)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the canary shares add up to {total:g}, above 1: lower them so that they sum to "
                             "at most 1 (the primary serves what is left)")
        return self


class UsageSettings(BaseModel):
    """``[usage]``: where completed requests are recorded."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Record every completed request.")
    path: Path | None = Field(
        default=None,
        description="SQLite file; a relative path is relative to the config file. Default: "
        "persona-proxy-usage.sqlite3 in the data directory ($PERSONA_PROXY_DATA_DIR, else "
        "$XDG_DATA_HOME/persona-proxy, else ~/.local/share/persona-proxy).",
    )
    url_env: EnvName | None = Field(
        default=None,
        description="Environment variable holding a postgresql:// URL; when it is set, usage goes to "
        "PostgreSQL (shared by several replicas) instead of the SQLite file.",
    )


class PriceSettings(BaseModel):
    """``[prices."MODEL"]``: USD per million tokens, for usage reports."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="USD per 1M prompt tokens.")
    output: float = Field(ge=0, description="USD per 1M completion tokens.")


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
    usage: UsageSettings = Field(default_factory=UsageSettings)
    fidelity: FidelitySettings = Field(default_factory=FidelitySettings)
    prices: dict[str, PriceSettings] = Field(default_factory=dict)
    clients: dict[Name, ClientSettings] = Field(default_factory=dict)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    source: Path | None = Field(default=None, exclude=True)
    client_keys: tuple[SecretStr, ...] = Field(default=(), exclude=True)
    admin_keys: tuple[SecretStr, ...] = Field(default=(), exclude=True)
    usage_url: SecretStr | None = Field(default=None, exclude=True)
    upstream_keys: dict[str, SecretStr] = Field(default_factory=dict, exclude=True)
    client_key_sets: dict[str, tuple[SecretStr, ...]] = Field(default_factory=dict, exclude=True)
    redis_url: SecretStr | None = Field(default=None, exclude=True)
    # Every persona_card and lorebook the routes name, read and checked at load, by resolved path.
    # (Any: they are plain dataclasses holding compiled patterns, not pydantic models to validate.)
    cards: dict[Path, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _routes_name_upstreams(self) -> Config:
        for name, route in self.routes.items():
            named = [("upstream", route.upstream), ("task_upstream", route.task_upstream)]
            for table in ("fallbacks", "canary", "shadow"):
                named += [(f"{table}[{i}].upstream", t.upstream) for i, t in enumerate(getattr(route, table))]
            for key, upstream in named:
                if upstream is not None and upstream not in self.upstreams:
                    known = ", ".join(sorted(self.upstreams)) or "none defined"
                    raise ValueError(
                        f"routes.{name}.{key}: unknown upstream '{upstream}'; "
                        f"define [upstreams.{upstream}] or use one of: {known}"
                    )
        for name, client in self.clients.items():
            for scoped in client.routes or ():
                if scoped not in self.routes:
                    known = ", ".join(sorted(self.routes))
                    raise ValueError(f"clients.{name}.routes: unknown route '{scoped}'; use one of: {known} "
                                     "(or leave routes out for all of them)")
        return self

    @property
    def usage_file(self) -> Path:
        """The SQLite file for usage records, as resolved by ``load_config``."""
        if self.usage.path is None:
            raise RuntimeError("usage.path is resolved by load_config()")
        return self.usage.path

    def card(self, path: Path) -> Card:
        """The card read from ``path`` (a ``persona_card`` of one of the routes)."""
        from ..cards import Card

        found = self.cards[path]
        assert isinstance(found, Card)
        return found

    def book(self, path: Path) -> Book:
        """The lorebook read from ``path`` (a ``lorebook`` of one of the routes)."""
        from ..cards import Book

        found = self.cards[path]
        assert isinstance(found, Book)
        return found

    def upstream(self, name: str) -> Upstream:
        return Upstream(name=name, settings=self.upstreams[name], api_key=self.upstream_keys.get(name))
