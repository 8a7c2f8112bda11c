"""Prompts, targets and replies: what ``persona-proxy eval`` sends and collects.

Requests are planned by the code that serves the route (``plan_request``:
persona, ``system_prompt_extra``, few-shot exchanges, params) and sent with
the proxy's upstream client, so an eval measures what a user would get.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..config import Config
from ..proxy.errors import BadGateway, GatewayTimeout, ProxyError, UpstreamStatusError
from ..proxy.planning import plan_request, signals_retirement
from ..proxy.routing import Route, Target
from ..proxy.runtime import client_for
from ..proxy.upstream import UpstreamClient
from ..tuning import fewshot

RATE_LIMIT_TRIES = 4


@dataclass(frozen=True)
class Prompt:
    text: str
    reference: str | None = None


@dataclass
class TargetRun:
    """One target's replies (None where a request failed) and what stopped it, if anything."""

    label: str  # MODEL@UPSTREAM
    target: Target
    candidate: bool = False
    status: str = "ok"  # ok | retired | unreachable | key not set | key refused
    note: str = ""
    replies: list[str | None] = field(default_factory=list)
    judged: list[int | None] = field(default_factory=list)  # the judge's 1-5 per reply, with --judge


def held_out(dataset: Path, exclude: Sequence[Target], limit: int) -> list[Prompt]:
    """The first user turn of each distinct example no target uses as a few-shot exchange.

    Chosen by content hash, so the same file always gives the same prompts.
    """
    used = {m["content"] for t in exclude for m in t.few_shot if m["role"] == "user"}
    seen: dict[str, str] = {}
    for user, reply in fewshot.exchanges(dataset):
        if user not in used and user not in seen:
            seen[user] = reply
    ordered = sorted(seen, key=lambda text: hashlib.sha256(text.encode()).hexdigest())
    return [Prompt(text, seen[text]) for text in ordered[:limit]]


def prompts_file(path: Path) -> list[Prompt]:
    """Prompts from a text file (one per line) or JSONL (``{"prompt", "reference"?}``)."""
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                item = json.loads(line)
                prompts.append(Prompt(str(item["prompt"]), item.get("reference")))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{number}: expected {{\"prompt\": ..., \"reference\": ...}}") from None
        else:
            prompts.append(Prompt(line.strip()))
    return prompts


def training_replies(dataset: Path) -> list[str]:
    return [reply for _, reply in fewshot.exchanges(dataset)]


def dataset_of(route: Route) -> Path | None:
    """The route's training set: its ``dataset``, else the ``few_shot_from`` file of one of its targets."""
    if route.settings.dataset is not None:
        return Path(route.settings.dataset)
    for spec in [route.settings, *route.settings.fallbacks, *route.settings.canary, *route.settings.shadow]:
        if spec.few_shot_from is not None:
            return Path(spec.few_shot_from)
    return None


def candidate(route: Route, spec: str, index: int) -> Target:
    """``MODEL@UPSTREAM`` as a fallback of ``route`` with its persona (no extra, no few-shot but a card's)."""
    model, _, upstream = spec.rpartition("@")
    if not model or not upstream:
        raise ValueError(f"--target takes MODEL@UPSTREAM, e.g. gpt-4.1-mini@openai, not {spec!r}")
    if route.settings.persona_card is not None:
        # A card's persona is its prompt, examples and lorebook together: the candidate gets all of it.
        primary = route.targets[0]
        return dataclasses.replace(primary, index=index, upstream=upstream, model=model, shutdown_date=None,
                                   role="fallback", params=dict(route.settings.params))
    return Target(index, upstream, model, route.settings.system_prompt, (), dict(route.settings.params), None,
                  "fallback")


async def run_all(config: Config, route: Route, runs: list[TargetRun], prompts: Sequence[Prompt],
                  concurrency: int, progress: Callable[[], None]) -> None:
    """Fill every run's replies; a Ctrl-C keeps what has arrived."""
    semaphore = asyncio.Semaphore(concurrency)
    clients = {name: client_for(config, name) for name in config.upstreams}
    try:
        for run in runs:
            run.replies = [None] * len(prompts)
        jobs = [_one(clients, route, run, i, p, semaphore, progress)
                for run in runs if run.status == "ok" for i, p in enumerate(prompts)]
        await asyncio.gather(*jobs)
    finally:
        for client in clients.values():
            await client.aclose()


async def _one(clients: dict[str, UpstreamClient], route: Route, run: TargetRun, index: int, prompt: Prompt,
               semaphore: asyncio.Semaphore, progress: Callable[[], None]) -> None:
    async with semaphore:
        if run.status != "ok":
            return  # the target turned out retired or unreachable meanwhile
        body = {"model": route.name, "messages": [{"role": "user", "content": prompt.text}]}
        plan = plan_request(route, run.target, body, [], forward_user_id=False)
        try:
            run.replies[index] = await ask(clients[plan.upstream], plan.body)
        except ProxyError as err:
            _note_failure(run, err)
        progress()


async def ask(client: UpstreamClient, body: dict[str, Any]) -> str:
    """The text of a whole chat answer to ``body``; 429s are waited out with the upstream's retry-after."""
    for attempt in range(RATE_LIMIT_TRIES):
        try:
            response = await client.post("chat/completions", orjson.dumps(body), stream=False)
        except UpstreamStatusError as err:
            if err.status != 429 or attempt == RATE_LIMIT_TRIES - 1:
                raise
            await asyncio.sleep(_retry_after(err.headers.get("retry-after"), attempt))
            continue
        try:
            answer = orjson.loads(await response.aread())
        finally:
            await response.aclose()
        content = ((answer.get("choices") or [{}])[0].get("message") or {}).get("content")
        return content if isinstance(content, str) else ""
    raise AssertionError("unreachable")


def _retry_after(value: str | None, attempt: int) -> float:
    try:
        return min(30.0, float(value)) if value else 2.0 ** attempt
    except ValueError:
        return 2.0 ** attempt


def _note_failure(run: TargetRun, err: ProxyError) -> None:
    if signals_retirement(err):
        run.status, run.note = "retired", err.message[:200]
    elif err.code == "upstream_key_missing":
        run.status, run.note = "key not set", err.message[:200]
    elif err.code == "upstream_auth_failed":
        run.status, run.note = "key refused", err.message[:200]
    elif isinstance(err, GatewayTimeout) or (isinstance(err, BadGateway) and err.code in (
            "upstream_unreachable", "upstream_connection_error")):
        run.status, run.note = "unreachable", err.message[:200]
    else:
        run.note = err.message[:200]  # one failed request; the others still count


def retired_on(target: Target, today: dt.date) -> bool:
    return target.shutdown_date is not None and target.shutdown_date <= today
