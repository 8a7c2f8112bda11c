"""The live fidelity panel's data: each target's fidelity per UTC day, with the training data's as reference.

Read from the fidelity rollups (``app/ops/fidelity_rollups.py``), not the
rows: per day, target and role the replies in script and breaking
character, the replies using each of the profile's markers, and the
lengths as a histogram (for an exact median). The measures are those of
``persona-proxy succession`` (``scores_of``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..tuning.fidelity import Profile, Scores, components
from .usage import Span

Key = tuple[str, str, str]  # day, target, role


def queries(route: str, span: Span, param: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The route's counts, marker counts and length histogram over ``span``."""
    where = f"WHERE route = {param} AND day >= {param} AND day <= {param}"
    values = (route, span.first.isoformat(), span.last.isoformat())
    return {
        # One route's rows are unique per day, target and role (and marker, and length): nothing to group.
        "counts": (f"SELECT day, target, role, replies, in_script, breaks FROM fidelity_daily {where}", values),
        "markers": (f"SELECT day, target, role, marker, replies FROM fidelity_daily_markers {where}", values),
        "lengths": (f"SELECT day, target, role, length, replies FROM fidelity_daily_lengths {where}", values),
    }


def daily(found: dict[str, list[tuple[Any, ...]]], profile: Profile, reference: Scores) -> list[dict[str, Any]]:
    """One entry per target and role: its days, each with replies and fidelity (0-1)."""
    histograms: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    for day, target, role, length, n in found["lengths"]:
        histograms[(str(day), target, role)].append((int(length), int(n)))
    marked: dict[Key, dict[str, int]] = defaultdict(dict)
    for day, target, role, marker, n in found["markers"]:
        marked[(str(day), target, role)][marker] = int(n)
    targets: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for day, target, role, replies, in_script, breaks in found["counts"]:
        key, n = (str(day), target, role), int(replies)
        scores = Scores(replies=n, script_share=int(in_script) / n,
                        marker_shares={m: marked[key].get(m, 0) / n for m in profile.markers},
                        median_length=median(histograms[key]), chrf=None, break_share=int(breaks) / n)
        parts = components(scores, reference)
        targets[(target, role)].append({"day": key[0], "replies": n,
                                        "fidelity": round(statistics.fmean(parts.values()), 3)})
    return [{"target": t, "role": r, "days": sorted(days, key=lambda d: d["day"])}
            for (t, r), days in sorted(targets.items())]


def reference_fidelity(reference: Scores) -> float:
    """The training data's own fidelity: the line a successor is measured against."""
    return round(statistics.fmean(reference.components.values()), 3) if reference.components else 1.0


def median(histogram: Sequence[tuple[int, int]]) -> float:
    """The median of values given as (value, count), as ``statistics.median`` would find it."""
    ordered = sorted(histogram)
    total = sum(n for _, n in ordered)
    if not total:
        return 0.0
    wanted = ((total - 1) // 2, total // 2)
    found: list[int] = []
    seen = 0
    for value, n in ordered:
        while len(found) < 2 and seen + n > wanted[len(found)]:
            found.append(value)
        seen += n
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2
