"""A route served from a character card: the prompt, few-shot, lorebook and post-history as the upstream
sees them, over both APIs, streamed and not; SillyTavern's requests under each system_prompt_mode."""

from __future__ import annotations

import json
import logging

import pytest

from ..cards.cardfiles import LILY, card_png, write
from ..fakes.styles import FT_MODEL
from ..fakes.upstream import error_reply

LILY_PROMPT = ("You are a maid.\nStay in character.\n\nLily brews oolong.\n\nLily is a maid who serves {user}.\n\n"
               "[Lily's personality: cheerful]\n\n[Circumstances and context of the dialogue: a tea room]\n\n"
               "Lily lives in Taipei.")
SHOTS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, master!"},
         {"role": "user", "content": "Tea?"}, {"role": "assistant", "content": "Right away!\nWith sugar?"}]
POST = {"role": "system", "content": "Reply as Lily."}


def card_routes(mode: str = "replace", extra: str = "") -> str:
    return f"""
[routes.lily]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "You are a maid."
persona_card = "lily.png"
system_prompt_mode = "{mode}"
{extra}
"""


@pytest.fixture
def lily(make_proxy, tmp_path):
    write(tmp_path / "lily.png", card_png())
    return make_proxy(card_routes())


def sent(fake) -> dict:
    return fake.chat_requests[-1].json


@pytest.mark.parametrize("stream", [False, True])
def test_the_card_is_the_persona_with_the_entries_the_message_names(lily, fake, stream):
    headers = {"X-OpenWebUI-User-Name": "%E5%B0%8F%E6%98%8E"}  # 小明, percent-encoded as Open WebUI sends it
    client = lily.openai()
    messages = [{"role": "user", "content": "Tea with honey, please"}]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="lily", messages=messages, stream=True, extra_headers=headers) if c.choices)
    else:
        text = client.chat.completions.create(model="lily", messages=messages, extra_headers=headers) \
            .choices[0].message.content
    assert text
    assert sent(fake)["messages"] == [
        {"role": "system", "content": LILY_PROMPT.format(user="小明")}, *SHOTS,
        {"role": "user", "content": "Lily hates sugar."},  # @@depth 1 @@role user: one message after it
        {"role": "user", "content": "Tea with honey, please"},
        {"role": "system", "content": "Reply as Lily."}]


def test_no_entry_fires_without_its_key_and_user_falls_back_to_user_name(make_proxy, fake, tmp_path):
    write(tmp_path / "lily.png", card_png())
    proxy = make_proxy(card_routes(extra='user_name = "Master"'))
    proxy.openai().chat.completions.create(model="lily", messages=[{"role": "user", "content": "Hello"}])
    body = sent(fake)
    assert body["messages"][0]["content"] == LILY_PROMPT.format(user="Master").replace("Lily brews oolong.\n\n", "")
    assert body["messages"][-2:] == [{"role": "user", "content": "Hello"}, POST]


@pytest.mark.parametrize("stream", [False, True])
def test_responses_get_the_card_in_instructions_and_post_history_last(lily, fake, stream):
    client = lily.openai()
    if stream:
        with client.responses.stream(model="lily", input="tea?") as events:
            assert events.get_final_response().output_text
    else:
        assert client.responses.create(model="lily", input="tea?").output_text
    body = fake.responses_requests[-1].json
    assert body["instructions"] == LILY_PROMPT.format(user="User")
    assert body["input"] == [*SHOTS, {"role": "user", "content": "tea?"}, POST]


def test_open_webui_tasks_get_no_card_and_no_lorebook(lily, fake):
    task = "### Task:\nGenerate a concise title for this chat about tea.\n### Chat History:\nUSER: tea"
    lily.openai().chat.completions.create(model="lily", messages=[{"role": "user", "content": task}])
    assert sent(fake)["messages"] == [{"role": "user", "content": task}]


def test_a_fallback_target_serves_its_own_card(make_proxy, fake, tmp_path):
    other = json.loads(json.dumps(LILY))
    other["data"].update(name="Rose", description="{{char}} is the backup maid.", character_book=None,
                         system_prompt="", post_history_instructions="", mes_example="")
    write(tmp_path / "lily.png", card_png())
    write(tmp_path / "rose.png", card_png(other))
    fake.enqueue(error_reply(500, "down", "server_error"))
    proxy = make_proxy(card_routes(extra='[[routes.lily.fallbacks]]\nupstream = "fake"\nmodel = "backup"\n'
                                         'persona_card = "rose.png"'))
    proxy.openai().chat.completions.create(model="lily", messages=[{"role": "user", "content": "tea"}])
    body = sent(fake)
    assert body["model"] == "backup"
    assert body["messages"][0]["content"] == ("You are a maid.\n\nRose is the backup maid.\n\n[Rose's personality: "
                                              "cheerful]\n\n[Circumstances and context of the dialogue: a tea room]")


