"""The usage panel's pure parts: ranges, groupings, who sees which rows, and the series it draws."""

from __future__ import annotations

import datetime as dt

import pytest

from app.config.settings import PriceSettings
from app.console.access import Viewer
from app.console.usage import OTHERS, TOP, Span, parse_group, parse_span, queries, scope_of, series
from app.proxy.errors import InvalidRequest

TODAY = dt.date(2026, 12, 2)
ADMIN, FRIENDS, ANONYMOUS = Viewer(admin=True), Viewer(admin=False, client="friends"), \
    Viewer(admin=False, key_id="key-abc")


def test_ranges_are_whole_utc_days_with_both_ends_included():
    assert parse_span({}, TODAY) == Span(dt.date(2026, 11, 3), TODAY)
    assert parse_span({"days": "1"}, TODAY).days == ["2026-12-02"]
    assert len(parse_span({"days": "366"}, TODAY).days) == 366
    span = parse_span({"from": "2026-01-01", "to": "2026-01-31"}, TODAY)
    assert span.days[0] == "2026-01-01" and len(span.days) == 31
    assert parse_span({"from": "2026-11-20"}, TODAY) == Span(dt.date(2026, 11, 20), TODAY)


@pytest.mark.parametrize("params", [{"days": "367"}, {"days": "-1"}, {"days": "1e3"}, {"from": "2016-12-01"},
                                    {"from": "x"}, {"to": "2026-02-30"}, {"from": "2026-12-02", "to": "2026-12-01"}])
def test_a_bad_range_is_a_400_naming_its_parameter(params):
    with pytest.raises(InvalidRequest) as caught:
        parse_span(params, TODAY)
    assert caught.value.param in params and caught.value.code == "invalid_range"


def test_key_holders_group_only_on_their_own_dimensions():
    assert parse_group(None, ADMIN) == "route" and parse_group("target", ADMIN) == "target"
    assert parse_group("user", FRIENDS) == "user"
    for viewer, by in ((FRIENDS, "target"), (FRIENDS, "client"), (ANONYMOUS, "user"), (ADMIN, "x' OR 1=1")):
        with pytest.raises(InvalidRequest):
            parse_group(by, viewer)


def test_a_key_holder_is_kept_to_its_own_rows():
    assert scope_of(ADMIN, "?") == ("", ())
    assert scope_of(FRIENDS, "?") == (" AND client = ?", ("friends",))
    where, values = scope_of(ANONYMOUS, "%s")
    assert "key_id = %s" in where and "shadow" in where and values == ("key-abc",)
    for by in ("route", "user"):
        for sql, params in queries(by, parse_span({}, TODAY), FRIENDS, "?").values():
            assert "client = ?" in sql and params[-1] == "friends" and sql.count("?") == len(params)


def row(day: str, name: str, model: str = "m", requests: int = 1, prompt: int = 10, completion: int = 5):
    return (day, name, model, requests, 0, prompt, completion)


def test_series_fill_every_day_price_by_model_and_fold_the_tail():
    span = Span(dt.date(2026, 12, 1), TODAY)
    prices = {"m": PriceSettings(input=1.0, output=2.0)}
    rows = [row("2026-12-01", "maid", requests=50), row("2026-12-02", "maid", requests=30),
            row("2026-12-02", "maid", "free")]
    rows += [row("2026-12-02", f"r{i}", requests=10 + i) for i in range(TOP + 2)]
    data = series("route", span, rows, prices)
    assert data["days"] == ["2026-12-01", "2026-12-02"] and len(data["series"]) == TOP
    assert data["series"][-1]["name"] == OTHERS and data["unpriced_models"] == ["free"]
    assert sum(s["total"]["requests"] for s in data["series"]) == sum(r[3] for r in rows)
    maid = next(s for s in data["series"] if s["name"] == "maid")
    assert maid["requests"] == [50, 31] and maid["tokens"] == [15, 30] and data["series"][0] is maid
    assert maid["cost_usd"] == [round((10 * 1 + 5 * 2) / 1e6, 6), round((10 * 1 + 5 * 2) / 1e6, 6)]


def test_top_users_and_the_rest_of_each_day():
    span = Span(TODAY, TODAY)
    users = [row("2026-12-02", "alice", requests=5), row("2026-12-02", "bob", requests=2)]
    totals = [row("2026-12-02", "", requests=10)]
    data = series("user", span, users, {}, totals=totals)
    assert [(s["name"], s["requests"]) for s in data["series"]] == [("alice", [5]), ("bob", [2]), (OTHERS, [3])]
    exact = series("user", span, users, {}, totals=[row("2026-12-02", "", requests=7)])
    assert OTHERS not in [s["name"] for s in exact["series"]]


def test_a_target_is_its_model_at_its_upstream():
    data = series("target", Span(TODAY, TODAY), [row("2026-12-02", "openai", "gpt-4.1-mini")], {})
    assert data["series"][0]["name"] == "gpt-4.1-mini@openai"
