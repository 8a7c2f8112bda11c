"""Few-shot examples from a persona's own training set, for prompt-only targets.

When the fine-tuned model is gone, a base model can keep the persona's style
if it sees a few of the exchanges the fine-tune learned from. Exchanges are
the first user/assistant pair of each example, deduplicated, taken in a
fixed order (by content hash, so the choice spreads over the whole file and
never changes between restarts) until the count or the token budget is
reached.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dataset import comparable
from .tokens import TokenCounter

MAX_CANDIDATES = 20_000


def exchanges(path: Path) -> Iterator[tuple[str, str]]:
    """Each example's first (user, assistant) pair of plain strings; bad lines are skipped."""
    with path.open("rb") as fh:
        for raw in fh:
            try:
                example = json.loads(raw.lstrip(b"\xef\xbb\xbf"))
            except ValueError:
                continue
            messages = example.get("messages") if isinstance(example, dict) else None
            if isinstance(messages, list):
                pair = _first_pair(messages)
                if pair is not None:
                    yield pair


def _first_pair(messages: list[Any]) -> tuple[str, str] | None:
    for user, reply in itertools.pairwise(messages):
        if (isinstance(user, dict) and isinstance(reply, dict) and user.get("role") == "user"
                and reply.get("role") == "assistant" and isinstance(user.get("content"), str)
                and isinstance(reply.get("content"), str) and reply["content"].strip()):
            return user["content"], reply["content"]
    return None


def select(path: Path, count: int, max_tokens: int, counter: TokenCounter) -> list[dict[str, str]]:
    """Up to ``count`` distinct exchanges within ``max_tokens``, as chat messages."""
    candidates: dict[str, tuple[str, str]] = {}
    for user, reply in exchanges(path):
        key = comparable(user) + "\x00" + comparable(reply)
        candidates.setdefault(hashlib.sha1(key.encode()).hexdigest(), (user, reply))
        if len(candidates) >= MAX_CANDIDATES:
            break
    chosen: list[dict[str, str]] = []
    spent = 0
    for _, (user, reply) in sorted(candidates.items()):
        cost = message_tokens(user, reply, counter)
        if spent + cost > max_tokens:
            continue
        chosen += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        spent += cost
        if len(chosen) // 2 == count:
            break
    return chosen


def message_tokens(user: str, reply: str, counter: TokenCounter) -> int:
    # The cookbook's count: 3 per message plus its role and content.
    return 6 + counter.text("user") + counter.text("assistant") + counter.text(user) + counter.text(reply)


def cost(messages: list[dict[str, str]] | tuple[dict[str, str], ...], counter: TokenCounter) -> int:
    """Prompt tokens the exchanges add to every request (the cookbook's 3 per message, role and content)."""
    return sum(3 + counter.text(m["role"]) + counter.text(m["content"]) for m in messages)
