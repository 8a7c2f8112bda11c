"""Canary, shadow, dataset and [fidelity] settings: bad values are one clear message, good ones load."""

from __future__ import annotations

import datetime as dt

import pytest

from app.config import ConfigError, load_config
from app.config.settings import OPENAI_FINE_TUNING_UNTIL, UpstreamSettings

BASE = '[upstreams.a]\nbase_url = "http://127.0.0.1:9/v1"\n[routes.maid]\nupstream = "a"\nmodel = "m"\n'
CANARY = '[[routes.maid.canary]]\nupstream = "a"\nmodel = "{model}"\nshare = {share}\n'


@pytest.mark.parametrize(("extra", "expected"), [
    (CANARY.format(model="n", share=1.5), "routes.maid.canary.0.share: must be from 0 to 1"),
    (CANARY.format(model="n", share=-0.1), "routes.maid.canary.0.share: must be from 0 to 1"),
    (CANARY.format(model="n", share=0.6) + CANARY.format(model="o", share=0.6),
     "the canary shares add up to 1.2, above 1: lower them"),
    ('[[routes.maid.shadow]]\nupstream = "b"\nmodel = "n"\n', "routes.maid.shadow[0].upstream: unknown upstream 'b'"),
    ('[[routes.maid.canary]]\nupstream = "zz"\nmodel = "n"\nshare = 0.1\n',
     "routes.maid.canary[0].upstream: unknown upstream 'zz'; define [upstreams.zz]"),
    ('[[routes.maid.shadow]]\nupstream = "a"\nmodel = "n"\nsample = 2\n',
     "routes.maid.shadow.0.sample: must be from 0"),
    ('[[routes.maid.shadow]]\nupstream = "a"\nmodel = "n"\nmax_in_flight = 0\n', "routes.maid.shadow.0.max_in_flight"),
    ('[[routes.maid.canary]]\nupstream = "a"\nmodel = "n"\nshares = 0.5\n', "unknown key (did you mean `share`?)"),
    ("[fidelity]\nsample = 1.01\n", "fidelity.sample: must be from 0 to 1"),
    ("[fidelity]\nkeep_reply = true\n", "did you mean `keep_replies`?"),
])
def test_bad_succession_settings_are_refused_with_the_key_and_the_fix(tmp_path, extra, expected):
    path = tmp_path / "config.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(path) in str(caught.value) and expected in str(caught.value)


@pytest.mark.parametrize(("content", "expected"), [
    ('{"messages": []}\nnot json\n', "line 2 is not a training example"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', "has no assistant replies"),
    ("", "has no assistant replies"),
])
def test_a_dataset_that_does_not_parse_is_refused(tmp_path, content, expected):
    (tmp_path / "maid.jsonl").write_text(content, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(BASE + 'dataset = "maid.jsonl"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "routes.maid.dataset" in str(caught.value) and expected in str(caught.value)
    (tmp_path / "config.toml").write_text(BASE + 'dataset = "missing.jsonl"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes\.maid\.dataset: no such file"):
        load_config(path, environ={})


def test_good_succession_settings_load_with_paths_beside_the_config(tmp_path):
    (tmp_path / "maid.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                         '{"role": "assistant", "content": "主人好"}]}\n', encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(BASE + 'dataset = "maid.jsonl"\n' + CANARY.format(model="n", share=0.25)
                    + '[[routes.maid.shadow]]\nupstream = "a"\nmodel = "s"\nfew_shot_from = "maid.jsonl"\n'
                    + "[fidelity]\nsample = 0.5\n", encoding="utf-8")
    config = load_config(path, environ={})
    route = config.routes["maid"]
    assert route.dataset == tmp_path / "maid.jsonl" and route.shadow[0].few_shot_from == tmp_path / "maid.jsonl"
    assert route.canary[0].share == 0.25 and route.shadow[0].sample == 1.0 and route.shadow[0].max_in_flight == 4
    assert config.fidelity.sample == 0.5 and config.fidelity.keep_replies is False


def test_openai_fine_tuning_ends_on_its_date_unless_the_config_says_otherwise():
    assert UpstreamSettings(base_url="https://api.openai.com/v1").fine_tuning_cutoff == OPENAI_FINE_TUNING_UNTIL
    assert dt.date(2027, 1, 6) == OPENAI_FINE_TUNING_UNTIL
    assert UpstreamSettings(base_url="http://127.0.0.1:8000/v1").fine_tuning_cutoff is None
    own = UpstreamSettings(base_url="https://api.openai.com/v1", fine_tuning_until=dt.date(2026, 12, 24))
    assert own.fine_tuning_cutoff == dt.date(2026, 12, 24)


def test_a_route_key_written_below_a_canary_table_says_where_it_belongs(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(BASE + CANARY.format(model="n", share=0.1) + 'display_name = "Maid"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert ("routes.maid.canary.0.display_name: display_name is a key of [routes.maid], not of its canary entries: "
            "move it above the first [[routes.maid.canary]] line") in str(caught.value)
