"""Assembling a persona from a card, and rendering it for one request: pure functions, no server."""

from __future__ import annotations

import json

import pytest

from app.cards import parse_card
from app.cards.book import read_book
from app.cards.macros import example_text, examples, resolve
from app.config import RouteSettings
from app.proxy.card_persona import Insert, build_persona, render
from app.proxy.persona import placed
from app.tuning.tokens import load_counter

from ..cards.cardfiles import LILY


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def card(**fields):
    data = json.loads(json.dumps(LILY))
    data["data"].update(fields)
    return parse_card(data)


def route(**fields) -> RouteSettings:
    return RouteSettings(upstream="u", model="m", **fields)


def test_the_documented_order_with_original(counter):
    lily = card(character_book=None)
    persona, warnings = build_persona(route(system_prompt="Own."), route(), lily, [], counter)
    assert warnings == []
    assert render(persona, ()).prompt == ("Own.\nStay in character.\n\nLily is a maid who serves User.\n\n"
                                          "[Lily's personality: cheerful]\n\n"
                                          "[Circumstances and context of the dialogue: a tea room]")


def test_a_card_prompt_without_original_wins_and_warns(counter):
    persona, warnings = build_persona(route(system_prompt="Own."), route(), card(system_prompt="Card's."), [], counter)
    assert render(persona, ()).prompt.startswith("Card's.\n\n") and "Own." not in render(persona, ()).prompt
    assert warnings and "{{original}}" in warnings[0]
    # A card without a system_prompt takes the route's.
    persona, _ = build_persona(route(system_prompt="Own."), route(), card(system_prompt=""), [], counter)
    assert render(persona, ()).prompt.startswith("Own.\n\nLily is")


def test_macros_match_case_insensitively_and_user_is_filled_per_request(counter):
    lily = card(description="{{CHAR}} greets <User> and {{ user }}; <bot>{{// a comment}}.", character_book=None,
                post_history_instructions="Answer {{user}}.", system_prompt="", personality="", scenario="")
    persona, _ = build_persona(route(user_name="Master"), route(), lily, [], counter)
    assert persona.personal
    assert render(persona, (), "小明").prompt == "Lily greets 小明 and 小明; Lily."
    assert render(persona, ()).post == "Answer Master."


def test_nickname_is_char():
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Lily Rose", "nickname": "Lil"}}
    assert parse_card(v3).name == "Lil"
    assert resolve("{{char}} and <BOT>", "Lil") == "Lil and Lil"


def test_mes_example_blocks_share_the_budget_with_few_shot_from(counter, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                        {"role": "assistant", "content": f"a{i}"}]})
                               for i in range(10)), encoding="utf-8")
    spec = route(few_shot_from=train, few_shot_count=3)
    persona, _ = build_persona(route(), spec, card(character_book=None), [], counter)
    users = [m["content"] for m in persona.few_shot if m["role"] == "user"]
    assert users[:2] == ["Hi", "Tea?"] and len(users) == 3  # the card's first, then one from the training set
    long = "<START>\n{{user}}: Hi\n{{char}}: Hello!\n<START>\n{{user}}: Talk\n{{char}}: " + "blah " * 80
    persona, _ = build_persona(route(), route(few_shot_max_tokens=50), card(mes_example=long, character_book=None),
                               [], counter)
    assert persona.few_shot == ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"})
    assert persona.left_out == 1  # `card show` warns about it


def test_mes_example_round_trips_through_example_text():
    shots = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Two\nlines"},
             {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Yes"}]
    text = example_text(shots)
    assert text.startswith("<START>\n{{user}}: Hi\n{{char}}: Two\nlines\n<START>")
    blocks = examples(resolve(text, "Lily"), ("Lily",))
    assert [m for block in blocks for m in block] == shots


def test_lorebook_entries_are_placed_before_after_and_at_depth(counter):
    book = read_book(LILY["data"]["character_book"])
    persona, _ = build_persona(route(), route(), card(), [book], counter)
    rendered = render(persona, [{"role": "user", "content": "tea with honey"}])
    assert rendered.fired == ("home", "tea", "sugar")
    assert rendered.prompt.index("Lily brews oolong.") < rendered.prompt.index("Lily is a maid")
    assert rendered.prompt.endswith("Lily lives in Taipei.")
    assert rendered.inserts == (Insert(1, "user", "Lily hates sugar."),)


def test_depth_counts_conversation_messages_and_never_enters_the_persona():
    items = ["persona", "shot-u", "shot-a", "u1", "a1", "u2"]
    inserts = [Insert(0, "system", "end"), Insert(2, "system", "two"), Insert(99, "user", "deep")]
    out = placed(items, 3, inserts, "post")
    assert [m if isinstance(m, str) else m["content"] for m in out] == \
        ["persona", "shot-u", "shot-a", "deep", "u1", "two", "a1", "u2", "end", "post"]
