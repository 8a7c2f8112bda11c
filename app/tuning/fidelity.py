"""Persona fidelity: how much a set of replies sounds like the training replies.

Pure measures over text, each computed for the training replies themselves
(the reference column) and for a target's replies:

- script: the share of replies in the training replies' dominant script
  (Traditional vs Simplified Chinese told apart by hanzidentifier);
- markers: phrases and emoji found in a large share of the training replies
  (derived here, e.g. 主人), and how often replies use them;
- length: median reply length in characters;
- closeness: chrF (sacrebleu) between a reply and its prompt's reference reply;
- breaks: replies that talk about being an AI or a language model.

One fidelity figure per target averages the components, each a ratio of the
target's measure to the training data's, capped at 1.
"""

from __future__ import annotations

import functools
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MARKER_SHARE = 0.4  # a phrase in at least this share of the training replies is a marker
MAX_MARKERS = 8
# chrF (0-1) of a reply against its reference at which closeness counts as full.
CHRF_FULL = 0.5
# Phrases that break character, per language; routes may add their own (eval_breaks).
BREAKS = (
    "as an ai", "an ai language model", "as a language model", "i am an ai", "i'm an ai", "chatgpt", "openai",
    "large language model", "i am a language model",
    "作為一個ai", "作為ai", "作为一个ai", "作为ai", "人工智慧", "人工智能", "語言模型", "语言模型",
    "我是ai", "我是一個ai", "我是一个ai", "聊天機器人", "聊天机器人",
    "aiとして", "言語モデル",
)


def script_of(text: str) -> str:
    """``zh-Hant``, ``zh-Hans``, ``zh`` (either), ``mixed``, ``latin`` or ``other``.

    hanzidentifier's ``identify`` over its own CC-CEDICT character sets, with
    the string's characters taken as a set intersection instead of its regex
    (a class of 13,000 characters): the same answer, in a quarter of the time,
    which live fidelity pays on every measured reply.
    """
    shared, traditional, simplified, every = _hanzi_sets()
    chinese = every.intersection(set(text))
    if chinese:
        if chinese <= shared:
            return "zh"
        if chinese <= traditional:
            return "zh-Hant"
        if chinese <= simplified:
            return "zh-Hans"
        return "mixed"
    letters = [ch for ch in text if ch.isalpha()]
    return "latin" if letters and sum(ch.isascii() for ch in letters) / len(letters) > 0.5 else "other"


@functools.cache
def _hanzi_sets() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    from hanzidentifier import helpers

    return (frozenset(helpers.SHARED_CHARACTERS), frozenset(helpers.TRADITIONAL_CHARACTERS),
            frozenset(helpers.SIMPLIFIED_CHARACTERS), frozenset(helpers.ALL_CHARACTERS))


def dominant_script(replies: Iterable[str]) -> str:
    counts = Counter(script_of(r) for r in replies)
    specific = [s for s, _ in counts.most_common() if s != "zh"]
    return specific[0] if specific else (counts.most_common(1)[0][0] if counts else "other")


def in_script(text: str, script: str) -> bool:
    found = script_of(text)
    # Text with only characters common to both Chinese scripts shows no wrong script.
    return found == script or (found == "zh" and script in ("zh-Hant", "zh-Hans"))


def _is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or ch in "❤♥～"


def _features(text: str) -> set[str]:
    """Candidate markers in one reply: CJK 2-3 grams, emoji, and words of latin text."""
    found = {ch for ch in text if _is_emoji(ch)}
    for run in re.findall(r"[\u3400-\u9fff]+", text):
        for n in (2, 3):
            found.update(run[i:i + n] for i in range(len(run) - n + 1))
    found.update(w for w in re.findall(r"[a-z']{3,}", text.lower()) if w not in _STOPWORDS)
    return found


_STOPWORDS = frozenset({"the", "and", "you", "your", "for", "are", "with", "this", "that", "have", "what", "can",
                        "not", "but", "all", "was", "its", "it's"})


def derive_markers(replies: Sequence[str], share: float = MARKER_SHARE) -> dict[str, float]:
    """Marker -> share of training replies using it, most common first; longer phrases win ties."""
    if not replies:
        return {}
    counts = Counter(f for reply in replies for f in _features(reply))
    frequent = {f: c / len(replies) for f, c in counts.items() if c / len(replies) >= share}
    # A phrase inside a longer one that is (almost) as frequent is that phrase: 人您 is 人您好.
    maximal = {f: s for f, s in frequent.items()
               if not any(f != g and f in g and frequent[g] >= s - 0.05 for g in frequent)}
    chosen: dict[str, float] = {}
    for phrase, part in sorted(maximal.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0])):
        # One marker per phrase: 主人您 and 以為您 say nothing 主人 and 為您 did not.
        if not any(_overlap(phrase, other) for other in chosen):
            chosen[phrase] = part
        if len(chosen) == MAX_MARKERS:
            break
    return chosen


def _overlap(a: str, b: str) -> bool:
    if a in b or b in a:
        return True
    return any(a[i:i + 2] in b for i in range(len(a) - 1)) if len(a) > 1 and len(b) > 1 else False


def breaks_character(text: str, extra: Iterable[str] = ()) -> bool:
    folded = text.lower().replace(" ", "")
    return any(phrase in folded for phrase in _folded(tuple(extra)))


