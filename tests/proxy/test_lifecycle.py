"""Few-shot targets in requests, shutdown dates and start-up warnings."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest

from app.proxy.lifecycle import Lifecycle, parse_date, shutdown_dates, utc_today
from app.proxy.routing import Route, Target
from app.tuning.tokens import load_counter

from ..conftest import DATA, MAID_PROMPT


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def test_few_shot_target_sends_persona_then_examples_then_the_chat(make_proxy, fake, tmp_path):
    dataset = tmp_path / "maid.jsonl"
    dataset.write_bytes((DATA / "valid.jsonl").read_bytes())
    proxy = make_proxy(f"""
[routes.maid]
upstream = "fake"
model = "gpt-4.1-mini"
system_prompt = "{MAID_PROMPT}"
few_shot_from = "maid.jsonl"
few_shot_count = 3
""")
    with proxy.http() as http:
        http.post("/v1/chat/completions", json={"model": "maid", "messages": [{"role": "user", "content": "嗨"}]})
    messages = fake.chat_requests[0].json["messages"]
    assert messages[0] == {"role": "system", "content": MAID_PROMPT}
    assert [m["role"] for m in messages[1:7]] == ["user", "assistant"] * 3
    assert messages[7] == {"role": "user", "content": "嗨"}


def test_missing_few_shot_file_is_a_config_error(make_proxy):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="few_shot_from: no such file"):
        make_proxy('[routes.maid]\nupstream = "fake"\nmodel = "m"\nfew_shot_from = "nope.jsonl"\n')


@pytest.mark.parametrize(("value", "expected"), [
    ("2027-01-14", dt.date(2027, 1, 14)), ("2027-01-14T00:00:00Z", dt.date(2027, 1, 14)),
    (1799884800, dt.date(2027, 1, 14)), (None, None), ("soon", None), (True, None), (-5, None)])
def test_parse_date(value, expected):
    assert parse_date(value) == expected


def test_shutdown_dates_from_a_models_list():
    listing = {"data": [{"id": "gpt-4o-mini-2024-07-18", "shutdown_date": "2027-01-14"},
                        {"id": "gpt-4.1-mini", "shutdown_date": None}, {"id": 3}, "junk"]}
    assert shutdown_dates(listing) == {"gpt-4o-mini-2024-07-18": dt.date(2027, 1, 14)}
    assert shutdown_dates(None) == {} and shutdown_dates({"data": "x"}) == {}


def route_with(*targets: Target) -> Route:
    from app.config.settings import RouteSettings

    return Route("maid", RouteSettings(upstream="openai", model="m"), 0, b'"maid"', targets)


def target(index: int, model: str, date: dt.date | None = None) -> Target:
    return Target(index, "openai", model, None, (), {}, date)


def test_warnings_and_skipping_with_a_fake_clock():
    today = [dt.date(2026, 12, 20)]
    now = [0.0]
    life = Lifecycle(today=lambda: today[0], clock=lambda: now[0])
    primary, backup = target(0, "ft:gpt-4o-mini:maid"), target(1, "gpt-4.1-mini")
    route = route_with(primary, backup)
    life.learn("openai", {"data": [{"id": "ft:gpt-4o-mini:maid", "shutdown_date": "2027-01-14"}]})
    assert life.warnings([route]) == [
        "route maid: primary openai/ft:gpt-4o-mini:maid shuts down on 2027-01-14 (in 25 days)"]
    assert life.usable(route) == [primary, backup]
    today[0] = dt.date(2026, 11, 1)
    assert life.warnings([route]) == []  # more than 30 days ahead
    today[0] = dt.date(2027, 1, 14)
    assert life.usable(route) == [backup]
    assert "(today)" in life.warnings([route])[0]
    today[0] = dt.date(2026, 12, 1)
    life.mark_retired(backup)
    assert life.usable(route) == [primary]
    now[0] = 601.0
    assert life.usable(route) == [primary, backup]
    lonely = route_with(target(0, "old", dt.date(2026, 12, 10)))
    assert life.warnings([lonely])[0].endswith("(in 9 days); add a fallback")
    assert life.usable(lonely) == list(lonely.targets)  # nothing else to try: try it anyway


def test_start_up_learns_shutdown_dates_warns_and_lists_them(make_proxy, fake, caplog):
    caplog.set_level(logging.WARNING)
    soon = (utc_today() + dt.timedelta(days=10)).isoformat()
    fake.models = [{"id": "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D", "object": "model", "created": 1,
                    "owned_by": "user", "shutdown_date": soon}]
    proxy = make_proxy(check_models=True)
    with proxy.http() as http:
        for _ in range(50):
            listed = http.get("/v1/models").json()["data"][0]
            if "shutdown_date" in listed:
                break
    assert listed["shutdown_date"] == soon
    assert f"shuts down on {soon} (in 10 days); add a fallback" in caplog.text


def test_next_shutdown_is_that_of_a_target_that_can_still_serve():
    today = [dt.date(2027, 2, 1)]
    life = Lifecycle(today=lambda: today[0])
    retired, undated = target(0, "ft:old", dt.date(2027, 1, 14)), target(1, "gpt-4.1-mini")
    assert life.next_shutdown(route_with(retired, undated)) is None  # the past date is not shown
    dated = target(1, "gpt-4.1-mini", dt.date(2027, 7, 1))
    assert life.next_shutdown(route_with(retired, dated)) == dt.date(2027, 7, 1)
    today[0] = dt.date(2027, 1, 13)
    assert life.next_shutdown(route_with(retired, dated)) == dt.date(2027, 1, 14)
    assert life.warnings([route_with(target(0, "x", dt.date(2027, 1, 14)))])[0].endswith("(in 1 day); add a fallback")
    today[0] = dt.date(2027, 1, 15)
    assert "(1 day ago)" in life.warnings([route_with(target(0, "x", dt.date(2027, 1, 14)))])[0]


def test_start_up_reads_the_upstreams_concurrently(make_proxy, fake):
    from ..fakes.servers import black_hole

    soon = (utc_today() + dt.timedelta(days=5)).isoformat()
    fake.models = [{"id": "m-fake", "object": "model", "created": 1, "owned_by": "u", "shutdown_date": soon}]
    with black_hole() as port:
        # Sorted first, the hole would hold up a sequential read for its whole connect timeout.
        proxy = make_proxy('[routes.aaa]\nupstream = "aaa-hole"\nmodel = "m-hole"\n\n'
                           '[routes.maid]\nupstream = "fake"\nmodel = "m-fake"\n', check_models=True,
                           extra_upstreams=f'[upstreams.aaa-hole]\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                                           'connect_timeout = 5\n')
        started = time.monotonic()
        with proxy.http() as http:
            while time.monotonic() - started < 4:
                listed = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
                if "shutdown_date" in listed["maid"]:
                    break
                time.sleep(0.05)
        assert listed["maid"].get("shutdown_date") == soon
        assert time.monotonic() - started < 3  # not after the hole's 5 s connect timeout


def test_shutdown_days_are_utc_days_whatever_the_local_time_zone(monkeypatch):
    import time

    # At any hour, one of these zones is on another calendar day than UTC.
    now = dt.datetime.now(dt.UTC)
    zone, local_offset = ("Etc/GMT-14", 14) if now.hour >= 10 else ("Etc/GMT+12", -12)
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        local_day = dt.date.today()
        assert local_day == (now + dt.timedelta(hours=local_offset)).date() != now.date()
        retiring = target(0, "ft:gpt-4o-mini:maid", max(local_day, now.date()))
        route = route_with(retiring, target(1, "gpt-4.1-mini"))
        # Ahead of UTC, the local day has reached the date and UTC's has not; behind, the other way round.
        expected = [retiring, route.targets[1]] if local_offset > 0 else [route.targets[1]]
        assert Lifecycle().usable(route) == expected
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
