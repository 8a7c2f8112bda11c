"""``persona-proxy succession``: which target is ready to take over a route, from live traffic.

Pure over the rows a proxy recorded: usage rows (requests, errors, latency,
tokens, cost per target and role) and fidelity rows (each measured reply).
The training data is the reference column; each target's live fidelity is
computed with the same components as ``eval`` (script, markers, length, in
character), and a shadow is also compared with the reply the client got for
the same request.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..config import PriceSettings
from ..ops.fidelity import MARKER_SEPARATOR
from ..ops.usage import Store
from ..tuning.fidelity import Profile, ReplyMeasures, Scores, scores_of

# Fewer replies than this on either side and a comparison is shown, never called a verdict.
MIN_REPLIES = 30
# A difference in a 0-1 measure smaller than this is "level".
LEVEL = 0.02
USAGE_SQL = ("SELECT model, upstream, role, status, error_code, duration_ms, ttfb_ms, prompt_tokens, "
             "completion_tokens, conversation FROM usage WHERE route = {p} AND time >= {p} AND kind != 'task'")
FIDELITY_SQL = ("SELECT time, target, role, in_script, markers, breaks, length, chrf, paired_script, paired_breaks "
                "FROM fidelity WHERE route = {p} AND time >= {p}")


def read_rows(store: Store, route: str, since: float) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The route's usage and fidelity rows since ``since`` (a store without fidelity rows yet has none)."""
    db = store.connect(read_only=True)
    try:
        usage = db.execute(USAGE_SQL.format(p=store.param), (route, since)).fetchall()
        try:
            fidelity = db.execute(FIDELITY_SQL.format(p=store.param), (route, since)).fetchall()
        except Exception:  # a database written before live fidelity existed: no such table
            fidelity = []
    finally:
        db.close()
    return usage, fidelity


def report(route: str, since: str, usage: Iterable[Sequence[Any]], fidelity: Iterable[Sequence[Any]],
           profile: Profile | None, reference: Scores | None, prices: Mapping[str, PriceSettings]) -> dict[str, Any]:
    """The whole report as data: the reference, every target, the best candidate and the verdict."""
    targets: dict[tuple[str, str], dict[str, Any]] = {}
    for row in usage:
        _add_usage(targets, row, prices)
    replies: dict[tuple[str, str], list[Sequence[Any]]] = defaultdict(list)
    for row in fidelity:
        replies[(row[1], row[2])].append(row)
        targets.setdefault((row[1], row[2]), _empty(row[1], row[2]))
    entries = [_finish(entry, replies.get(key, []), profile, reference) for key, entry in targets.items()]
    entries.sort(key=lambda e: (ROLES.index(e["role"]) if e["role"] in ROLES else len(ROLES), -e["requests"]))
    data: dict[str, Any] = {"route": route, "since": since, "reference": _reference(profile, reference),
                            "targets": entries}
    data["best"], data["verdict"] = verdict(entries)
    return data


ROLES = ("primary", "fallback", "canary", "shadow")


def _empty(target: str, role: str) -> dict[str, Any]:
    return {"target": target, "role": role, "requests": 0, "conversations": set(), "errors": 0, "durations": [],
            "ttfbs": [], "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "priced": True}


def _add_usage(targets: dict[tuple[str, str], dict[str, Any]], row: Sequence[Any],
               prices: Mapping[str, PriceSettings]) -> None:
    model, upstream, role, status, error_code, duration, ttfb, prompt, completion, conversation = row
    name = f"{model}@{upstream}"
    entry = targets.setdefault((name, role), _empty(name, role))
    entry["requests"] += 1
    entry["errors"] += int(status >= 400 or error_code is not None)
    entry["durations"].append(float(duration))
    if ttfb is not None:
        entry["ttfbs"].append(float(ttfb))
    if conversation:
        entry["conversations"].add(conversation)
    entry["prompt_tokens"] += int(prompt or 0)
    entry["completion_tokens"] += int(completion or 0)
    price = prices.get(model)
    if price is None:
        entry["priced"] = entry["priced"] and not (prompt or completion)
    else:
        entry["cost_usd"] += (int(prompt or 0) * price.input + int(completion or 0) * price.output) / 1e6


def _finish(entry: dict[str, Any], rows: list[Sequence[Any]], profile: Profile | None,
            reference: Scores | None) -> dict[str, Any]:
    durations, ttfbs = entry.pop("durations"), entry.pop("ttfbs")
    out = {**entry, "conversations": len(entry["conversations"]),
           "error_rate": round(entry["errors"] / entry["requests"], 4) if entry["requests"] else None,
           "latency_ms": _percentiles(durations), "ttfb_ms": _percentiles(ttfbs),
           "cost_usd": round(entry["cost_usd"], 6) if entry["priced"] else None}
    del out["priced"]
    out.update(_fidelity(rows, profile, reference))
    out["paired"] = _paired(rows) if entry["role"] == "shadow" else None
    out["daily"] = _daily(rows, profile, reference)
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(ordered)}


