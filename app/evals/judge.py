"""An optional judge model: a 1-5 score per reply, against the persona and two reference exchanges.

The judge answers with structured output (a JSON schema with ``score`` and
``reason``), so nothing is parsed out of prose. The rubric is printed with the
report, so a reader knows what a 4 means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from ..proxy.errors import ProxyError
from ..proxy.upstream import UpstreamClient
from .runner import Prompt, TargetRun, ask

RUBRIC = """Score how well the reply keeps the persona, from 1 to 5:
5 = indistinguishable from the persona's own replies (voice, language, form of address, length, warmth);
4 = clearly the persona, with a small slip (a little long, one odd phrase);
3 = recognisably meant to be the persona, but off in language, tone or length;
2 = mostly a generic assistant with a trace of the persona;
1 = not the persona at all, or it talks about being an AI or a language model."""

SCHEMA = {"type": "json_schema", "json_schema": {"name": "persona_score", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["score", "reason"],
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "reason": {"type": "string"}}}}}


def judge_request(model: str, persona: str, examples: Sequence[Prompt], prompt: str, reply: str) -> dict[str, Any]:
    shown = "\n\n".join(f"User: {e.text}\nPersona: {e.reference}" for e in examples[:2])
    return {"model": model, "temperature": 0, "response_format": SCHEMA, "messages": [
        {"role": "system", "content": f"You judge persona fidelity.\n{RUBRIC}"},
        {"role": "user", "content": f"The persona's system prompt:\n{persona}\n\nTwo of the persona's own exchanges:"
                                    f"\n{shown}\n\nThe exchange to score:\nUser: {prompt}\nReply: {reply}"}]}


async def judge_all(client: UpstreamClient, model: str, persona: str, examples: Sequence[Prompt],
                    prompts: Sequence[Prompt], runs: Sequence[TargetRun], concurrency: int) -> None:
    """Fill ``run.judged`` (one score or None per reply) for every run."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(run: TargetRun, index: int) -> None:
        reply = run.replies[index]
        if reply is None:
            return
        async with semaphore:
            body = judge_request(model, persona, examples, prompts[index].text, reply)
            try:
                verdict = orjson.loads(await ask(client, body))
                score = verdict.get("score")
                run.judged[index] = score if isinstance(score, int) and 1 <= score <= 5 else None
            except (ProxyError, ValueError, AttributeError):
                run.judged[index] = None  # one unusable verdict; the others still count

    for run in runs:
        run.judged = [None] * len(run.replies)
    await asyncio.gather(*(one(run, i) for run in runs for i in range(len(run.replies))))
