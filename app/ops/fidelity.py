"""Live fidelity records: one row per measured reply, beside the usage rows in the same store.

A row holds a reply's measures, never its text unless ``[fidelity]
keep_replies`` is on. A shadow's row carries the request id of the reply
the client got for the same request, and how the two compare.
"""

from __future__ import annotations

from typing import NamedTuple


class FidelityRecord(NamedTuple):
    """The measures of one reply of one target."""

    time: float
    route: str
    target: str  # MODEL@UPSTREAM
    role: str  # primary | fallback | canary | shadow
    api: str  # chat | responses
    conversation: str | None  # the conversation key's hash, never the key
    request_id: str | None  # the client request this reply answered (a shadow's pairs it with the served reply)
    script: str
    in_script: bool
    markers: str  # the profile's markers the reply uses, joined by MARKER_SEPARATOR
    breaks: bool
    length: int
    chrf: float | None = None  # shadow: chrF (0-1) against the served reply
    paired_script: bool | None = None  # shadow: whether it is in the same script as the served reply
    paired_breaks: bool | None = None  # shadow: whether the served reply broke character
    reply: str | None = None  # the text, only with keep_replies


MARKER_SEPARATOR = "\x1f"
COLUMNS = list(FidelityRecord._fields)
TABLE = """
CREATE TABLE IF NOT EXISTS fidelity (
    time {real} NOT NULL, route TEXT NOT NULL, target TEXT NOT NULL, role TEXT NOT NULL, api TEXT NOT NULL,
    conversation TEXT, request_id TEXT, script TEXT NOT NULL, in_script {flag} NOT NULL, markers TEXT NOT NULL,
    breaks {flag} NOT NULL, length INTEGER NOT NULL, chrf {real}, paired_script {flag}, paired_breaks {flag},
    reply TEXT
)"""
INDEX = "CREATE INDEX IF NOT EXISTS fidelity_route_time ON fidelity (route, time)"