@functools.lru_cache(maxsize=64)
def _folded(extra: tuple[str, ...]) -> tuple[str, ...]:
    # Folded once per list of phrases, not once per reply.
    return tuple(phrase.lower().replace(" ", "") for phrase in (*BREAKS, *extra))


def chrf(reply: str, reference: str) -> float:
    """Character n-gram F-score (chrF, sacrebleu's defaults) on a 0-1 scale."""
    return float(_chrf_metric().sentence_score(reply, [reference]).score) / 100


@functools.cache
def _chrf_metric() -> Any:
    # Built once: every reply of every target is scored with the same settings.
    from sacrebleu.metrics.chrf import CHRF

    return CHRF()


@dataclass
class Profile:
    """What the training replies look like: the yardstick for every target."""

    script: str
    markers: dict[str, float]
    median_length: float
    extra_breaks: tuple[str, ...] = ()

    @classmethod
    def of(cls, replies: Sequence[str], markers: Sequence[str] | None = None,
           extra_breaks: Sequence[str] = ()) -> Profile:
        if markers is None:
            derived = derive_markers(replies)
        else:  # chosen by the route: measured on the training replies all the same
            derived = {m: sum(m in r for r in replies) / max(1, len(replies)) for m in markers}
        return cls(dominant_script(replies), derived, statistics.median(map(len, replies)) if replies else 0.0,
                   tuple(extra_breaks))


@dataclass
class Scores:
    """The measures for one set of replies (a target's, or the training data's)."""

    replies: int
    script_share: float
    marker_shares: dict[str, float]
    median_length: float
    chrf: float | None
    break_share: float
    components: dict[str, float] = field(default_factory=dict)
    fidelity: float | None = None


def measure(replies: Sequence[str], references: Sequence[str | None], profile: Profile,
            baseline: Scores | None = None) -> Scores:
    """Score ``replies`` (one per prompt, with its reference reply or None) against ``profile``."""
    n = max(1, len(replies))
    pairs = [(r, ref) for r, ref in zip(replies, references, strict=True) if ref]
    scores = Scores(
        replies=len(replies),
        script_share=sum(in_script(r, profile.script) for r in replies) / n,
        marker_shares={m: sum(m in r for r in replies) / n for m in profile.markers},
        median_length=statistics.median(map(len, replies)) if replies else 0.0,
        chrf=statistics.fmean(chrf(r, ref) for r, ref in pairs) if pairs else None,
        break_share=sum(breaks_character(r, profile.extra_breaks) for r in replies) / n,
    )
    if baseline is not None and replies:
        scores.components = components(scores, baseline)
        scores.fidelity = statistics.fmean(scores.components.values())
    return scores


def components(scores: Scores, base: Scores) -> dict[str, float]:
    """Each measure as a 0-1 ratio to the training data's (1 = as in training)."""
    def ratio(value: float, reference: float) -> float:
        return 1.0 if reference <= 0 else min(1.0, value / reference)

    out = {"script": ratio(scores.script_share, base.script_share)}
    if base.marker_shares:
        out["markers"] = statistics.fmean(ratio(scores.marker_shares.get(m, 0.0), s)
                                          for m, s in base.marker_shares.items())
    if scores.median_length and base.median_length:
        out["length"] = min(scores.median_length, base.median_length) / max(scores.median_length,
                                                                               base.median_length)
    if scores.chrf is not None:
        out["closeness"] = min(1.0, scores.chrf / CHRF_FULL)
    out["in character"] = 1.0 - scores.break_share
    return out


@dataclass(frozen=True, slots=True)
class ReplyMeasures:
    """The cheap measures of one live reply (``chrF`` only for a shadow, against the served reply)."""

    script: str
    in_script: bool
    markers: tuple[str, ...]  # the profile's markers this reply uses
    breaks: bool
    length: int


def measure_reply(text: str, profile: Profile) -> ReplyMeasures:
    """One reply's measures against ``profile``: what ``measure`` counts, for a single reply."""
    script = script_of(text)
    in_profile_script = script == profile.script or (script == "zh" and profile.script in ("zh-Hant", "zh-Hans"))
    return ReplyMeasures(script, in_profile_script, tuple(m for m in profile.markers if m in text),
                         breaks_character(text, profile.extra_breaks), len(text))


def scores_of(replies: Sequence[ReplyMeasures], profile: Profile, baseline: Scores) -> Scores:
    """What :func:`measure` finds for these replies, from their stored measures (no text needed)."""
    n = max(1, len(replies))
    scores = Scores(
        replies=len(replies),
        script_share=sum(r.in_script for r in replies) / n,
        marker_shares={m: sum(m in r.markers for r in replies) / n for m in profile.markers},
        median_length=statistics.median(r.length for r in replies) if replies else 0.0,
        chrf=None,
        break_share=sum(r.breaks for r in replies) / n,
    )
    if replies:
        scores.components = components(scores, baseline)
        scores.fidelity = statistics.fmean(scores.components.values())
    return scores


def reference_scores(training: Sequence[str], profile: Profile) -> Scores:
    """The training replies' own scores: the reference column (its ratios are 1 by definition)."""
    base = measure(training, [None] * len(training), profile)
    base.components = {"script": 1.0, "markers": 1.0, "length": 1.0, "in character": 1.0 - base.break_share}
    return base
