"""Rewriting the top-level model without touching the rest of the bytes."""

from __future__ import annotations

import json

import pytest

from app.proxy.rewrite import rewrite_model

NEW = b'"maid"'


@pytest.mark.parametrize(
    "doc",
    [
        b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"ft:x:y::z","choices":[]}',
        b'{"id": "c1", "model" : "gpt-4o", "choices": [{"delta": {"content": "\\u5973"}}]}',
        b'{\n  "model":\t"m",\n  "x": 1\n}',
    ],
)
def test_fast_path_changes_only_the_model_value(doc):
    out = rewrite_model(doc, NEW)
    parsed, original = json.loads(out), json.loads(doc)
    assert parsed == {**original, "model": "maid"}
    # Everything around the value is byte-identical.
    old = json.dumps(original["model"]).encode()
    assert out.replace(NEW, old, 1) == doc


@pytest.mark.parametrize(
    "doc",
    [
        # "model" nested before the top-level one: must not be touched.
        b'{"choices":[{"delta":{"content":"x","model":"inner"}}],"model":"outer"}',
        b'{"meta":{"model":"inner"},"model":"outer"}',
        # A string containing the key text before the real key.
        b'{"note":"say \\"model\\": \\"no\\"","model":"outer"}',
        # llama.cpp puts model last.
        b'{"choices":[{"delta":{"content":"{\\"model\\":1"}}],"created":1,"model":"outer"}',
    ],
)
def test_ambiguous_documents_fall_back_to_a_full_parse(doc):
    out = json.loads(rewrite_model(doc, NEW))
    original = json.loads(doc)
    assert out["model"] == "maid"
    assert {k: v for k, v in out.items() if k != "model"} == {k: v for k, v in original.items() if k != "model"}


def test_object_without_model_is_returned_unchanged():
    doc = b'{"error": {"message": "x", "model": "inner"}}'
    assert rewrite_model(doc, NEW) is doc


def test_model_that_is_not_a_string_is_left_alone():
    doc = b'{"model": null, "x": 1}'
    assert rewrite_model(doc, NEW) == doc


@pytest.mark.parametrize("doc", [b"<html>", b"[1,2]", b'{"model": "x"', b""])
def test_not_a_json_object_returns_none(doc):
    assert rewrite_model(doc, NEW) is None


def test_escaped_model_value_uses_the_full_parse():
    doc = b'{"model":"a\\"b","x":"\\u00e9"}'
    assert json.loads(rewrite_model(doc, NEW)) == {"model": "maid", "x": "é"}
