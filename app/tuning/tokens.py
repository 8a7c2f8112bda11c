"""Token counting for fine-tuning datasets: tiktoken's ``o200k_base``, offline.

tiktoken downloads its vocabulary on first use. Offline, the vocabulary can
come from its cache (``TIKTOKEN_CACHE_DIR``) or from the copy the
``bpe-openai`` package ships, which is written into that cache here. Without
either, counts are an estimate, and say so.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.resources
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_WIDE = re.compile("[\u2e80-\U0010ffff]")
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


class TokenCounter:
    """Counts tokens of chat examples the way OpenAI's cookbook does."""

    def __init__(self, encode: Callable[[str], int], exact: bool, source: str) -> None:
        self._count = encode
        self.exact = exact
        self.source = source

    def text(self, value: str) -> int:
        return self._count(value)

    def example(self, messages: list[dict[str, Any]], tools: Any = None) -> int:
        """3 per message, its values, 1 more for a name, 3 per example (the cookbook's rule)."""
        total = 3
        for message in messages:
            total += 3
            for key, value in message.items():
                if key == "weight":
                    continue
                total += self._count(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
                if key == "name":
                    total += 1
        if tools:
            total += self._count(json.dumps(tools, ensure_ascii=False))
        return total


def load_counter() -> TokenCounter:
    """An exact ``o200k_base`` counter when its vocabulary can be had offline, else an estimate."""
    try:
        import tiktoken
    except ImportError:
        return _estimate("tiktoken is not installed")
    # A read-only cache directory is fine: tiktoken may still have the file, or we estimate.
    with contextlib.suppress(OSError):
        _prime_cache_from_bpe_openai()
    try:
        encoding = tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # no cache and no network: say why, count anyway
        return _estimate(f"o200k_base vocabulary unavailable ({type(exc).__name__})")
    # encode_ordinary: special-token text counted as plain text, as encode(disallowed_special=()) does, faster.
    return TokenCounter(lambda s: len(encoding.encode_ordinary(s)), True, "tiktoken o200k_base")


def _estimate(why: str) -> TokenCounter:
    # Roughly 4 characters per token in English, about 1 per CJK character.
    def count(text: str) -> int:
        wide = len(text) - len(_WIDE.sub("", text))
        return wide + (len(text) - wide + 3) // 4

    return TokenCounter(count, False, f"ESTIMATE ({why})")


def _cache_dir() -> Path:
    # The same lookup tiktoken makes.
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(name):
            return Path(os.environ[name])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _prime_cache_from_bpe_openai() -> None:
    target = _cache_dir() / hashlib.sha1(O200K_URL.encode()).hexdigest()
    if target.exists():
        return
    try:
        packed = (importlib.resources.files("bpe_openai.data") / "o200k_base.tiktoken.gz").read_bytes()
    except (ImportError, FileNotFoundError, OSError):
        return
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        return  # not the vocabulary tiktoken expects: leave the cache alone
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
