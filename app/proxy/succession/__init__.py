"""Succession on live traffic: canary targets sticky per conversation, shadow targets, live fidelity.

``assign`` (which target a conversation gets) and ``replies`` (a reply's
text from its bytes) are pure; ``shadow`` and ``live`` run off the request
path; ``service`` is what ``serving`` calls.
"""

from .service import Succession, Turn

__all__ = ["Succession", "Turn"]
