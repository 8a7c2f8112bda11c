"""Which target a conversation gets: the key's order of precedence, stability, and the shares."""

from __future__ import annotations

import math
import subprocess
import sys

from app.proxy.apis import CHAT, RESPONSES
from app.proxy.routing import Route, Target
from app.proxy.succession.assign import assign, canary_for, conversation_key, first_user_text

from ...conftest import REPO

BODY = {"model": "maid", "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "早安"}]}


def canary(share: float, index: int = 0, model: str = "next") -> Target:
    return Target(index, "canary", model, None, (), {}, None, "canary", share)


def route_with(*canaries: Target) -> Route:
    return Route("maid", None, 0, b'"maid"', (), canaries)  # type: ignore[arg-type]


def test_the_conversation_key_prefers_chat_id_then_user_then_user_header_then_first_message():
    both = [(b"x-openwebui-chat-id", b"chat-1"), (b"x-openwebui-user-id", b"u-1")]
    assert conversation_key(both, {**BODY, "user": "body-user"}, "key-a", BODY["messages"]) == "chat:chat-1"
    assert conversation_key(both[1:], {**BODY, "user": "body-user"}, "key-a", BODY["messages"]) == "user:body-user"
    assert conversation_key(both[1:], BODY, "key-a", BODY["messages"]) == "user:u-1"
    assert conversation_key([], BODY, "key-a", BODY["messages"]) == "first:key-a:早安"
    # Another client key with the same first message is another conversation.
    assert conversation_key([], BODY, "key-b", BODY["messages"]) != conversation_key([], BODY, "key-a",
                                                                                      BODY["messages"])


def test_both_apis_name_the_same_conversation():
    chat = conversation_key([], BODY, "key-a", CHAT.messages(BODY))
    for given in ("早安", [{"role": "user", "content": "早安"}],
                  [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "早安"}]}]):
        body = {"model": "maid", "input": given}
        assert conversation_key([], body, "key-a", RESPONSES.messages(body)) == chat
    assert first_user_text([{"role": "assistant", "content": "hi"}]) == ""


def test_later_turns_of_a_conversation_keep_its_target():
    first = {"model": "maid", "messages": [{"role": "user", "content": "你好"}]}
    later = {"model": "maid", "messages": [*first["messages"], {"role": "assistant", "content": "主人好"},
                                           {"role": "user", "content": "泡茶"}]}
    r = route_with(canary(0.5))
    keys = [conversation_key([], b, "key-a", b["messages"]) for b in (first, later)]
    assert assign(r, keys[0]) == assign(r, keys[1])


def test_shares_hold_over_a_thousand_conversations_within_a_binomial_tolerance():
    r = route_with(canary(0.1, 0, "a"), canary(0.25, 1, "b"))
    counts = {"a": 0, "b": 0, None: 0}
    for i in range(1000):
        target, _ = assign(r, f"chat:conversation-{i}")
        counts[target.model if target else None] += 1
    for name, share in (("a", 0.1), ("b", 0.25), (None, 0.65)):
        # Four standard deviations: fixed keys make this deterministic, the tolerance makes it honest.
        assert abs(counts[name] - 1000 * share) <= 4 * math.sqrt(1000 * share * (1 - share)), counts


def test_slices_follow_the_shares_in_order():
    targets = (canary(0.2, 0, "a"), canary(0.3, 1, "b"))
    assert canary_for(targets, 0.0).model == "a" and canary_for(targets, 0.1999).model == "a"
    assert canary_for(targets, 0.2).model == "b" and canary_for(targets, 0.4999).model == "b"
    assert canary_for(targets, 0.5) is None and canary_for((), 0.1) is None


def test_the_route_name_is_part_of_the_hash_and_python_hash_seeds_do_not_matter():
    code = ("from app.proxy.succession.assign import digest; print(digest('maid', 'chat:x').hex(), "
            "digest('maid-2', 'chat:x').hex())")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                              env={"PYTHONHASHSEED": seed}, check=True).stdout for seed in ("1", "2")}
    assert len(outputs) == 1
    mine, other = outputs.pop().split()
    assert mine != other
