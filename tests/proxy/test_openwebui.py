"""Open WebUI as a client: background tasks, user headers, model list, stream parsing.

Request shapes follow ../shared/docs/open-webui.md (Open WebUI 0.12 on the wire).
"""

from __future__ import annotations

import json
import logging

import pytest

from app.proxy.openwebui import caller_from, detect_task

from ..conftest import FT_MODEL, MAID_PROMPT
from ..fakes.upstream import FakeOpenAI, Reply, chunk, default_stream, usage_chunk

OWUI_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate, br",
    "user-agent": "Python/3.11 aiohttp/3.12.15",
    "x-openwebui-user-name": "Alice%20%E5%A5%B3%E5%83%95",
    "x-openwebui-user-id": "3f1c2a9e-user",
    "x-openwebui-user-email": "alice@example.com",
    "x-openwebui-user-role": "admin",
    "x-openwebui-chat-id": "chat-42",
}
HISTORY = "<chat_history>\nUSER: 你好，你是誰？\nASSISTANT: 我是您忠誠的女僕，莉莉。❤️\n</chat_history>"
TITLE = ("### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
         "### Guidelines:\n- The title should clearly represent the main theme or subject of the conversation.\n"
         "### Output:\nJSON format: { \"title\": \"your concise title here\" }\n### Chat History:\n" + HISTORY)
FOLLOW_UPS = ("### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might naturally ask "
              "next in this conversation as a **user**, based on the chat history.\n" + HISTORY)
TAGS = ("### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along with "
        "1-3 more specific subtopic tags.\n" + HISTORY)
