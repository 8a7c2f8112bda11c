"""Canary targets on real servers: sticky per conversation, across both APIs, workers and restarts."""

from __future__ import annotations

import os
import time

import httpx

from ...conftest import FT_MODEL
from ...fakes.servers import serve_process
from ...fakes.styles import MAID, SIMPLIFIED, route, upstreams
from ...fakes.upstream import error_reply

CANARY = """
[[routes.maid.canary]]
upstream = "canary"
model = "gpt-next"
share = {share}
system_prompt_extra = "你的名字是莉莉。"
params = {{ temperature = 0.3 }}
"""
TARGETS = {f"fake/{FT_MODEL}": "primary", "canary/gpt-next": "canary"}


def chat(http: httpx.Client, chat_id: str, text: str = "早安", **extra: object) -> httpx.Response:
    body = {"model": "maid", "messages": [{"role": "user", "content": text}], **extra}
    return http.post("/v1/chat/completions", json=body, headers={"x-openwebui-chat-id": chat_id})


def test_a_conversation_stays_on_its_target_through_both_apis(succession_proxy, fake, canary_fake):
    proxy = succession_proxy(route(canary=CANARY.format(share=0.5)))
    seen: dict[str, str] = {}
    with proxy.http() as http:
        for i in range(30):
            reply = chat(http, f"chat-{i}")
            assert reply.status_code == 200
            seen[f"chat-{i}"] = TARGETS[reply.headers["x-persona-target"]]
            text = reply.json()["choices"][0]["message"]["content"]
            assert text == (SIMPLIFIED if seen[f"chat-{i}"] == "canary" else MAID)
        for chat_id, role in seen.items():
            again = chat(http, chat_id, "再來一杯", stream=True)
            assert TARGETS[again.headers["x-persona-target"]] == role
            responses = http.post("/v1/responses", json={"model": "maid", "input": "你好"},
                                  headers={"x-openwebui-chat-id": chat_id})
            assert responses.status_code == 200 and TARGETS[responses.headers["x-persona-target"]] == role
    assert 5 <= list(seen.values()).count("canary") <= 25  # a share of 0.5, deterministic for these ids
    sent = canary_fake.chat_requests[0].json
    # The canary is planned as its own target: the persona with its extra, its params, its model.
    assert sent["model"] == "gpt-next" and sent["temperature"] == 0.3
    assert sent["messages"][0]["content"].endswith("你的名字是莉莉。")
    assert sent["model"] != "maid" and all(r.json["model"] == FT_MODEL for r in fake.chat_requests)


def test_a_canary_that_fails_before_its_first_byte_fails_over_to_the_primary(succession_proxy, canary_fake):
    proxy = succession_proxy(route(canary=CANARY.format(share=1.0)))
    canary_fake.enqueue(error_reply(500, "boom", type_="server_error"))
    with proxy.http() as http:
        reply = chat(http, "chat-1")
        assert reply.status_code == 200
        assert reply.headers["x-persona-target"] == f"fake/{FT_MODEL}"
        assert reply.json()["choices"][0]["message"]["content"] == MAID
        # The next request of that conversation goes to its canary again: one failure is not a retirement.
        assert chat(http, "chat-1").headers["x-persona-target"] == "canary/gpt-next"


def test_a_canary_that_rejects_the_request_is_an_answer_not_a_failover(succession_proxy, canary_fake):
    proxy = succession_proxy(route(canary=CANARY.format(share=1.0)))
    canary_fake.enqueue(error_reply(400, "bad temperature", code="invalid_value"))
    with proxy.http() as http:
        reply = chat(http, "chat-1")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_value"


def test_open_webui_tasks_never_go_to_the_canary(succession_proxy, fake, canary_fake):
    proxy = succession_proxy(route(canary=CANARY.format(share=1.0)))
    task = "### Task:\nGenerate a concise title for the chat."
    with proxy.http() as http:
        reply = chat(http, "chat-1", task)
    assert reply.headers["x-persona-target"] == f"fake/{FT_MODEL}"
    assert canary_fake.chat_requests == [] and len(fake.chat_requests) == 1
    assert fake.chat_requests[0].json["messages"] == [{"role": "user", "content": task}]  # no persona either


def test_assignment_is_the_same_on_two_workers_and_after_a_restart(tmp_path, fake, canary_fake):
    config = tmp_path / "config.toml"
    config.write_text(upstreams(("fake", fake), ("canary", canary_fake)) + route(canary=CANARY.format(share=0.5))
                      + "\n[usage]\nenabled = false\n", encoding="utf-8")
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    runs = []
    for workers in ("2", "1"):
        with serve_process(["--config", str(config), "--workers", workers], env=env) as (_, base):
            seen = {}
            # A new connection per request, so both workers answer some of them.
            for i in range(24):
                reply = httpx.post(base + "/v1/chat/completions", headers={"x-openwebui-chat-id": f"c-{i}"},
                                   json={"model": "maid", "messages": [{"role": "user", "content": "早安"}]},
                                   timeout=10)
                seen[i] = reply.headers["x-persona-target"]
            runs.append(seen)
    assert runs[0] == runs[1]
    assert set(runs[0].values()) == set(TARGETS)


def test_a_reload_brings_a_canary_in_and_a_bad_one_is_rejected(succession_proxy, tmp_path, caplog):
    proxy = succession_proxy(route(), server="reload_on_change = true")
    path = tmp_path / "config.toml"
    original = path.read_text(encoding="utf-8")
    with proxy.http() as http:
        assert chat(http, "c-1").headers["x-persona-target"] == f"fake/{FT_MODEL}"
        path.write_text(original + CANARY.format(share=1.5), encoding="utf-8")
        deadline = time.monotonic() + 5
        while "config reload rejected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "routes.maid.canary.0.share: must be from 0 to 1" in caplog.text
        assert chat(http, "c-1").headers["x-persona-target"] == f"fake/{FT_MODEL}"
        # Another size as well as another mtime: the watcher compares both, and two writes can share an mtime.
        path.write_text(original + CANARY.format(share=1.0) + "\n# promoted\n", encoding="utf-8")
        while chat(http, "c-1").headers["x-persona-target"] != "canary/gpt-next":
            assert time.monotonic() < deadline + 5
            time.sleep(0.05)


def test_a_chained_responses_conversation_without_a_name_stays_on_the_primary(succession_proxy):
    proxy = succession_proxy(route(canary=CANARY.format(share=1.0)))
    with proxy.http() as http:
        first = http.post("/v1/responses", json={"model": "maid", "input": "早安"})
        chained = http.post("/v1/responses", json={"model": "maid", "input": "再來", "previous_response_id": "resp_1"})
        unstored = http.post("/v1/responses", json={"model": "maid", "input": "早安", "store": False})
        named = http.post("/v1/responses", json={"model": "maid", "input": "早安", "user": "u-1"})
    assert [r.headers["x-persona-target"] for r in (first, chained)] == [f"fake/{FT_MODEL}"] * 2
    assert unstored.headers["x-persona-target"] == named.headers["x-persona-target"] == "canary/gpt-next"
