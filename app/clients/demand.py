"""A request's worst case, before it is sent: its prompt tokens, its largest output, their price.

Pure functions over the request body. The prompt is counted with the same
``o200k_base`` tokenizer the fine-tuning tools use (exact for OpenAI's
current models, close for others); the reservation is settled to what the
upstream reports anyway, so only its worst case has to be safe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..config.settings import PriceSettings
from ..tuning.tokens import TokenCounter

# Per message, what OpenAI's chat format adds around its content (the cookbook's 3, plus a margin of 1).
MESSAGE_OVERHEAD = 4
OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_SKIPPED = frozenset({"type", "role", "id", "call_id", "status"})


def prompt_tokens(body: Mapping[str, Any], counter: TokenCounter) -> int:
    """Tokens of every string a client sent as its prompt (messages or input, instructions, tools)."""
    total = 0
    for field in ("messages", "input", "instructions", "tools", "functions"):
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, list):
            total += MESSAGE_OVERHEAD * len(value)
            for item in value:
                content = item.get("content") if isinstance(item, dict) and len(item) == 2 else None
                # The common message, {"role": ..., "content": "text"}, without the general walk.
                total += counter.text(content) if isinstance(content, str) else _tokens(item, counter)
        else:
            total += _tokens(value, counter)
    return total


def _tokens(value: Any, counter: TokenCounter) -> int:
    if isinstance(value, str):
        return counter.text(value)
    if isinstance(value, list):
        return sum(_tokens(v, counter) for v in value)
    if isinstance(value, dict):
        # Image parts and the like: their URLs are not text the model reads; a fixed cost stands in.
        if value.get("type") in ("image_url", "input_image", "input_file"):
            return 765
        return sum(_tokens(v, counter) for k, v in value.items() if k not in _SKIPPED)
    return 0


def max_output(body: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
    """The largest output the request allows (times ``n`` choices), from its body, else the route's params."""
    for source in (body, params) if params else (body,):
        for field in OUTPUT_FIELDS:
            value = source.get(field)
            if value is not None and type(value) is int and value > 0:
                return value * (choices(body, params) if "n" in body or "n" in params else 1)
    return None


def choices(body: Mapping[str, Any], params: Mapping[str, Any]) -> int:
    n = body.get("n", params.get("n", 1))
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


class PriceBook:
    """``[prices]`` in nano-USD per token, for reservations (the dearest model) and settlements."""

    def __init__(self, prices: Mapping[str, PriceSettings]) -> None:
        # USD per 1M tokens is exactly 1,000 nano-USD per token per dollar.
        self._prices = {model: (p.input * 1000, p.output * 1000) for model, p in prices.items()}

    def priced(self, model: str) -> bool:
        return model in self._prices

    def bound(self, models: Iterable[str]) -> tuple[float, float]:
        """The highest input and output price among ``models`` (0 for a model with no price)."""
        found = [self._prices.get(m, (0.0, 0.0)) for m in models]
        return max((p[0] for p in found), default=0.0), max((p[1] for p in found), default=0.0)

    def cost(self, model: str, prompt: int, completion: int) -> int:
        price_in, price_out = self._prices.get(model, (0.0, 0.0))
        return math.ceil(prompt * price_in + completion * price_out)
