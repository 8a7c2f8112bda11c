"""What a limited client is told: OpenAI's ``x-ratelimit-*`` headers, and a 429's message and headers.

Only the caller's own client and limits are ever named: never another
client, never an end user's id, never what other parties use.
"""

from __future__ import annotations

import math

from .limits import BUDGET, NANO, PARALLEL, RPM, TPM, Ask, Party, PartyState, Refused, duration, reset_words

_PERIOD = {"day": "per day (UTC)", "month": "per month (UTC)"}


def headers_for(parties: tuple[Party, ...], states: tuple[PartyState, ...]) -> dict[str, str]:
    """The requests and tokens trios for the tightest of the caller's own limits, as OpenAI sends them."""
    headers: dict[str, str] = {}
    requests: tuple[int, int, int] | None = None
    tokens: tuple[int, int, int] | None = None
    for party, state in zip(parties, states, strict=True):
        if party.rpm is not None:
            left = max(party.rpm - state.requests, 0)
            if requests is None or left < requests[1]:
                requests = (party.rpm, left, state.window_reset_ms)
        if party.tpm is not None:
            left = max(party.tpm - state.tokens, 0)
            if tokens is None or left < tokens[1]:
                tokens = (party.tpm, left, state.window_reset_ms)
    if requests is not None:
        headers.update(_trio("requests", *requests))
    if tokens is not None:
        headers.update(_trio("tokens", *tokens))
    return headers


def _usd(nano: int) -> str:
    usd = nano / NANO
    return f"${usd:.2f}" if usd >= 1 else f"${usd:.4g}"


def refusal_message(client: str, party: Party, refused: Refused, ask: Ask) -> tuple[str, dict[str, str]]:
    """The 429's message and headers for a refused request."""
    who = f"end user of client '{client}'" if party.per_user else f"client '{client}'"
    key = ("per_user." if party.per_user else "") + refused.limit
    when = reset_words(refused.reset_ms)
    retry = max(math.ceil(refused.reset_ms / 1000), 1)
    headers = {"retry-after": str(retry), "retry-after-ms": str(max(refused.reset_ms, 1000))}
    if refused.limit == RPM:
        assert party.rpm is not None
        message = f"Rate limit reached for {who}: {party.rpm} requests per minute ({key}). It resets {when}."
        headers.update(_trio("requests", party.rpm, party.rpm - refused.used, refused.reset_ms))
    elif refused.limit == TPM:
        assert party.tpm is not None
        headers.update(_trio("tokens", party.tpm, party.tpm - refused.used, refused.reset_ms))
        if refused.too_large:
            message = (f"Request too large for {who}: it may use up to {ask.tokens} tokens (its prompt plus its "
                       f"max_tokens), above the limit of {party.tpm} tokens per minute ({key}); lower max_tokens "
                       "or shorten the conversation.")
        else:
            message = (f"Rate limit reached for {who}: {party.tpm} tokens per minute ({key}); this request may use "
                       f"up to {ask.tokens} and {refused.used} are in use. It resets {when}.")
    elif refused.limit == PARALLEL:
        message = (f"Too many requests in flight for {who}: at most {party.max_parallel} at once ({key}). "
                   "Retry when one finishes.")
        headers.update({"retry-after": "1", "retry-after-ms": "1000"})
    else:
        assert refused.limit == BUDGET and party.budget is not None
        budget = f"{_usd(party.budget)} {_PERIOD[party.period]}"
        if refused.too_large:
            message = (f"This request's worst case ({_usd(ask.cost)}, its prompt plus its max_tokens) is more than "
                       f"the whole budget of {who}, {budget} ({key}); lower max_tokens.")
        else:
            message = f"Budget spent for {who}: {budget} ({key}). It resets {when}."
    if refused.too_large or refused.limit == BUDGET:
        headers["x-should-retry"] = "false"  # the SDKs would otherwise retry into it
    return message, headers


def _trio(kind: str, limit: int, left: int, reset_ms: int) -> dict[str, str]:
    return {f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(max(left, 0)),
            f"x-ratelimit-reset-{kind}": duration(reset_ms)}
