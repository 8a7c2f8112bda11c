"""The succession report over recorded rows: figures, counts and the verdict's wording."""

from __future__ import annotations

import time

from app.evals.succession import MIN_REPLIES, report
from app.evals.succession_view import render, table
from app.ops.fidelity import FidelityRecord
from app.tuning.fidelity import Profile, reference_scores

from ..conftest import REPO

TRAINING = [line for line in (REPO / "examples" / "maid_sample.jsonl").read_text(encoding="utf-8").splitlines()]
NOW = time.time()


def profile_and_reference():
    from app.tuning import fewshot

    replies = [r for _, r in fewshot.exchanges(REPO / "examples" / "maid_sample.jsonl")]
    profile = Profile.of(replies)
    return profile, reference_scores(replies, profile)


def usage_row(model: str, upstream: str, role: str, *, status: int = 200, duration: float = 100.0,
              conversation: str = "c") -> tuple:
    return (model, upstream, role, status, None if status < 400 else "boom", duration, None, 10, 5, conversation)


def fidelity_row(target: str, role: str, *, in_script: bool, markers: str = "主人", breaks: bool = False,
                 chrf: float | None = None, day: float = 0.0) -> tuple:
    record = FidelityRecord(NOW - day * 86400, "maid", target, role, "chat", "c", "r", "zh-Hant", in_script,
                            markers, breaks, 18, chrf, None if chrf is None else True,
                            None if chrf is None else False)
    return (record.time, record.target, record.role, record.in_script, record.markers, record.breaks,
            record.length, record.chrf, record.paired_script, record.paired_breaks)


def test_a_candidate_behind_on_script_is_named_with_its_counts():
    profile, reference = profile_and_reference()
    usage = [usage_row("ft-maid", "openai", "primary", conversation=f"p{i}") for i in range(40)]
    usage += [usage_row("next", "vllm", "canary", conversation=f"c{i % 10}") for i in range(35)]
    usage.append(usage_row("next", "vllm", "canary", status=502, duration=3000.0))
    fidelity = [fidelity_row("ft-maid@openai", "primary", in_script=True) for _ in range(40)]
    fidelity += [fidelity_row("next@vllm", "canary", in_script=i % 2 == 0) for i in range(35)]
    data = report("maid", "7d", usage, fidelity, profile, reference, {})
    primary, canary = data["targets"]
    assert (primary["role"], primary["requests"], primary["conversations"], primary["replies"]) == (
        "primary", 40, 40, 40)
    assert (canary["requests"], canary["errors"], canary["conversations"]) == (36, 1, 11)
    assert canary["latency_ms"]["p95"] == 100.0 and canary["script"] == round(18 / 35, 3)
    assert data["best"] == "next@vllm"
    assert data["verdict"].startswith("best candidate next@vllm (canary) is behind the primary")
    assert "behind on script" in data["verdict"] and "35 replies against the primary's 40" in data["verdict"]
    lines = table(data)
    assert lines[0].split()[:3] == ["training", "data", "ft-maid@openai"]
    assert any(line.startswith("live fidelity (0-1)") and "(40)" in line and "(35)" in line for line in lines)


def test_few_replies_are_shown_with_their_count_and_never_called_a_verdict():
    profile, reference = profile_and_reference()
    fidelity = [fidelity_row("ft-maid@openai", "primary", in_script=True) for _ in range(50)]
    fidelity += [fidelity_row("open@vllm", "shadow", in_script=True, chrf=0.4) for _ in range(3)]
    data = report("maid", "7d", [], fidelity, profile, reference, {})
    assert "too few for a verdict" in data["verdict"] and "3 replies" in data["verdict"]
    shadow = next(e for e in data["targets"] if e["role"] == "shadow")
    assert shadow["paired"] == {"pairs": 3, "chrf": 0.4, "script_agreement": 1.0, "breaks": 0.0,
                                "served_breaks": 0.0}
    assert MIN_REPLIES > 3


def test_html_is_self_contained_with_a_chart_per_day():
    profile, reference = profile_and_reference()
    fidelity = [fidelity_row("ft-maid@openai", "primary", in_script=True, day=d) for d in (0, 1, 2) for _ in range(5)]
    page = render(report("maid", "7d", [], fidelity, profile, reference, {}))
    assert "<svg" in page and page.count("<circle") == 3 and "<script" not in page
    assert "http://" not in page and "https://" not in page
    assert len(TRAINING) == 12
