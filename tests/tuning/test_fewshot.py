"""Few-shot exchanges chosen from a training set: deterministic, distinct, within budget."""

from __future__ import annotations

import pytest

from app.tuning.fewshot import cost, select
from app.tuning.tokens import load_counter

from ..conftest import DATA, SHARED_DATASET


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def test_few_shot_selection_is_deterministic_distinct_and_within_budget(counter):
    first = select(DATA / "warnings.jsonl", 4, 1500, counter)
    assert first == select(DATA / "warnings.jsonl", 4, 1500, counter)
    assert len(first) == 8 and [m["role"] for m in first] == ["user", "assistant"] * 4
    pairs = [(first[i]["content"], first[i + 1]["content"]) for i in range(0, 8, 2)]
    assert len(set(pairs)) == 4
    assert cost(first, counter) <= 1500
    tight = select(DATA / "warnings.jsonl", 10, 60, counter)
    assert 0 < cost(tight, counter) <= 60 and len(tight) < 20
    assert all("很久很久以前" not in m["content"] for m in select(DATA / "warnings.jsonl", 50, 5000, counter))


@pytest.mark.skipif(not SHARED_DATASET.exists(), reason="../shared/data is not beside this checkout")
def test_few_shot_from_the_reference_dataset_skips_its_duplicates(counter):
    chosen = select(SHARED_DATASET, 20, 100_000, counter)
    pairs = [(chosen[i]["content"], chosen[i + 1]["content"]) for i in range(0, len(chosen), 2)]
    assert len(pairs) == 20 and len(set(pairs)) == 20
