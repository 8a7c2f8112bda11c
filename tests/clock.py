"""Waiting out a minute's edge: the limits count in fixed clock minutes, so a test whose requests
straddle one would see its counters reset halfway (as they should)."""

from __future__ import annotations

import time


def fresh_minute(room: float = 15.0) -> None:
    """Wait, if need be, so the next ``room`` seconds all fall in one clock minute."""
    left = 60 - time.time() % 60
    if left < room:
        time.sleep(left + 0.05)
