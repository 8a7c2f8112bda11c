"""Choosing entries per request: keys in the recent messages, selective, constant, budget, order, a time bound."""

from __future__ import annotations

import time

import pytest

from app.cards.book import read_book
from app.proxy.lorebook import Lore, fire, lore_of, recent_texts
from app.tuning.tokens import load_counter


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def lore(counter, *entries, **fields) -> Lore:
    return lore_of(read_book({"entries": list(entries), **fields}), "Lily", counter)


def labels(chosen: Lore, texts) -> list[str]:
    return [chosen.book.entries[i].label for i in fire(chosen, texts)]


def test_keys_fire_within_the_scan_depth_only(counter):
    book = lore(counter, {"keys": ["tea"], "content": "t", "name": "tea"}, scan_depth=1)
    assert labels(book, ["tea please", "hello"]) == []
    assert labels(book, ["hello", "some TEA"]) == ["tea"]  # case-insensitive unless case_sensitive


def test_case_sensitive_selective_and_constant(counter):
    book = lore(counter,
                {"keys": ["Moon"], "case_sensitive": True, "content": "m", "name": "moon", "insertion_order": 3},
                {"keys": ["tea"], "secondary_keys": ["sugar"], "selective": True, "content": "s", "name": "sweet",
                 "insertion_order": 2},
                {"keys": [], "constant": True, "content": "c", "name": "always", "insertion_order": 1})
    assert labels(book, ["the moon and tea"]) == ["always"]
    assert labels(book, ["the Moon, tea and sugar"]) == ["always", "sweet", "moon"]  # by insertion_order


def test_over_the_budget_the_lowest_priority_goes_first(counter):
    long = "word " * 40
    book = lore(counter, *({"keys": ["go"], "content": long, "name": f"e{i}", "priority": p, "insertion_order": i}
                           for i, p in enumerate([5, 1, 9])), token_budget=counter.text(long) * 2)
    assert labels(book, ["go"]) == ["e0", "e2"]


def test_recent_texts_read_chat_messages_and_responses_items():
    items = [{"role": "system", "content": "sys"}, {"role": "user", "content": "one"},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
             {"type": "function_call_output", "output": "x"},
             {"role": "user", "content": [{"type": "input_text", "text": "three"}, {"type": "input_image"}]}]
    assert recent_texts(items, 2) == ["two", "three"]
    assert recent_texts(items, 10) == ["one", "two", "three"]


def test_a_hostile_message_cannot_stall_a_regex_key(counter):
    # Catastrophic in a backtracking engine; RE2 is linear in the text whatever the pattern.
    book = lore(counter, {"keys": ["/(a+)+$/"], "use_regex": True, "content": "x", "name": "evil"},
                {"keys": ["/(x|x?)+y/"], "use_regex": True, "content": "y", "name": "evil2"})
    text = "a" * 50_000 + "!" + "x" * 50_000
    started = time.perf_counter()
    assert labels(book, [text]) == []
    assert time.perf_counter() - started < 0.5


def test_a_book_with_scan_depth_zero_only_has_constants(counter):
    book = lore(counter, {"keys": ["tea"], "content": "t"}, {"constant": True, "keys": [], "content": "c",
                                                             "name": "c"}, scan_depth=0)
    assert labels(book, ["tea"]) == ["c"]
