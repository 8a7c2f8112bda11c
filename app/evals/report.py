"""An eval's results as data (``--json``) and as a side-by-side terminal table."""

from __future__ import annotations

import statistics
import unicodedata
from collections.abc import Sequence
from typing import Any

from ..tuning.fidelity import Profile, Scores, measure, reference_scores
from .runner import Prompt, TargetRun

COMPONENT_OF = {"script": "script", "markers": "markers", "length": "length", "closeness": "closeness",
                "breaks": "in character", "judge": "judge"}


def results(route: str, prompts: Sequence[Prompt], training: Sequence[str], profile: Profile,
            runs: Sequence[TargetRun]) -> dict[str, Any]:
    """Every measure for the training data and each target, with every reply."""
    references = [p.reference for p in prompts]
    base = reference_scores(training, profile)
    entries = [_entry("training data", "reference", base, profile)]
    for run in runs:
        answered = [(r, ref) for r, ref in zip(run.replies, references, strict=True) if r is not None]
        scores = measure([r for r, _ in answered], [ref for _, ref in answered], profile, base) \
            if answered else None
        verdicts = [v for v in run.judged if v is not None]
        if scores is not None and verdicts:
            # The judge is one more component: 1 -> 0, 5 -> 1.
            scores.components["judge"] = (statistics.fmean(verdicts) - 1) / 4
            scores.fidelity = statistics.fmean(scores.components.values())
        entry = _entry(run.label, run.status, scores, profile, note=run.note, candidate=run.candidate)
        if verdicts:
            entry["judge"] = round(statistics.fmean(verdicts), 2)
        judged = run.judged or [None] * len(prompts)
        entry["replies"] = [{"prompt": p.text, "reference": p.reference, "reply": r, "judge": j}
                            for p, r, j in zip(prompts, run.replies, judged, strict=True)]
        entries.append(entry)
    return {"route": route, "prompts": len(prompts), "script": profile.script,
            "markers": {m: round(s, 3) for m, s in profile.markers.items()},
            "targets": entries}


def _entry(label: str, status: str, scores: Scores | None, profile: Profile, *, note: str = "",
           candidate: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"target": label, "status": status, "candidate": candidate, "note": note}
    if scores is None:
        return {**entry, "fidelity": None, "replies_scored": 0}
    return {**entry, "replies_scored": scores.replies,
            "fidelity": None if scores.fidelity is None else round(scores.fidelity, 3),
            "script": round(scores.script_share, 3),
            "markers": round(sum(scores.marker_shares.values()) / max(1, len(scores.marker_shares)), 3),
            "marker_shares": {m: round(s, 3) for m, s in scores.marker_shares.items()},
            "length": scores.median_length,
            "closeness": None if scores.chrf is None else round(scores.chrf, 3),
            "breaks": round(scores.break_share, 3),
            "components": {k: round(v, 3) for k, v in scores.components.items()}}


def table(data: dict[str, Any]) -> list[str]:
    """Measures as rows, the training data then each target as columns; ◀ marks what pulls fidelity down."""
    entries = data["targets"]
    script = data["script"]
    rows: list[tuple[str, ...]] = [("", *(e["target"] for e in entries))]
    rows.append(("status", *(e["status"] for e in entries)))
    rows.append(("fidelity (0-1)", "-", *(_num(e["fidelity"]) for e in entries[1:])))
    measures = [("script", f"in {script}", "{:.0%}"), ("markers", "persona markers", "{:.0%}"),
                ("length", "median length (chars)", "{:.0f}"), ("closeness", "chrF to reference", "{:.2f}"),
                ("breaks", "breaks of character", "{:.0%}")]
    if any("judge" in e for e in entries):
        measures.append(("judge", "judge (1-5)", "{:.1f}"))
    for key, name, spec in measures:
        cells = []
        for i, e in enumerate(entries):
            value = e.get(key)
            cell = "-" if value is None or (i == 0 and key == "closeness") else spec.format(value)
            weakest = _weakest(e)
            cells.append(cell + (" ◀" if i and weakest == COMPONENT_OF[key] else ""))
        rows.append((name, *cells))
    for marker in data["markers"]:
        rows.append((f"  {marker}", *(_pct(e.get("marker_shares", {}).get(marker)) for e in entries)))
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def display_width(text: str) -> int:
    """Terminal columns: CJK characters and emoji take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _weakest(entry: dict[str, Any]) -> str | None:
    parts = entry.get("components") or {}
    if not parts or entry.get("fidelity") is None or min(parts.values()) >= 0.95:
        return None
    weakest: str = min(parts, key=parts.__getitem__)
    return weakest


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