ROUTE = f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
display_name = "Maid"
system_prompt = "{MAID_PROMPT}"
params = {{ temperature = 0.8 }}
"""


def task_body(prompt: str) -> dict:
    return {"model": "maid", "messages": [{"role": "user", "content": prompt}], "stream": False, "max_tokens": 1000}


def test_title_tags_and_follow_up_tasks_skip_the_persona(make_proxy, fake, caplog):
    caplog.set_level(logging.INFO)
    proxy = make_proxy(ROUTE)
    with proxy.http() as http:
        for prompt in (TITLE, TAGS, FOLLOW_UPS):
            fake.enqueue(Reply(body=json.dumps({"id": "x", "object": "chat.completion", "model": FT_MODEL,
                                                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                    "role": "assistant", "content": '{"title": "☕ Tea"}'}}]}
                                               ).encode()))
            resp = http.post("/v1/chat/completions", json=task_body(prompt), headers=OWUI_HEADERS)
            assert resp.status_code == 200 and resp.json()["model"] == "maid"
    for recorded, prompt in zip(fake.chat_requests, (TITLE, TAGS, FOLLOW_UPS), strict=True):
        sent = recorded.json
        assert sent["messages"] == [{"role": "user", "content": prompt}]  # no persona
        assert "temperature" not in sent  # nor its tuning
        assert sent["model"] == FT_MODEL and sent["max_tokens"] == 1000
    lines = [r.getMessage() for r in caplog.records if r.name == "app.proxy.serving"]
    for kind in ("title_generation", "tags_generation", "follow_up_generation"):
        assert any(line.startswith("task ") and f"task={kind}" in line for line in lines), kind


def test_tasks_can_go_to_a_cheaper_model_on_another_upstream(make_proxy, fake):
    cheap = FakeOpenAI().start()
    try:
        proxy = make_proxy(ROUTE + 'task_model = "gpt-4.1-nano"\ntask_upstream = "cheap"\n',
                           extra_upstreams=f'[upstreams.cheap]\nbase_url = "{cheap.url}/v1"\n')
        with proxy.http() as http:
            title = http.post("/v1/chat/completions", json=task_body(TITLE), headers=OWUI_HEADERS)
            chat = http.post("/v1/chat/completions", json={"model": "maid", "messages": [
                {"role": "user", "content": "泡茶"}]}, headers=OWUI_HEADERS)
    finally:
        cheap.stop()
    assert title.json()["model"] == "maid" and chat.status_code == 200
    assert [r.json["model"] for r in cheap.chat_requests] == ["gpt-4.1-nano"]
    assert [r.json["model"] for r in fake.chat_requests] == [FT_MODEL]
    assert fake.chat_requests[0].json["messages"][0] == {"role": "system", "content": MAID_PROMPT}


def test_task_header_marks_a_task_and_task_persona_opts_back_in(make_proxy, fake):
    proxy = make_proxy(ROUTE)
    body = {"model": "maid", "messages": [{"role": "user", "content": "Summarize: tea time"}]}
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=body, headers={"x-openwebui-task": "title_generation"})
        http.post("/v1/chat/completions", json=body)
    assert fake.chat_requests[0].json["messages"] == body["messages"]
    assert fake.chat_requests[1].json["messages"][0]["content"] == MAID_PROMPT
    assert "x-openwebui-task" not in fake.chat_requests[0].headers

    with_persona = make_proxy(ROUTE + "task_persona = true\n")
    with with_persona.http() as http:
        http.post("/v1/chat/completions", json=task_body(TITLE))
    assert fake.chat_requests[2].json["messages"][0]["content"] == MAID_PROMPT


def test_real_chats_keep_the_persona_even_with_open_webui_tools(make_proxy, fake):
    proxy = make_proxy(ROUTE)
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}}
             for i in range(28)]
    with proxy.http() as http:
        http.post("/v1/chat/completions", headers=OWUI_HEADERS, json={
            "model": "maid", "stream": True, "tools": tools,
            "messages": [{"role": "user", "content": "### Not a task, just markdown"}]})
    sent = fake.chat_requests[0].json
    assert sent["messages"][0] == {"role": "system", "content": MAID_PROMPT}
    assert len(sent["tools"]) == 28


def test_user_headers_are_logged_never_forwarded_and_user_is_opt_in(make_proxy, fake, caplog):
    caplog.set_level(logging.INFO)
    chat = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
    proxy = make_proxy(ROUTE)
    with proxy.http() as http:
        http.post("/v1/chat/completions", json=chat, headers=OWUI_HEADERS)
    sent = fake.chat_requests[0]
    assert "user" not in sent.json
    assert not any(name.startswith("x-openwebui") for name in sent.headers)
    line = next(r.getMessage() for r in caplog.records if r.name == "app.proxy.serving")
    assert "user=3f1c2a9e-user" in line and "chat=chat-42" in line
    assert "alice@example.com" not in caplog.text

    forwarding = make_proxy(ROUTE, server="forward_user_id = true")
    with forwarding.http() as http:
        http.post("/v1/chat/completions", json=chat, headers=OWUI_HEADERS)
        http.post("/v1/chat/completions", json={**chat, "user": "client-chosen"}, headers=OWUI_HEADERS)
    assert fake.chat_requests[1].json["user"] == "3f1c2a9e-user"
    assert fake.chat_requests[2].json["user"] == "client-chosen"


def test_hidden_routes_are_routable_but_not_listed(make_proxy, fake):
    proxy = make_proxy(ROUTE + '\n[routes.maid-tasks]\nupstream = "fake"\nmodel = "gpt-4.1-nano"\nhidden = true\n')
    with proxy.http() as http:
        listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
        resp = http.post("/v1/chat/completions", json={"model": "maid-tasks",
                                                       "messages": [{"role": "user", "content": "x"}]})
    assert listed == ["maid"]
    assert resp.status_code == 200 and resp.json()["model"] == "maid-tasks"


def test_model_list_answers_when_every_upstream_is_down(make_proxy, fake):
    proxy = make_proxy(ROUTE)
    fake.stop()
    with proxy.http() as http:
        resp = http.get("/v1/models", timeout=2)
    assert resp.status_code == 200
    assert resp.json()["data"][0] == {"id": "maid", "object": "model", "created": resp.json()["data"][0]["created"],
                                      "owned_by": "persona-proxy", "name": "Maid"}


def parse_like_open_webui(text: str) -> dict:
    """Open WebUI's stream rules: data: lines, [DONE] and junk ignored, usage and error chunks."""
    result: dict = {"content": "", "usage": None, "error": None}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            continue
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if "error" in data:
            result["error"] = data["error"].get("message")
            continue
        if data.get("usage") and not data.get("choices"):
            result["usage"] = data["usage"]
            continue
        for choice in data.get("choices", []):
            result["content"] += choice.get("delta", {}).get("content") or ""
    return result


