"""The one error a card or lorebook raises: what is wrong, in a phrase the loader prefixes with the file."""

from __future__ import annotations


class CardError(ValueError):
    """A card or lorebook that cannot be used; the message says what is wrong and how to fix it."""
