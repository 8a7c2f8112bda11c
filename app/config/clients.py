"""``[clients.NAME]`` and ``[limits]``: who may call the proxy, on which routes, how much.

The models only say what a file may hold; keys are read from the
environment by :mod:`app.config.loading`, and the counting lives in
:mod:`app.clients`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .names import EnvName, Name

# A limit is a whole positive number: `rpm = 1.5` or `rpm = "60"` is refused, not rounded.
Count = Annotated[int, Field(strict=True, ge=1)]


class LimitFields(BaseModel):
    """The limits a client, or each of its end users, is held to (none by default)."""

    model_config = ConfigDict(extra="forbid")

    rpm: Count | None = Field(default=None, description="Requests per minute (a fixed window on the clock's minute).")
    tpm: Count | None = Field(
        default=None, description="Tokens per minute: prompt plus completion as the upstream reports them.")
    max_parallel: Count | None = Field(default=None, description="Requests in flight at once.")
    budget_usd: float | None = Field(
        default=None, gt=0, description="USD per budget_period, priced from [prices]; reserved at the worst case.")
    budget_period: Literal["day", "month"] = Field(default="month", description="The budget's period, in UTC.")

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.max_parallel, self.budget_usd))

    @property
    def counts_tokens(self) -> bool:
        """Whether admission needs the request's worst case (tokens or cost)."""
        return self.tpm is not None or self.budget_usd is not None


class ClientSettings(LimitFields):
    """``[clients.NAME]``: one named caller with its own keys, routes and limits."""

    key_env: EnvName = Field(description="Environment variable holding the client's comma-separated keys "
                                         "(several at once while one is rotated out).")
    routes: list[Name] | None = Field(default=None, description="Routes the client may use (default: all).")
    per_user: LimitFields = Field(
        default_factory=LimitFields,
        description="The same kinds of limits for each end user (X-OpenWebUI-User-Id, else the body's 'user').")

    @property
    def limited(self) -> bool:
        return self.any or self.per_user.any

    @property
    def weighs_requests(self) -> bool:
        """Whether any of its limits (its own or per user) needs each request's worst case."""
        return self.counts_tokens or self.per_user.counts_tokens

    @property
    def budgeted(self) -> bool:
        return self.budget_usd is not None or self.per_user.budget_usd is not None


class LimitsSettings(BaseModel):
    """``[limits]``: where the clients' counters live and what happens when that store fails."""

    model_config = ConfigDict(extra="forbid")

    redis_url_env: EnvName | None = Field(
        default=None, description="Environment variable holding a redis:// URL (Redis or Valkey): counters "
        "shared by every worker and replica. Without it one process counts (exact for one worker).")
    on_store_error: Literal["open", "closed"] = Field(
        default="open", description="When Redis does not answer: 'open' serves (logged, counted), 'closed' "
        "answers 503 limits_unavailable.")
    store_timeout_ms: Annotated[int, Field(strict=True, ge=1, le=5000)] = Field(
        default=50, description="How long one round trip to Redis may take before the failure mode applies.")
    default_max_tokens: Count = Field(
        default=4096, description="The output a request without max_tokens reserves; it is also sent upstream "
        "as max_tokens for clients with token or budget limits, so the reservation is a real bound.")


class Client(BaseModel):
    """A client with its keys resolved from the environment (never logged)."""

    name: str
    settings: ClientSettings
    keys: tuple[SecretStr, ...] = ()
