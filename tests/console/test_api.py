"""The console's data endpoints on a real server: who sees what, bad input, and figures that match the records."""

from __future__ import annotations

import json
import sqlite3

import httpx
import orjson
import pytest

from app.evals.succession import read_rows, report
from app.ops.usage import SqliteStore
from app.tuning.fidelity import Profile, reference_scores

from ..fakes.styles import FT_MODEL, SAMPLE
from .conftest import PERSONA_PROMPT

ENDPOINTS = ("/console/api/overview", "/console/api/usage", "/console/api/fidelity")


def test_the_page_loads_without_a_key_and_holds_no_data(console):
    page = httpx.get(console.url + "/console", timeout=10)
    assert page.status_code == 200 and "Sign in" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"
    assert "maid" not in page.text and "<script>" not in page.text and "http" not in page.text.split("<body>")[1]
    script = httpx.get(console.url + "/console/static/console.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "http://" not in script.text.replace("http://www.w3.org/2000/svg", "")
    missing = httpx.get(console.url + "/console/static/..%2F..%2Fconfig.toml", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_data_needs_a_key_and_a_wrong_key_is_refused(console, path):
    for key in (None, "wrong-key", console.proxy.upstream_key):
        response = console.get(path, key)
        assert response.status_code == 401, (key, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and "\n" not in error["message"]
        assert key is None or key not in response.text


def test_admin_sees_every_route_target_and_client(console, tmp_path):
    console.traffic(tmp_path)
    data = console.get("/console/api/overview", console.admin_key).json()
    assert data["viewer"] == {"role": "admin"}
    routes = {r["name"]: r for r in data["routes"]}
    assert set(routes) == {"maid", "maid-demo", "secret-route"}
    assert [t["role"] for t in routes["maid"]["targets"]] == ["primary", "canary", "shadow"]
    secret = routes["secret-route"]["targets"][0]
    assert secret["shutdown_date"] == "2027-01-14" and secret["days_left"] == (
        __import__("datetime").date(2027, 1, 14) - __import__("app.proxy.lifecycle", fromlist=["x"]).utc_today()).days
    clients = {c["client"]: c for c in data["clients"]}
    assert set(clients) == {"family", "friends"}
    assert clients["friends"]["limits"] == {"rpm": 600, "budget_usd": 5.0, "budget_period": "month"}
    assert clients["friends"]["per_user"] == {"rpm": 100} and clients["friends"]["keys"][0].startswith("key-")
    # The proxy's own counters: four requests from friends this minute, the period's spend reserved and settled.
    assert clients["friends"]["used"]["requests"] == 4 and clients["friends"]["source"] == "this process"
    assert PERSONA_PROMPT not in json.dumps(data)


def test_a_client_key_sees_only_its_own_client(console, tmp_path):
    console.traffic(tmp_path)
    overview = console.get("/console/api/overview", console.friend_key)
    data = overview.json()
    assert data["viewer"] == {"role": "client", "client": "friends", "key_id": None}
    assert [r["name"] for r in data["routes"]] == ["maid", "maid-demo"]  # its scope, not secret-route
    assert all("targets" not in r for r in data["routes"])
    assert [c["client"] for c in data["clients"]] == ["friends"] and "keys" not in data["clients"][0]
    usage = console.get("/console/api/usage", console.friend_key, by="user").json()
    assert sum(s["total"]["requests"] for s in usage["series"]) == 4  # its four, none of family's or shadows'
    everything = json.dumps([data, usage, console.get("/console/api/usage", console.friend_key).json()])
    for secret in (PERSONA_PROMPT, "family", "canary", "shadow", "fake", FT_MODEL, "gpt-next", "open-maid",
                   "demo-maid", "demo-secret", "secret-route", console.proxy.upstream_key,
                   console.admin_key, console.family_key, console.friend_key, "127.0.0.1"):
        assert secret not in everything, secret
    for path, options in (("/console/api/fidelity", {}), ("/console/api/probe", {"method": "POST"})):
        method = options.get("method", "GET")
        response = httpx.request(method, console.url + path, headers={"authorization": f"Bearer {console.friend_key}"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    tried = console.post("/console/api/try", console.friend_key, json={"route": "maid-demo", "messages": []})
    assert tried.status_code == 403
    for by in ("target", "client", "model"):
        refused = console.get("/console/api/usage", console.friend_key, by=by)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "by"


def test_usage_matches_the_records_for_every_grouping(console, tmp_path):
    console.traffic(tmp_path)
    db = sqlite3.connect(tmp_path / "persona-proxy-usage.sqlite3")
    for by, column in (("route", "route"), ("client", "client"), ("api", "api"), ("role", "role"),
                       ("user", "user_id"), ("kind", "kind")):
        data = console.get("/console/api/usage", console.admin_key, by=by, days="7").json()
        assert len(data["days"]) == 7 and data["to"] == data["days"][-1]
        got = {s["name"]: s["total"]["requests"] for s in data["series"]}
        want = {(k or "(none)"): n for k, n in db.execute(f"SELECT {column}, count(*) FROM usage GROUP BY 1")}
        if by == "user" and "(none)" in want:  # the top users by name, the rest (rows without one) as others
            want["(others)"] = want.pop("(none)")
        assert got == want, by
    targets = console.get("/console/api/usage", console.admin_key, by="target").json()
    assert {s["name"] for s in targets["series"]} == {r[0] for r in db.execute(
        "SELECT DISTINCT model || '@' || upstream FROM usage")}
    canary = next(s for s in targets["series"] if s["name"] == "gpt-next@canary")
    prompt, completion = db.execute(
        "SELECT sum(prompt_tokens), sum(completion_tokens) FROM usage WHERE upstream = 'canary'").fetchone()
    assert canary["total"]["cost_usd"] == round((prompt * 0.5 + completion * 2.0) / 1e6, 6) > 0
    assert "open-maid" in targets["unpriced_models"]


def test_live_fidelity_matches_the_succession_report(console, tmp_path):
    console.traffic(tmp_path)
    data = console.get("/console/api/fidelity", console.admin_key, days="7").json()
    (maid,) = data["routes"]
    store = SqliteStore(tmp_path / "persona-proxy-usage.sqlite3")
    usage, fidelity = read_rows(store, "maid", 0)
    training = [reply for _, reply in __import__("app.tuning.fewshot", fromlist=["x"]).exchanges(SAMPLE)]
    profile = Profile.of(training)
    expected = report("maid", "7d", usage, fidelity, profile, reference_scores(training, profile), {})
    want = {(t["target"], t["role"]): t["daily"] for t in expected["targets"]}
    got = {(t["target"], t["role"]): t["days"] for t in maid["targets"]}
    assert got == want and len(got) == 3 and maid["reference"] == 1.0


@pytest.mark.parametrize(("params", "param"), [
    ({"days": "0"}, "days"), ({"days": "3650"}, "days"), ({"days": "7d"}, "days"), ({"from": "2026-13-01"}, "from"),
    ({"from": "2016-01-01", "to": "2026-01-01"}, "from"), ({"from": "2026-12-01", "to": "2026-11-01"}, "from"),
    ({"by": "planet"}, "by"), ({"to": "yesterday"}, "to"),
])
def test_bad_ranges_and_groupings_are_one_line_400s(console, params, param):
    for path in ("/console/api/usage", "/console/api/fidelity"):
        if param == "by" and path.endswith("fidelity"):
            continue
        response = console.get(path, console.admin_key, **params)
        assert response.status_code == 400, (path, params, response.text)
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error" and "\n" not in error["message"]


def test_gets_change_nothing_and_posts_are_refused_as_gets(console):
    assert console.get("/console/api/probe", console.admin_key).status_code == 405
    assert console.get("/console/api/try", console.admin_key).status_code == 405
    for path in ENDPOINTS:
        assert console.post(path, console.admin_key).status_code == 405


def test_probe_finds_what_each_upstream_lists_and_one_that_is_down(console, canary_fake):
    before = console.get("/console/api/overview", console.admin_key).json()
    assert before["stale"] is True and before["routes"][0]["targets"][0]["reachable"] is None
    canary_fake.stop()
    routes = {r["name"]: r for r in console.post("/console/api/probe", console.admin_key).json()["routes"]}
    maid = {t["role"]: t for t in routes["maid"]["targets"]}
    assert maid["primary"]["reachable"] is True and maid["primary"]["model_exists"] is not None
    assert maid["canary"]["reachable"] is False and maid["canary"]["can_serve"] is False
    assert routes["maid-demo"]["targets"][0]["note"] == "built-in demo"
    assert console.get("/console/api/overview", console.admin_key).json()["stale"] is False


def test_try_it_streams_from_a_route_and_from_one_named_target(console, canary_fake):
    canary_fake.speak("Good morning from the canary")
    for target, expected in ((None, "主人"), ("gpt-next@canary", "canary")):
        with httpx.stream("POST", console.url + "/console/api/try", timeout=10,
                          headers={"authorization": f"Bearer {console.admin_key}"},
                          json={"route": "maid-demo" if target is None else "maid", "target": target,
                                "messages": [{"role": "user", "content": "早安"}]}) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            text = "".join(orjson.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                           for line in response.iter_lines() if line.startswith("data: {"))
        assert expected in text, text
    assert canary_fake.requests[-1].json["model"] == "gpt-next"
    for body, code in (({"route": "nope", "messages": [{"role": "user", "content": "x"}]}, 404),
                       ({"route": "maid", "target": "nope@x", "messages": [{"role": "user", "content": "x"}]}, 404),
                       ({"route": "maid", "messages": [{"role": "system", "content": "x"}]}, 400),
                       ({"route": "maid", "messages": "hi"}, 400)):
        response = console.post("/console/api/try", console.admin_key, json=body)
        assert response.status_code == code and "error" in response.json(), body
