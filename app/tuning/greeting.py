"""A persona's greeting from its training set: her most typical reply to a hello (for a card's ``first_mes``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .fewshot import exchanges
from .fidelity import Profile, measure_reply

# Said first in a chat, in the languages personas are trained in; then asking who she is.
GREETINGS = ("hi", "hello", "hey", "greetings", "你好", "您好", "嗨", "哈囉", "哈啰", "こんにちは", "안녕")
TIMED = ("good morning", "good afternoon", "good evening", "早安", "午安", "早上好", "下午好", "晚上好", "おはよう",
         "こんばんは")
INTRODUCTIONS = ("who are you", "your name", "你是誰", "你是谁", "你叫什麼", "你叫什么", "妳是誰", "お名前", "誰ですか")
SHORT = 40


def typical_greeting(path: Path) -> str | None:
    """The reply to a hello (else a good morning, else "who are you?") that looks most like all of her replies."""
    pairs = list(exchanges(path))
    if not pairs:
        return None
    profile = Profile.of([reply for _, reply in pairs])
    for words in (GREETINGS, TIMED, INTRODUCTIONS):
        # A hello that asks nothing else comes first; then the reply she gives most often, then the one
        # most like all of her replies.
        said = [(not any(q in user for q in "?？"), reply) for user, reply in pairs if _says(user, words)]
        if said:
            counts = Counter(reply for _, reply in said)
            return max(said, key=lambda s: (s[0], counts[s[1]], _typical(s[1], profile)))[1]
    return None


def _says(text: str, words: tuple[str, ...]) -> bool:
    folded = text.strip().lower()
    return len(folded) <= SHORT and any(folded.startswith(w) or (w in folded and not w.isascii()) for w in words)


def _typical(reply: str, profile: Profile) -> tuple[bool, bool, int, float]:
    measures = measure_reply(reply, profile)
    return (not measures.breaks, measures.in_script, len(measures.markers), -abs(len(reply) - profile.median_length))
