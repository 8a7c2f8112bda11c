"""The settings of a route's targets (primary, fallbacks, canaries, shadows) and of live fidelity.

Split from :mod:`app.config.settings`, which re-exports them, to keep each
module readable; the rules are the same (unknown keys are errors, every
field is typed and described).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# The share of replies live fidelity measures by default (the cost measured in bench/results/).
FIDELITY_SAMPLE = 0.05


class TargetFields(BaseModel):
    """What the primary target and each fallback of a route may set."""

    model_config = ConfigDict(extra="forbid")

    upstream: str = Field(description="Name of an [upstreams.NAME] table.")
    model: str = Field(min_length=1, description="Model id sent to the upstream.")
    system_prompt_extra: str | None = Field(
        default=None, description="Added after the route's system prompt for this target only."
    )
    few_shot_from: Path | None = Field(
        default=None, description="Training JSONL to take example exchanges from (relative to the config)."
    )
    few_shot_count: int = Field(default=6, ge=1, le=50, description="How many exchanges to insert.")
    few_shot_max_tokens: int = Field(default=1500, ge=50, description="Token budget for the exchanges.")
    shutdown_date: dt.date | None = Field(
        default=None, description="When the model retires, if the upstream does not say (YYYY-MM-DD)."
    )
    persona_card: Path | None = Field(
        default=None, description="A character card (PNG, JSON or CHARX) whose persona this target serves "
        "(relative to the config; on the route: every target's, unless a target names its own).")
    lorebook: Path | None = Field(
        default=None, description="A lorebook (lorebook_v3 JSON or a bare book) whose entries enter the prompt "
        "when the conversation names them (relative to the config; on the route: every target's).")


class FallbackSettings(TargetFields):
    """``[[routes.NAME.fallbacks]]``: tried in order when the targets before it fail."""

    params: dict[str, Any] = Field(default_factory=dict, description="Overrides of the route's params.")


def _share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be from 0 to 1 (0.1 is 10%)")
    return value


Share = Annotated[float, AfterValidator(_share)]


class CanarySettings(FallbackSettings):
    """``[[routes.NAME.canary]]``: takes a share of conversations, each for its whole life."""

    share: Share = Field(description="The share of conversations this target serves, from 0 to 1.")


class ShadowSettings(FallbackSettings):
    """``[[routes.NAME.shadow]]``: also answers a sample of requests; the client never sees it."""

    sample: Share = Field(default=1.0, description="The share of requests also sent here, from 0 to 1.")
    max_in_flight: int = Field(
        default=4, ge=1, le=1024,
        description="Shadow requests in flight at most; a request that finds it full is not shadowed.")


class FidelitySettings(BaseModel):
    """``[fidelity]``: live persona fidelity of every reply on routes with a ``dataset``."""

    model_config = ConfigDict(extra="forbid")

    sample: Share = Field(default=FIDELITY_SAMPLE, description="The share of replies measured, from 0 to 1.")
    keep_replies: bool = Field(
        default=False, description="Also store the text of measured replies (off: only their measures).")
