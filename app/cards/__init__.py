"""Character cards (V1, V2, V3 in PNG, JSON or CHARX) and lorebooks: reading, checking and writing them.

The lowest layer: it knows the formats and nothing of routes. The config
loader reads every card a route names (so a bad card is a start-up error);
the proxy assembles prompts and picks lorebook entries from what is read
here; ``card export`` writes a route back out as a card.
"""

from .book import Book, Entry, read_book
from .card import Card, parse_card, read_card, read_lorebook
from .errors import CardError

__all__ = ["Book", "Card", "CardError", "Entry", "parse_card", "read_book", "read_card", "read_lorebook"]