def sillytavern_body(stream: bool) -> dict:
    """What SillyTavern 1.19 sends from "Chat Completion, Custom (OpenAI-compatible)" with its default prompt
    order and texts (public/scripts/openai.js of the npm package: default_main_prompt, the personality and
    scenario formats, '[Example Chat]', '[Start a new Chat]'): each part a system message, the examples as
    system messages named example_user / example_assistant, the greeting as the first assistant message."""
    return {"model": "tavern", "stream": stream, "temperature": 1, "max_tokens": 300, "presence_penalty": 0,
            "frequency_penalty": 0, "top_p": 1, "logit_bias": {},
            "messages": [
                {"role": "system", "content": "Write Lily's next reply in a fictional chat between Lily and User."},
                {"role": "system", "content": "Lily is a maid who serves User."},
                {"role": "system", "content": "cheerful"},  # personality_format '{{personality}}' in 1.19
                {"role": "system", "content": "a tea room"},  # scenario_format '{{scenario}}'
                {"role": "system", "content": "[Example Chat]"},
                {"role": "system", "name": "example_user", "content": "Hi"},
                {"role": "system", "name": "example_assistant", "content": "Hello, master!"},
                {"role": "system", "content": "[Start a new Chat]"},
                {"role": "assistant", "content": "Welcome home, User!"},
                {"role": "user", "content": "Hello Lily"}]}


def access_line(caplog) -> dict:
    return next(r.fields for r in reversed(caplog.records) if getattr(r, "fields", {}).get("route") == "tavern")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["replace", "prepend", "if_absent"])
def test_sillytavern_requests_under_each_mode(make_proxy, fake, caplog, mode, stream):
    from ..fakes.styles import MAID_PROMPT

    proxy = make_proxy(f'[routes.tavern]\nupstream = "fake"\nmodel = "{FT_MODEL}"\nsystem_prompt = "{MAID_PROMPT}"\n'
                       f'system_prompt_mode = "{mode}"\n')
    caplog.set_level(logging.INFO)
    body = sillytavern_body(stream)
    with proxy.http() as http:
        answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200
        if stream:
            assert answer.text.rstrip().endswith("data: [DONE]")
    upstream = sent(fake)["messages"]
    theirs = body["messages"]
    conversation = [m for m in theirs if m["role"] != "system"]
    if mode == "replace":
        assert upstream == [{"role": "system", "content": MAID_PROMPT}, *conversation]
        assert access_line(caplog)["dropped_system"] == 8  # never silently
    elif mode == "prepend":
        assert upstream == [{"role": "system", "content": MAID_PROMPT}, *theirs]  # examples keep their names
        assert "dropped_system" not in access_line(caplog)
    else:
        assert upstream == theirs
        assert "dropped_system" not in access_line(caplog)


def test_the_example_card_and_lorebook_serve_offline(tmp_path):
    import shutil

    from app.config import load_config
    from app.proxy.server import create_app

    from ..conftest import REPO
    from ..fakes.servers import ServerThread

    for name in ("lily-card.json", "tea-lorebook.json"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    (tmp_path / "config.toml").write_text(
        '[server]\nport = 0\n[upstreams.demo]\nkind = "demo"\n[routes.lily]\nupstream = "demo"\nmodel = "maid-demo"\n'
        'persona_card = "lily-card.json"\nlorebook = "tea-lorebook.json"\nuser_name = "主人"\n', encoding="utf-8")
    with ServerThread(create_app(load_config(tmp_path / "config.toml", environ={}))) as server:
        import openai

        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=10)
        reply = client.chat.completions.create(model="lily", messages=[{"role": "user", "content": "想喝咖啡"}])
        assert "主人" in reply.choices[0].message.content
        # The demo speaks chat only: a Responses request is translated after the card is placed.
        assert "主人" in client.responses.create(model="lily", input="想喝咖啡").output_text


def test_a_responses_request_to_a_chat_only_upstream_keeps_the_card_in_place(make_proxy, fake, tmp_path):
    write(tmp_path / "lily.png", card_png())
    proxy = make_proxy(card_routes(), upstream='responses = "translate"')
    assert proxy.openai().responses.create(model="lily", input="tea with honey").output_text
    messages = sent(fake)["messages"]
    assert messages[0] == {"role": "system", "content": LILY_PROMPT.format(user="User")}
    assert messages[-3:] == [{"role": "user", "content": "Lily hates sugar."},
                             {"role": "user", "content": "tea with honey"}, POST]


def test_the_debug_log_names_the_entries_that_fired_never_their_text(lily, caplog):
    caplog.set_level(logging.DEBUG, logger="app.proxy.planning")
    lily.openai().chat.completions.create(model="lily", messages=[{"role": "user", "content": "tea with honey"}])
    lines = [r.getMessage() for r in caplog.records if r.name == "app.proxy.planning"]
    assert "lorebook on route lily: 3 entries fired: home, tea, sugar" in lines
    assert not any("oolong" in line or "hates sugar" in line for line in lines)
