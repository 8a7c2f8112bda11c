"""Persona fidelity measures: each one tells a faithful reply set from an unfaithful one."""

from __future__ import annotations

import json

import pytest

from app.tuning.fidelity import Profile, breaks_character, chrf, derive_markers, dominant_script, measure, script_of

from ..conftest import DATA, SHARED_DATASET

TRAINING = ["主人，歡迎回來！今天想喝什麼茶呢？❤️", "好的，主人！莉莉馬上為您準備。❤️", "主人辛苦了，請先休息一下吧～❤️",
            "是的，主人！這件事就交給莉莉吧。", "主人，晚餐已經準備好了喔！❤️"]
TRADITIONAL = ["主人，您回來了！莉莉為您泡了熱茶。❤️"] * 4
SIMPLIFIED = ["主人，您回来了！莉莉为您泡了热茶。❤️"] * 4
ENGLISH = ["Welcome back! I made you some hot tea."] * 4
BROKEN = ["主人，作為一個AI語言模型，我無法真的泡茶。❤️"] * 4


def test_scripts_are_told_apart():
    assert script_of(TRADITIONAL[0]) == "zh-Hant" and script_of(SIMPLIFIED[0]) == "zh-Hans"
    assert script_of(ENGLISH[0]) == "latin" and script_of("主人你好") == "zh"
    assert dominant_script(TRAINING) == "zh-Hant"


def test_markers_are_derived_from_what_most_replies_share():
    markers = derive_markers(TRAINING)
    assert list(markers)[:2] == ["主人", "❤"] and markers["主人"] == 1.0 and markers["❤"] == 0.8
    assert all(len(m) > 1 or m == "❤" for m in markers)


def test_breaks_of_character_in_several_languages():
    assert breaks_character("As an AI language model, I cannot.")
    assert breaks_character(BROKEN[0]) and breaks_character("作为一个AI，我不能")
    assert not breaks_character(TRADITIONAL[0])
    assert breaks_character("我是機器管家", extra=["機器管家"])


def test_each_measure_pulls_its_own_unfaithful_target_down():
    profile = Profile.of(TRAINING)
    base = measure(TRAINING, [None] * len(TRAINING), profile)
    refs = TRAINING[:4]
    faithful = measure(TRADITIONAL, refs, profile, base)
    worst = {name: min(s.components, key=s.components.__getitem__)
             for name, s in (("simplified", measure(SIMPLIFIED, refs, profile, base)),
                             ("english", measure(ENGLISH, refs, profile, base)),
                             ("broken", measure(BROKEN, refs, profile, base)))}
    assert faithful.components["script"] == 1.0 and faithful.components["in character"] == 1.0
    assert worst == {"simplified": "script", "english": "script", "broken": "in character"}
    assert measure(SIMPLIFIED, refs, profile, base).components["script"] == 0.0
    assert measure(ENGLISH, refs, profile, base).components["markers"] < 0.4
    assert faithful.fidelity > max(measure(r, refs, profile, base).fidelity for r in (SIMPLIFIED, ENGLISH, BROKEN))


def test_chrf_is_higher_for_the_closer_reply():
    reference = "好的，主人！莉莉馬上為您泡一杯香濃的紅茶。"
    assert chrf("好的，主人！莉莉馬上為您泡茶。", reference) > chrf("Sure, here is your tea.", reference)
    assert chrf(reference, reference) == pytest.approx(1.0)


def test_route_markers_override_the_derived_ones():
    profile = Profile.of(TRAINING, markers=["莉莉"])
    assert profile.markers == {"莉莉": 0.4}


@pytest.mark.skipif(not SHARED_DATASET.exists(), reason="../shared/data is not beside this checkout")
def test_the_reference_maid_is_traditional_and_calls_the_user_master():
    replies = [next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "assistant")
               for line in SHARED_DATASET.read_text(encoding="utf-8").splitlines()]
    profile = Profile.of(replies)
    assert profile.script == "zh-Hant" and 0.9 < profile.markers["主人"] < 0.95


def test_the_shipped_sample_has_a_profile():
    replies = [next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "assistant")
               for line in (DATA.parent.parent / "examples" / "maid_sample.jsonl").read_text().splitlines()]
    assert Profile.of(replies).script == "zh-Hant"


def test_script_of_gives_hanzidentifiers_own_answer():
    import hanzidentifier

    names = {hanzidentifier.TRADITIONAL: "zh-Hant", hanzidentifier.SIMPLIFIED: "zh-Hans", hanzidentifier.BOTH: "zh",
             hanzidentifier.MIXED: "mixed"}
    texts = ["主人早安！莉莉已經為您泡好紅茶了喔～❤️", "主人早上好！我已经为您准备好红茶了。", "你好", "人口",
             "這是简体和繁體", "Good morning, master!", "❤️❤️", "", "日本語のテキスト", "主人 hello 世界"]
    if SHARED_DATASET.exists():
        texts += SHARED_DATASET.read_text(encoding="utf-8").splitlines()
    for text in texts:
        kind = hanzidentifier.identify(text)
        if kind in names:
            assert script_of(text) == names[kind], text
        else:
            assert script_of(text) in ("latin", "other"), text


def test_measure_reply_counts_what_measure_counts():
    from app.tuning.fidelity import measure_reply, reference_scores, scores_of

    replies = ["主人早安！❤️", "主人，我來了", "作為一個AI語言模型", "Hello master"]
    profile = Profile.of(["主人早安❤️", "主人好❤️", "主人，茶來了"])
    base = reference_scores(["主人早安❤️", "主人好❤️", "主人，茶來了"], profile)
    whole = measure(replies, [None] * len(replies), profile, base)
    single = scores_of([measure_reply(r, profile) for r in replies], profile, base)
    assert single.script_share == whole.script_share and single.break_share == whole.break_share
    assert single.marker_shares == whole.marker_shares and single.median_length == whole.median_length
    assert single.fidelity == whole.fidelity
