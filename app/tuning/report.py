"""Presenting a dataset check: statistics, training estimate, a terminal summary and JSON."""

from __future__ import annotations

import math
import statistics
from typing import Any

from .dataset import DEFAULT_TOKEN_LIMIT, TOKEN_LIMITS, DatasetReport

TARGET_EPOCHS = 3
MIN_TRAINED_EXAMPLES, MAX_TRAINED_EXAMPLES = 100, 25_000
# USD per 1M training tokens, as documented; unknown models get no estimate.
TRAINING_PRICE = {"gpt-4o-mini-2024-07-18": 3.00, "gpt-4o-mini": 3.00}


def default_epochs(examples: int) -> int:
    """OpenAI's default: 3 epochs, moved so examples x epochs lies in [100, 25000]."""
    if examples <= 0:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TRAINED_EXAMPLES:
        return min(25, math.ceil(MIN_TRAINED_EXAMPLES / examples))
    if examples * TARGET_EPOCHS > MAX_TRAINED_EXAMPLES:
        return max(1, MAX_TRAINED_EXAMPLES // examples)
    return TARGET_EPOCHS


def summary(report: DatasetReport, model: str | None, epochs: int | None = None) -> dict[str, Any]:
    """Everything the check found, as plain data (the ``--json`` output)."""
    tokens = report.example_tokens
    limit = TOKEN_LIMITS.get(model or "", DEFAULT_TOKEN_LIMIT)
    epochs = epochs or default_epochs(report.examples)
    trained = sum(min(t, limit) for t in tokens)
    price = TRAINING_PRICE.get(model or "")
    return {
        "file": report.path,
        "valid": report.ok,
        "examples": report.examples,
        "messages": report.messages,
        "assistant_turns": report.assistant_turns,
        "tokens": {
            "counted_with": report.token_source,
            "exact": report.tokens_exact,
            "min": min(tokens, default=0),
            "median": statistics.median(tokens) if tokens else 0,
            "max": max(tokens, default=0),
            "total": sum(tokens),
        },
        "training": {
            "model": model,
            "epochs": epochs,
            "billed_tokens": trained * epochs,
            "estimated_cost_usd": round(trained * epochs * price / 1e6, 2) if price is not None else None,
            "price_known": price is not None,
        },
        "duplicates": {"exact": report.counts["duplicate"], "near": report.counts["near_duplicate"]},
        "system_prompts": {
            "distinct": len(report.system_prompts),
            "dominant": report.dominant_system_prompt,
            "dominant_count": report.system_prompts.most_common(1)[0][1] if report.system_prompts else 0,
            "missing": report.missing_system,
        },
        "error_counts": {f.kind: report.counts[f.kind] for f in report.errors},
        "warning_counts": {f.kind: report.counts[f.kind] for f in report.warnings},
        "errors": [vars(f) for f in report.errors],
        "warnings": [vars(f) for f in report.warnings],
    }


def render(data: dict[str, Any]) -> str:
    """A readable terminal summary of :func:`summary`'s data."""
    t, tr, sp = data["tokens"], data["training"], data["system_prompts"]
    cost = f"${tr['estimated_cost_usd']:.2f}" if tr["estimated_cost_usd"] is not None else "unknown for this model"
    rows = [
        ("file", data["file"]),
        ("examples", f"{data['examples']} ({data['messages']} messages, {data['assistant_turns']} assistant turns)"),
        ("tokens per example", f"min {t['min']}, median {t['median']:g}, max {t['max']}"),
        ("tokens in total", f"{t['total']:,}"),
        ("counted with", t["counted_with"]),
        ("system prompts", f"{sp['distinct']} distinct, {sp['missing']} examples without one"),
        ("duplicates", f"{data['duplicates']['exact']} exact, {data['duplicates']['near']} near"),
        ("epochs (default)", str(tr["epochs"])),
        ("billed tokens", f"{tr['billed_tokens']:,}"),
        ("training cost", cost),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if sp["dominant"] is not None:
        lines.append(f"{'dominant prompt'.ljust(width)}  {sp['dominant']!r} ({sp['dominant_count']} examples)")
    if tr["model"] and not tr["price_known"]:
        lines.append(f"{'note'.ljust(width)}  no training price known for {tr['model']!r}: the cost is not "
                     f"estimated (known: {', '.join(sorted(TRAINING_PRICE))})")
    lines += _findings("ERROR", data["errors"], data["error_counts"])
    lines += _findings("warning", data["warnings"], data["warning_counts"])
    verdict = "OK: the provider should accept this file." if data["valid"] else \
        "REJECTED: fix the errors above before fine-tuning."
    return "\n".join([*lines, "", verdict])


def _findings(label: str, findings: list[dict[str, Any]], counts: dict[str, int]) -> list[str]:
    if not findings:
        return []
    lines = ["", f"{label}S:" if label == "ERROR" else "warnings:"]
    for f in findings:
        where = f"line {f['line']}: " if f["line"] is not None else ""
        lines.append(f"  {label} {where}{f['message']}")
    shown = {k: sum(1 for f in findings if f["kind"] == k) for k in counts}
    for kind, count in counts.items():
        if count > shown[kind]:
            lines.append(f"  ... and {count - shown[kind]} more '{kind}'")
    return lines
