"""The live fidelity panel's data: each target's fidelity per UTC day, with the training data's as reference.

Computed in the store, not from the rows: per day, target and role the
counts of replies in script, breaking character and using each of the
profile's markers, and the lengths as a histogram (for an exact median).
The measures are those of ``persona-proxy succession`` (``scores_of``).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..ops.fidelity import MARKER_SEPARATOR
from ..tuning.fidelity import Profile, Scores, components
from .usage import Span


def bounds(span: Span) -> tuple[float, float]:
    start = dt.datetime.combine(span.first, dt.time(), dt.UTC).timestamp()
    return start, start + ((span.last - span.first).days + 1) * 86_400.0


def queries(route: str, markers: Sequence[str], span: Span, day: str, param: str,
            instr: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Counts per day, target and role, and the length histogram, for one route over ``span``."""
    start, end = bounds(span)
    where = f"FROM fidelity WHERE route = {param} AND time >= {param} AND time < {param}"
    sep = MARKER_SEPARATOR
    marked = "".join(f", sum(CASE WHEN {instr.format(f'{param} || markers || {param}', param)} > 0 THEN 1 ELSE 0 END)"
                     for _ in markers)
    marker_values = tuple(v for m in markers for v in (sep, sep, sep + m + sep))
    counts = (f"SELECT {day}, target, role, count(*), sum(CASE WHEN in_script THEN 1 ELSE 0 END), "
              f"sum(CASE WHEN breaks THEN 1 ELSE 0 END){marked} {where} GROUP BY 1, 2, 3")
    lengths = f"SELECT {day}, target, role, length, count(*) {where} GROUP BY 1, 2, 3, 4"
    return [(counts, (*marker_values, route, start, end)), (lengths, (route, start, end))]


def daily(counts: Sequence[Sequence[Any]], lengths: Sequence[Sequence[Any]], profile: Profile,
          reference: Scores) -> list[dict[str, Any]]:
    """One entry per target and role: its days, each with replies and fidelity (0-1)."""
    histograms: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for day, target, role, length, n in lengths:
        histograms[(str(day), target, role)].append((int(length), int(n)))
    markers = list(profile.markers)
    targets: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in counts:
        day, target, role, n, in_script, breaks = str(row[0]), row[1], row[2], int(row[3]), row[4], row[5]
        scores = Scores(replies=n, script_share=int(in_script or 0) / n,
                        marker_shares={m: int(c or 0) / n for m, c in zip(markers, row[6:], strict=True)},
                        median_length=median(histograms[(day, target, role)]), chrf=None,
                        break_share=int(breaks or 0) / n)
        parts = components(scores, reference)
        targets[(target, role)].append({"day": day, "replies": n,
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
