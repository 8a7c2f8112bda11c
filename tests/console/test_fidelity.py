"""Live fidelity computed in the store agrees with the same measures taken reply by reply."""

from __future__ import annotations

import random
import statistics

from app.console.fidelity import daily, median
from app.tuning.fidelity import Profile, ReplyMeasures, Scores, scores_of


def test_median_of_a_histogram_is_the_median_of_its_values():
    rng = random.Random(3)
    for size in (1, 2, 3, 10, 101, 1000):
        values = [rng.randint(1, 40) for _ in range(size)]
        histogram = [(v, values.count(v)) for v in set(values)]
        assert median(histogram) == statistics.median(values), values
    assert median([]) == 0.0


def test_daily_fidelity_from_counts_equals_scores_of_the_replies():
    rng = random.Random(7)
    profile = Profile(script="zh-Hant", markers={"❤️": 0.5, "～": 0.4}, median_length=30.0)
    reference = Scores(replies=100, script_share=0.98, marker_shares={"❤️": 0.5, "～": 0.4}, median_length=30.0,
                       chrf=None, break_share=0.01)
    replies = [ReplyMeasures("zh-Hant", rng.random() < 0.9, tuple(m for m in profile.markers if rng.random() < 0.5),
                             rng.random() < 0.05, rng.randint(5, 80)) for _ in range(200)]
    key = ("2026-12-02", "t@u", "canary")
    found = {"counts": [(*key, len(replies), sum(r.in_script for r in replies), sum(r.breaks for r in replies))],
             "markers": [(*key, m, sum(m in r.markers for r in replies)) for m in profile.markers],
             "lengths": [(*key, n, sum(r.length == n for r in replies)) for n in {r.length for r in replies}]}
    ((entry,),) = [daily(found, profile, reference)]
    expected = scores_of(replies, profile, reference)
    assert entry["target"] == "t@u" and entry["role"] == "canary"
    assert entry["days"] == [{"day": "2026-12-02", "replies": 200, "fidelity": round(expected.fidelity, 3)}]
