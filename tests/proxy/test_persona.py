"""Persona injection as pure functions."""

from __future__ import annotations

from app.proxy.persona import apply_defaults, apply_persona, upstream_body

P = "你是一個可愛的女僕機器人。"
SYS = {"role": "system", "content": "client"}
DEV = {"role": "developer", "content": "dev"}
U1 = {"role": "user", "content": "a"}
A1 = {"role": "assistant", "content": "b"}
U2 = {"role": "user", "content": [{"type": "text", "text": "c"}]}
PERSONA = {"role": "system", "content": P}


def test_replace_drops_every_client_system_message_and_keeps_the_rest_in_order():
    assert apply_persona([SYS, U1, DEV, A1, SYS, U2], P, "replace") == [PERSONA, U1, A1, U2]


def test_replace_with_only_a_user_message_keeps_it():
    assert apply_persona([U1], P, "replace") == [PERSONA, U1]


def test_prepend_keeps_client_system_messages_after_the_persona():
    assert apply_persona([SYS, U1], P, "prepend") == [PERSONA, SYS, U1]


def test_if_absent():
    assert apply_persona([U1, A1], P, "if_absent") == [PERSONA, U1, A1]
    assert apply_persona([SYS, U1], P, "if_absent") == [SYS, U1]
    assert apply_persona([DEV, U1], P, "if_absent") == [DEV, U1]


def test_no_prompt_leaves_messages_alone():
    messages = [SYS, U1]
    assert apply_persona(messages, None, "replace") is messages


def test_input_list_is_not_mutated():
    messages = [SYS, U1]
    apply_persona(messages, P, "replace")
    assert messages == [SYS, U1]


def test_defaults_fill_only_absent_keys_and_explicit_null_wins():
    body = {"temperature": None, "top_p": 0.5}
    assert apply_defaults(body, {"temperature": 0.8, "top_p": 0.9, "max_tokens": 10}) == {
        "temperature": None, "top_p": 0.5, "max_tokens": 10}


def test_upstream_body_sets_model_and_leaves_the_client_body_untouched():
    body = {"model": "maid", "messages": [U1], "tools": [{"type": "function"}]}
    out = upstream_body(body, model="ft:x", prompt=P, mode="replace", params={"temperature": 0.8})
    assert out == {"model": "ft:x", "messages": [PERSONA, U1], "tools": [{"type": "function"}], "temperature": 0.8}
    assert body == {"model": "maid", "messages": [U1], "tools": [{"type": "function"}]}
