"""The console as ``serve`` runs it: PostgreSQL as the store, two workers, a config without admin keys."""

from __future__ import annotations

import os
import time

import httpx

from ..fakes.postgres import postgres_schema
from ..fakes.servers import serve_process
from ..fakes.styles import table_rows
from .conftest import ROUTES


def test_usage_and_fidelity_from_postgresql_match_its_rows(succession_proxy, tmp_path):
    url = postgres_schema("console_test")
    keys = {"TEST_ADMIN_KEYS": "pp-admin-0123456789abcdef", "FRIEND_KEYS": "pp-friend-0123456789abcdef",
            "FAMILY_KEYS": "pp-family-0123456789abcdef", "TEST_USAGE_DB_URL": url}
    stores = '[upstreams.demo]\nkind = "demo"\n[usage]\nurl_env = "TEST_USAGE_DB_URL"\n'
    proxy = succession_proxy(ROUTES, server='admin_keys_env = "TEST_ADMIN_KEYS"', extra_upstreams=stores, env=keys)
    for i in range(6):
        response = httpx.post(proxy.url + "/v1/chat/completions", timeout=10, json={
            "model": "maid", "messages": [{"role": "user", "content": "早安"}]}, headers={
            "authorization": f"Bearer {keys['FRIEND_KEYS']}", "x-openwebui-chat-id": f"c{i}",
            "x-openwebui-user-id": f"u{i % 2}"})
        assert response.status_code == 200
    import psycopg

    admin = {"authorization": f"Bearer {keys['TEST_ADMIN_KEYS']}"}
    with psycopg.connect(url) as db:
        for _ in range(100):
            if db.execute("SELECT count(*) FROM fidelity").fetchone()[0] >= 12:
                break
            time.sleep(0.05)
        by_role = dict(db.execute("SELECT role, count(*) FROM usage GROUP BY 1").fetchall())
        by_user = dict(db.execute("SELECT user_id, count(*) FROM usage GROUP BY 1").fetchall())
    for by, want in (("role", by_role), ("user", by_user)):
        data = httpx.get(proxy.url + "/console/api/usage", params={"by": by}, headers=admin).json()
        assert {s["name"]: s["total"]["requests"] for s in data["series"]} == want
    fidelity = httpx.get(proxy.url + "/console/api/fidelity", headers=admin).json()
    replies = sum(d["replies"] for t in fidelity["routes"][0]["targets"] for d in t["days"])
    assert replies == 12  # six served, six shadowed, each measured
    friend = {"authorization": f"Bearer {keys['FRIEND_KEYS']}"}
    own = httpx.get(proxy.url + "/console/api/usage", params={"by": "user"}, headers=friend).json()
    assert sum(s["total"]["requests"] for s in own["series"]) == 6  # the shadows are the operator's


def test_two_workers_serve_the_console_from_one_store(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[server]\nadmin_keys_env = "TEST_ADMIN_KEYS"\n[upstreams.demo]\nkind = "demo"\n'
                      '[routes.maid-demo]\nupstream = "demo"\nmodel = "demo-maid"\n', encoding="utf-8")
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "TEST_ADMIN_KEYS": "pp-admin-0123456789abcdef",
           "PERSONA_PROXY_API_KEYS": "pp-client-0123456789abcdef"}
    admin = {"authorization": "Bearer pp-admin-0123456789abcdef"}
    with serve_process(["--config", str(config), "--workers", "2"], env=env) as (_, base):
        for _ in range(10):
            httpx.post(base + "/v1/chat/completions", headers={"authorization": "Bearer pp-client-0123456789abcdef"},
                       json={"model": "maid-demo", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 10)
        # New connections each, so both workers answer some of them; each reads the one store.
        totals = {httpx.get(base + "/console/api/usage", headers=admin).json()["series"][0]["total"]["requests"]
                  for _ in range(8)}
        assert totals == {10}
        page = httpx.get(base + "/console")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]


