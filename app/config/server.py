"""``[server]``: where the proxy listens and who may call it, and its environment overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .names import EnvName


class ServerSettings(BaseModel):
    """``[server]``: where the proxy listens and who may call it.

    Environment variables named ``PERSONA_PROXY_<FIELD>`` override the file
    (see :func:`server_env`).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to bind.")
    api_keys_env: EnvName = Field(
        default="PERSONA_PROXY_API_KEYS",
        description="Environment variable holding the comma-separated client keys.",
    )
    admin_keys_env: EnvName = Field(
        default="PERSONA_PROXY_ADMIN_KEYS",
        description="Environment variable holding admin keys: /metrics is served, and the whole console at "
        "/console opens, only to them (client keys see only their own client there).",
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
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (e.g. https://chat.example.com) allowed to call the proxy directly; "
        "none by default. Preflights are answered and CORS headers added for these only.",
    )
    forward_user_id: bool = Field(
        default=False,
        description="Send Open WebUI's X-OpenWebUI-User-Id upstream as the 'user' field "
        "(when the client sent none). Off: it gives the provider an identifier.",
    )
    check_models: bool = Field(
        default=True,
        description="At start and daily, read each upstream's /models for shutdown dates and warn "
        "about targets retiring within 30 days.",
    )
    reload_on_change: bool = Field(
        default=False, description="Also reload the config when its file changes (checked every 2 s)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines as text or JSON.")

    @model_validator(mode="after")
    def _origins_are_origins(self) -> ServerSettings:
        for origin in self.cors_origins:
            scheme, _, rest = origin.partition("://")
            if origin != "*" and (scheme not in ("http", "https") or not rest or "/" in rest):
                raise ValueError(f"cors_origins: {origin!r} is not an origin; write it like "
                                 "https://chat.example.com (scheme and host, optional port, no path)")
        return self


SERVER_ENV_PREFIX = "PERSONA_PROXY_"


def server_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``[server]`` values set in the environment: ``PERSONA_PROXY_<FIELD>``, in any case.

    The rules pydantic-settings applied, kept when it was dropped (it loaded
    4 MB of sources this never used into every worker): a list field takes
    JSON (``["https://a.example"]``); anything else is a string for the
    model to validate, so a bad value is reported like one in the file.
    """
    values = {name.upper(): value for name, value in environ.items() if name.upper().startswith(SERVER_ENV_PREFIX)}
    found: dict[str, Any] = {}
    for field, info in ServerSettings.model_fields.items():
        value = values.get(SERVER_ENV_PREFIX + field.upper())
        if value is None:
            continue
        if get_origin(info.annotation) is list:
            try:
                found[field] = json.loads(value)
            except ValueError:
                found[field] = value  # not JSON: the model says what a list must look like
        else:
            found[field] = value
    return found
