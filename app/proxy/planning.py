"""Deciding what to send where: persona, task handling, and when to fail over.

Pure functions over a route, one of its targets and the client's body; the
serving layer calls them and does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .apis import CHAT, Api
from .errors import BadGateway, GatewayTimeout, ProxyError, ServiceUnavailable, UpstreamStatusError
from .openwebui import Caller, caller_from, detect_task, task_header
from .routing import Route, Target

if TYPE_CHECKING:
    from .card_persona import Persona

Headers = Iterable[tuple[bytes, bytes]]
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a request goes and what is sent there."""

    upstream: str
    body: dict[str, Any]
    task: str | None
    caller: Caller
    target: Target
    dropped: int = 0  # the client's system messages the route's system_prompt_mode left out


def plan_request(route: Route, target: Target, body: dict[str, Any], headers: Headers, *,
                 forward_user_id: bool, api: Api = CHAT) -> Plan:
    """Apply a route's target to a client body: the persona for chats, none for background tasks."""
    s = route.settings
    task = detect_task({"messages": api.messages(body)}, task_header(headers))
    caller = caller_from(headers)
    dropped = 0
    if task is not None and not s.task_persona:
        # A title or tag request: no persona, no persona tuning, maybe a cheaper model.
        out = {**body, "model": s.task_model or target.model}
        upstream = s.task_upstream or target.upstream
    else:
        mode = s.system_prompt_mode
        if target.prompt is not None or target.persona is not None:
            dropped = api.dropped(body, mode)
        if target.persona is None:
            out = api.build(body, model=target.model, prompt=target.prompt, mode=mode, params=target.params,
                            few_shot=target.few_shot)
        else:
            out = _with_card(route, target, target.persona, body, caller, api)
        upstream = target.upstream
    if forward_user_id and caller.user_id and "user" not in out:
        out["user"] = caller.user_id
    return Plan(upstream, out, task, caller, target, dropped)


def _with_card(route: Route, target: Target, persona: Persona, body: dict[str, Any], caller: Caller,
               api: Api) -> dict[str, Any]:
    """A card persona's request: the lorebook entries this conversation triggers, {{user}}, post-history."""
    from .card_persona import render  # imported by the first card request, not by every process

    mode = route.settings.system_prompt_mode
    rendered = render(persona, api.messages(body), caller.user_name)
    out = api.build(body, model=target.model, prompt=rendered.prompt or None, mode=mode, params=target.params,
                    few_shot=rendered.few_shot)
    if (rendered.inserts or rendered.post) and api.applies(body, mode):
        out = api.place(out, len(rendered.few_shot), rendered.inserts, rendered.post)
    if rendered.fired and logger.isEnabledFor(logging.DEBUG):
        logger.debug("lorebook on route %s: %d entr%s fired: %s", route.name, len(rendered.fired),
                     "y" if len(rendered.fired) == 1 else "ies", ", ".join(rendered.fired))
    return out


def signals_retirement(err: ProxyError) -> bool:
    """The upstream says this model is gone, in any server's words.

    OpenAI: 404 ``model_not_found``; vLLM: 404 "The model `x` does not exist.";
    Ollama: 404 "model 'x' not found"; LiteLLM: 400 "Invalid model name passed
    in model=x"; anyone: 410. Any other 400 is about the request, not the model.
    """
    if not isinstance(err, UpstreamStatusError):
        return False
    if err.status == 410:
        return True
    text = err.message.lower()
    if err.status == 400:
        return "invalid model name passed in model=" in text
    return err.status == 404 and (
        err.error.get("code") == "model_not_found"
        or ("model" in text and ("not found" in text or "does not exist" in text))
    )


def should_fail_over(err: ProxyError, *, on_rate_limit: bool) -> bool:
    """Whether another target may answer instead: the target failed, not the request."""
    if isinstance(err, BadGateway | GatewayTimeout | ServiceUnavailable):
        return True
    if not isinstance(err, UpstreamStatusError):
        return False
    if err.status == 429:
        return on_rate_limit
    return err.status >= 500 or signals_retirement(err)


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Make a stream report usage; True when the client did not ask (so it must not see it)."""
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return False
    body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return True
