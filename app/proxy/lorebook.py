"""Choosing a lorebook's entries for one request: pure functions over the conversation's recent text.

The rules, in order: an entry fires when one of its ``keys`` occurs in the
last ``scan_depth`` user and assistant messages (the book's, else
:data:`DEFAULT_SCAN_DEPTH`), a ``selective`` one only when one of its
``secondary_keys`` does too, a ``constant`` one always, a disabled or
``@@dont_activate`` one never. Over the book's ``token_budget`` the lowest
``priority`` goes first (ties: the later ``insertion_order``); the rest are
inserted by ``insertion_order``, lowest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cards import Book
from ..cards.macros import resolve
from ..tuning.tokens import TokenCounter

# SillyTavern's default: the user's last message and the reply before it.
DEFAULT_SCAN_DEPTH = 2
# Keys are matched on at most this much of the newest text (RE2 is linear; this bounds the constant).
MAX_SCAN_CHARS = 100_000
# Text parts, in chat and in Responses items.
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


@dataclass(frozen=True, slots=True)
class Lore:
    """A book ready for requests: its entries' text with ``{{char}}`` resolved, and their token counts."""

    book: Book
    contents: tuple[str, ...]
    tokens: tuple[int, ...]
    scan_depth: int
    constant: tuple[int, ...]

    @property
    def most_tokens(self) -> int:
        """The most a request can get from this book: every entry, or the budget."""
        total = sum(self.tokens)
        budget = self.book.token_budget
        return total if budget is None else min(total, budget)


def lore_of(book: Book, char: str, counter: TokenCounter) -> Lore:
    contents = tuple(resolve(entry.content, char) for entry in book.entries)
    depth = DEFAULT_SCAN_DEPTH if book.scan_depth is None else book.scan_depth
    constant = tuple(i for i, e in enumerate(book.entries) if e.constant and not e.never)
    return Lore(book, contents, tuple(counter.text(c) for c in contents), depth, constant)


def fire(lore: Lore, texts: Sequence[str]) -> list[int]:
    """The entries (indexes) this conversation triggers, within the budget, in insertion order."""
    entries = lore.book.entries
    chosen = set(lore.constant)
    if lore.scan_depth and texts:
        text = "\n\n".join(texts[-lore.scan_depth:])[-MAX_SCAN_CHARS:]
        primary, secondary = lore.book.matcher.hits(text)
        chosen.update(i for i in primary if not entries[i].never and (not entries[i].selective or i in secondary))
    budget = lore.book.token_budget
    spent = sum(lore.tokens[i] for i in chosen) if budget is not None else 0
    if budget is not None and spent > budget:
        for i in sorted(chosen, key=lambda i: (entries[i].priority, -entries[i].insertion_order, -i)):
            chosen.discard(i)
            spent -= lore.tokens[i]
            if spent <= budget:
                break
    return sorted(chosen, key=lambda i: (entries[i].insertion_order, i))


def recent_texts(items: Sequence[Any], depth: int) -> list[str]:
    """The text of the last ``depth`` user and assistant messages (chat messages or Responses items)."""
    found: list[str] = []
    for item in reversed(items):
        if len(found) >= depth:
            break
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            continue
        text = _text(item.get("content"))
        if text:
            found.append(text)
    found.reverse()
    return found


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and part.get("type") in TEXT_PARTS
                         and isinstance(part.get("text"), str))
    return ""
