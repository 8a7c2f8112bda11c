"""The model list: routes as OpenAI model objects, nothing private."""

from __future__ import annotations

import openai
import pytest

from ..conftest import MAID_PROMPT

ROUTES = f"""
[routes.maid]
upstream = "fake"
model = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
display_name = "Maid (fine-tuned gpt-4o-mini)"
description = "Answers in Traditional Chinese."
system_prompt = "{MAID_PROMPT}"

[routes."team/maid:v2"]
upstream = "fake"
model = "gpt-4o-mini"
"""


def test_list_shape_and_privacy(make_proxy, fake):
    proxy = make_proxy(ROUTES)
    with proxy.http() as http:
        resp = http.get("/v1/models")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"object", "data"} and body["object"] == "list"
    maid, team = body["data"]
    assert maid == {"id": "maid", "object": "model", "created": maid["created"], "owned_by": "persona-proxy",
                    "name": "Maid (fine-tuned gpt-4o-mini)", "description": "Answers in Traditional Chinese."}
    assert isinstance(maid["created"], int)
    assert team["id"] == "team/maid:v2" and team["name"] == "team/maid:v2"
    for private in (MAID_PROMPT, "ft:gpt-4o-mini", proxy.upstream_key, proxy.client_key, "pipeline"):
        assert private not in resp.text
    assert fake.requests == []  # listing never waits on an upstream


def test_sdk_list_and_retrieve(make_proxy):
    proxy = make_proxy(ROUTES)
    client = proxy.openai()
    assert [m.id for m in client.models.list()] == ["maid", "team/maid:v2"]
    assert client.models.retrieve("maid").owned_by == "persona-proxy"
    assert client.models.retrieve("team/maid:v2").id == "team/maid:v2"


def test_unknown_model_is_404_model_not_found(make_proxy):
    proxy = make_proxy(ROUTES)
    with pytest.raises(openai.NotFoundError) as info:
        proxy.openai().models.retrieve("ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D")
    assert info.value.code == "model_not_found"
