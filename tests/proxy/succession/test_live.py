"""Live fidelity on real servers: rows and metrics for every target's replies, never the text by default."""

from __future__ import annotations

import os

from ...conftest import FT_MODEL
from ...fakes.styles import SAMPLE, SIMPLIFIED, route, table_rows

DATASET = f'dataset = "{SAMPLE}"'
CANARY = '[[routes.maid.canary]]\nupstream = "canary"\nmodel = "gpt-next"\nshare = 0.5\n'
SHADOW = '[[routes.maid.shadow]]\nupstream = "shadow"\nmodel = "open-maid"\nsample = 1.0\n'
ALL = "[fidelity]\nsample = 1.0\n"


def conversations(http, count: int, **extra) -> None:
    for i in range(count):
        body = {"model": "maid", "messages": [{"role": "user", "content": "早安"}], **extra}
        assert http.post("/v1/chat/completions", json=body,
                         headers={"x-openwebui-chat-id": f"c-{i}"}).status_code == 200


def test_every_target_is_measured_and_the_shadow_paired_with_the_served_reply(succession_proxy, tmp_path):
    admin = "admin-" + os.urandom(8).hex()
    text = route(canary=CANARY, shadow=SHADOW, extra=DATASET)
    proxy = succession_proxy(text.replace("[routes.maid]", ALL + "\n[routes.maid]"),
                             env={"PERSONA_PROXY_ADMIN_KEYS": admin})
    with proxy.http() as http:
        conversations(http, 10)
        conversations(http, 4, stream=True)
        assert http.post("/v1/responses", json={"model": "maid", "input": "早安", "stream": True}).status_code == 200
        rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "fidelity", 30)
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {admin}"}).text
    served = [r for r in rows if r["role"] != "shadow"]
    shadows = [r for r in rows if r["role"] == "shadow"]
    assert len(served) == 15 and len(shadows) == 15
    primary = [r for r in served if r["role"] == "primary"]
    canary = [r for r in served if r["role"] == "canary"]
    assert primary and canary
    assert all(r["target"] == f"{FT_MODEL}@fake" and r["in_script"] == 1 and "主人" in r["markers"]
               and r["breaks"] == 0 for r in primary)
    assert all(r["target"] == "gpt-next@canary" and r["in_script"] == 0 and r["script"] == "zh-Hans"
               for r in canary)
    assert all(r["length"] == len(SIMPLIFIED) for r in canary)
    assert all(r["breaks"] == 1 and r["chrf"] is not None and 0 <= r["chrf"] < 0.5 for r in shadows)
    by_request = {r["request_id"]: r for r in served}
    for row in shadows:
        pair = by_request[row["request_id"]]  # the served reply of the same request
        assert row["paired_breaks"] == pair["breaks"] == 0
        assert row["paired_script"] == (pair["script"] == row["script"])
        assert row["conversation"] == pair["conversation"]
    assert all(r["reply"] is None for r in rows)  # keep_replies is off
    assert f'persona_proxy_fidelity_replies_total{{role="canary",route="maid",target="gpt-next@canary"}} ' \
           f'{len(canary)}.0' in metrics
    assert 'persona_proxy_fidelity_breaks_total{role="shadow",route="maid",target="open-maid@shadow"} 15.0' in metrics
    assert f'persona_proxy_fidelity_in_script_total{{role="primary",route="maid",target="{FT_MODEL}@fake"}} ' \
           f'{len(primary)}.0' in metrics


def test_replies_are_kept_only_when_asked_and_tasks_are_never_measured(succession_proxy, tmp_path):
    text = route(extra=DATASET).replace("[routes.maid]", "[fidelity]\nsample = 1.0\nkeep_replies = true\n\n"
                                                          "[routes.maid]")
    proxy = succession_proxy(text)
    task = {"model": "maid", "messages": [{"role": "user", "content": "### Task:\nGenerate a concise title."}]}
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=task)
        conversations(http, 1)
    rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "fidelity", 2, timeout=1.0)
    assert len(rows) == 1 and rows[0]["reply"].startswith("主人早安")


def test_a_route_without_dataset_measures_nothing_and_the_sample_is_honoured(succession_proxy, tmp_path):
    proxy = succession_proxy(route(extra=DATASET).replace("[routes.maid]", "[fidelity]\nsample = 0.0\n\n"
                                                                              "[routes.maid]"))
    other = succession_proxy(route(canary=CANARY))
    for p in (proxy, other):
        with p.http() as http:
            conversations(http, 5)
    assert table_rows(tmp_path / "persona-proxy-usage.sqlite3", "fidelity", 1, timeout=0.5) == []