def test_streams_parse_with_open_webui_rules(make_proxy, fake):
    proxy = make_proxy(ROUTE)
    body = {"model": "maid", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}]}
    fake.enqueue(Reply(chunks=[*default_stream(FT_MODEL)[:-1], usage_chunk(FT_MODEL), b"data: [DONE]\n\n"]))
    error = b'data: {"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}}\n\n'
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "Hel", role="assistant"), error]))
    with proxy.http() as http:
        ok = http.post("/v1/chat/completions", json=body, headers=OWUI_HEADERS)
        broken = http.post("/v1/chat/completions", json=body, headers=OWUI_HEADERS)
    assert ok.headers["content-type"].startswith("text/event-stream")
    assert parse_like_open_webui(ok.text) == {"content": "Hello!", "usage": {
        "prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}, "error": None}
    assert parse_like_open_webui(broken.text) == {"content": "Hel", "usage": None, "error": "overloaded"}


def test_detect_task_unit():
    assert detect_task(task_body(TITLE), None) == "title_generation"
    assert detect_task(task_body("### Task:\nDo something new"), None) == "task"
    assert detect_task({"messages": [{"role": "system", "content": "x"},
                                     {"role": "user", "content": TITLE}]}, None) is None
    assert detect_task({"messages": [{"role": "user", "content": [{"type": "text", "text": TAGS}]}]},
                       None) == "tags_generation"
    assert detect_task({"messages": [{"role": "user", "content": "hello"}]}, "emoji_generation") == "emoji_generation"
    caller = caller_from([(b"x-openwebui-user-name", b"Alice%20%E5%A5%B3"), (b"x-openwebui-user-id", b"u\n1")])
    assert caller.user_name == "Alice 女" and caller.user_id == "u1"


def responses_chat_body(stream: bool) -> dict:
    """What Open WebUI 0.12 posts to {base_url}/responses for a chat on a "Responses" connection."""
    tools = [{"type": "function", "name": f"tool_{i}", "description": "d", "strict": False,
              "parameters": {"type": "object", "properties": {}}} for i in range(28)]
    return {"model": "maid", "stream": stream, "instructions": "You are a helpful assistant.", "tools": tools,
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "你好"}]},
                      {"type": "message", "role": "assistant",
                       "content": [{"type": "output_text", "text": "主人好！"}]},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "泡茶"}]}]}


@pytest.mark.parametrize("mode", ["native", "translate"])
def test_a_responses_connection_chats_streams_and_titles_like_open_webui(make_proxy, fake, mode):
    proxy = make_proxy(ROUTE, upstream=f'responses = "{mode}"')
    with proxy.http() as http:
        models = http.get("/v1/models", headers=OWUI_HEADERS).json()["data"]
        whole = http.post("/v1/responses", headers=OWUI_HEADERS, json=responses_chat_body(False)).json()
        streamed = http.post("/v1/responses", headers=OWUI_HEADERS, json=responses_chat_body(True)).text
        title = http.post("/v1/responses", headers=OWUI_HEADERS, json={
            "model": "maid", "stream": False, "max_output_tokens": 1000,
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": TITLE}]}]})
    assert [m["id"] for m in models] == ["maid"]
    assert whole["model"] == "maid" and whole["output"][0]["content"][0]["text"]
    # Open WebUI's browser path: every data: line is one whole JSON event.
    events = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: ")]
    text = "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta")
    completed = events[-1]
    assert text and completed["type"] == "response.completed" and completed["response"]["usage"]["output_tokens"]
    assert title.status_code == 200
    if mode == "native":
        chat, task = fake.responses_requests[1].json, fake.responses_requests[2].json
        assert chat["instructions"] == MAID_PROMPT and len(chat["tools"]) == 28
        assert "instructions" not in task  # the title request kept out of character
    else:
        chat, task = fake.chat_requests[1].json, fake.chat_requests[2].json
        assert chat["messages"][0] == {"role": "system", "content": MAID_PROMPT} and len(chat["tools"]) == 28
        assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "user"]
        assert task["messages"] == [{"role": "user", "content": TITLE}] and task["max_tokens"] == 1000