def _measures(rows: Iterable[Sequence[Any]]) -> list[ReplyMeasures]:
    return [ReplyMeasures("", bool(r[3]), tuple(m for m in (r[4] or "").split(MARKER_SEPARATOR) if m), bool(r[5]),
                          int(r[6])) for r in rows]


def _scores(rows: Sequence[Sequence[Any]], profile: Profile | None, reference: Scores | None) -> Scores | None:
    if not rows or profile is None or reference is None:
        return None
    return scores_of(_measures(rows), profile, reference)


def _fidelity(rows: list[Sequence[Any]], profile: Profile | None, reference: Scores | None) -> dict[str, Any]:
    scores = _scores(rows, profile, reference)
    if scores is None:
        return {"replies": len(rows), "fidelity": None, "script": None, "markers": None, "breaks": None,
                "length": None, "components": {}}
    return {"replies": scores.replies, "fidelity": _round(scores.fidelity),
            "script": round(scores.script_share, 3), "markers": _mean(scores.marker_shares.values()),
            "marker_shares": {m: round(s, 3) for m, s in scores.marker_shares.items()},
            "breaks": round(scores.break_share, 3), "length": scores.median_length,
            "components": {k: round(v, 3) for k, v in scores.components.items()}}


def _paired(rows: list[Sequence[Any]]) -> dict[str, Any] | None:
    """A shadow against the served replies of the same requests."""
    pairs = [r for r in rows if r[7] is not None]
    if not pairs:
        return None
    return {"pairs": len(pairs), "chrf": round(statistics.fmean(r[7] for r in pairs), 3),
            "script_agreement": round(sum(bool(r[8]) for r in pairs) / len(pairs), 3),
            "breaks": round(sum(bool(r[5]) for r in pairs) / len(pairs), 3),
            "served_breaks": round(sum(bool(r[9]) for r in pairs) / len(pairs), 3)}


def _daily(rows: list[Sequence[Any]], profile: Profile | None, reference: Scores | None) -> list[dict[str, Any]]:
    by_day: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        by_day[dt.datetime.fromtimestamp(float(row[0]), dt.UTC).date().isoformat()].append(row)
    days = []
    for day in sorted(by_day):
        scores = _scores(by_day[day], profile, reference)
        days.append({"day": day, "replies": len(by_day[day]),
                     "fidelity": _round(scores.fidelity) if scores else None})
    return days


def _reference(profile: Profile | None, reference: Scores | None) -> dict[str, Any] | None:
    if profile is None or reference is None:
        return None
    return {"replies": reference.replies, "script": profile.script, "in_script": round(reference.script_share, 3),
            "markers": _mean(reference.marker_shares.values()),
            "marker_shares": {m: round(s, 3) for m, s in reference.marker_shares.items()},
            "breaks": round(reference.break_share, 3), "length": reference.median_length}


def verdict(entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The best candidate (the highest live fidelity that is not the primary) and what to say of it."""
    primary = next((e for e in entries if e["role"] == "primary" and e["fidelity"] is not None), None)
    candidates = [e for e in entries if e["role"] != "primary" and e["fidelity"] is not None]
    if not candidates:
        return None, "no candidate has measured replies yet: add a canary or shadow and a dataset to the route"
    # A figure from enough replies beats a higher one from a handful.
    best = max(candidates, key=lambda e: (e["replies"] >= MIN_REPLIES, e["fidelity"], e["replies"]))
    name = f"{best['target']} ({best['role']})"
    if primary is None:
        return best["target"], f"best candidate {name}: {best['fidelity']:.2f} over {best['replies']} replies; " \
                               "the primary has no measured replies to compare with"
    counts = f"{best['replies']} replies against the primary's {primary['replies']}"
    if min(best["replies"], primary["replies"]) < MIN_REPLIES:
        return best["target"], (f"best candidate {name}: fidelity {best['fidelity']:.2f} vs {primary['fidelity']:.2f}"
                                f" from {counts}: too few for a verdict (at least {MIN_REPLIES} each)")
    diff = best["fidelity"] - primary["fidelity"]
    where = "level with" if abs(diff) < LEVEL else "ahead of" if diff > 0 else "behind"
    behind = [k for k, v in best["components"].items() if v < primary["components"].get(k, 0) - LEVEL]
    ahead = [k for k, v in best["components"].items() if v > primary["components"].get(k, 1) + LEVEL]
    text = f"best candidate {name} is {where} the primary: fidelity {best['fidelity']:.2f} vs " \
           f"{primary['fidelity']:.2f} ({counts})"
    if behind:
        text += "; behind on " + ", ".join(f"{k} ({best['components'][k]:.2f} vs {primary['components'][k]:.2f})"
                                           for k in behind)
    if ahead:
        text += "; ahead on " + ", ".join(ahead)
    return best["target"], text


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.fmean(values), 3) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