def test_without_admin_keys_the_console_says_what_to_set(tmp_path):
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "PERSONA_PROXY_API_KEYS": "",
           "PERSONA_PROXY_ADMIN_KEYS": ""}
    with serve_process([], env=env) as (_, base):  # the built-in config, as the README's first command runs it
        assert httpx.get(base + "/console").status_code == 200
        refused = httpx.get(base + "/console/api/overview", headers={"authorization": "Bearer some-key"})
        assert refused.status_code == 401
        message = refused.json()["error"]["message"]
        assert "PERSONA_PROXY_ADMIN_KEYS" in message and "some-key" not in message


def test_a_key_without_a_client_name_sees_its_own_key_only(console, tmp_path):
    console.traffic(tmp_path)
    with httpx.Client(base_url=console.url, headers=console.proxy.headers(), timeout=10) as http:
        http.post("/v1/chat/completions", json={"model": "maid-demo", "messages": [{"role": "user", "content": "x"}]})
        data = http.get("/console/api/overview").json()
        assert data["viewer"]["role"] == "client" and data["viewer"]["client"] is None
        assert data["viewer"]["key_id"].startswith("key-") and data["clients"] == []
        assert "secret-route" in [r["name"] for r in data["routes"]]  # an unnamed key reaches every route
        table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 1, where="WHERE route = 'maid-demo'")
        usage = http.get("/console/api/usage").json()
        assert [(s["name"], s["total"]["requests"]) for s in usage["series"]] == [("maid-demo", 1)]
        assert http.get("/console/api/usage", params={"by": "user"}).status_code == 400


def test_an_older_postgresql_store_is_charted_before_any_new_request(make_proxy, tmp_path):
    from app.ops.usage import Completed, PostgresStore

    from ..ops.test_rollups import behind_its_back

    url = postgres_schema("console_upgrade_test")
    store = PostgresStore(url)
    now = time.time()
    store.write([Completed(now - day * 86_400, "maid", "fake", "m", "chat", False, 200, None, "key-1", None, 10, 5,
                           None, 100.0, False) for day in range(5)])
    store.reset()
    behind_its_back(store, "DROP TABLE usage_daily", "DROP TABLE usage_daily_users", "DROP TABLE usage_monthly_users",
                    "DELETE FROM usage_rollups")  # as a version without the rollups left it
    proxy = make_proxy(server='admin_keys_env = "TEST_ADMIN_KEYS"', extra_upstreams='[usage]\nurl_env = "TEST_DB"\n',
                       env={"TEST_DB": url, "TEST_ADMIN_KEYS": "pp-admin-0123456789abcdef"})
    admin = {"authorization": "Bearer pp-admin-0123456789abcdef"}
    for _ in range(100):  # the recorder opens the store at start, on its own thread
        data = httpx.get(proxy.url + "/console/api/usage", params={"days": "7"}, headers=admin).json()
        if data["series"]:
            break
        time.sleep(0.05)
    assert data["series"][0]["requests"][-5:] == [1, 1, 1, 1, 1]


def test_a_reload_shows_in_the_console_without_a_restart(tmp_path):
    import signal

    config = tmp_path / "config.toml"
    base_text = '[server]\nadmin_keys_env = "TEST_ADMIN_KEYS"\n[upstreams.demo]\nkind = "demo"\n' \
                '[routes.maid-demo]\nupstream = "demo"\nmodel = "demo-maid"\n'
    config.write_text(base_text, encoding="utf-8")
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path), "TEST_ADMIN_KEYS": "pp-admin-0123456789abcdef",
           "PERSONA_PROXY_API_KEYS": ""}
    admin = {"authorization": "Bearer pp-admin-0123456789abcdef"}
    with serve_process(["--config", str(config)], env=env) as (proc, base):
        names = [r["name"] for r in httpx.get(base + "/console/api/overview", headers=admin).json()["routes"]]
        assert names == ["maid-demo"]
        config.write_text(base_text + '[routes.lily]\nupstream = "demo"\nmodel = "demo-lily"\n'
                          'shutdown_date = "2027-01-14"\n', encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            routes = {r["name"]: r for r in httpx.get(base + "/console/api/overview", headers=admin).json()["routes"]}
            if "lily" in routes:
                break
            time.sleep(0.05)
        assert routes["lily"]["next_shutdown"] == "2027-01-14"
