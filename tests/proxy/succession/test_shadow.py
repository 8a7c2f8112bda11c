"""Shadow targets on real servers: the client never waits for, depends on or sees them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import httpx

from ...conftest import FT_MODEL, MAID_PROMPT
from ...fakes.servers import serve_process
from ...fakes.styles import MAID, route, table_rows, upstreams
from ...fakes.upstream import Gate, Pause, Reply, chunk, default_stream, error_reply

SHADOW = """
[[routes.maid.shadow]]
upstream = "shadow"
model = "open-maid"
sample = {sample}
max_in_flight = {cap}
few_shot_count = 2
params = {{ temperature = 0.2 }}
"""
BODY = {"model": "maid", "messages": [{"role": "user", "content": "早安"}]}


def shadow(sample: float = 1.0, cap: int = 4) -> str:
    return SHADOW.format(sample=sample, cap=cap)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_shadow_gets_the_request_as_its_target_would_serve_it_and_the_client_sees_none_of_it(
        succession_proxy, fake, shadow_fake, tmp_path):
    proxy = succession_proxy(route(shadow=shadow()))
    with proxy.http() as http:
        plain = http.post("/v1/chat/completions", json=BODY, headers={"x-openwebui-chat-id": "c-1"})
        streamed = http.post("/v1/chat/completions", json={**BODY, "stream": True})
        responses = http.post("/v1/responses", json={"model": "maid", "input": "早安"})
    assert plain.status_code == streamed.status_code == responses.status_code == 200
    assert plain.json()["choices"][0]["message"]["content"] == MAID
    assert plain.headers["x-persona-target"] == f"fake/{FT_MODEL}"
    assert "open-maid" not in plain.text + streamed.text + responses.text
    wait_for(lambda: len(shadow_fake.requests) == 3)
    sent = shadow_fake.chat_requests[0].json
    assert sent["model"] == "open-maid" and sent["temperature"] == 0.2
    assert sent["messages"][0] == {"role": "system", "content": MAID_PROMPT}
    assert shadow_fake.chat_requests[1].json["stream"] is True
    assert shadow_fake.responses_requests[0].json["instructions"] == MAID_PROMPT
    rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 6)
    shadows = [r for r in rows if r["kind"] == "shadow"]
    assert len(shadows) == 3 and {r["role"] for r in shadows} == {"shadow"}
    assert {(r["upstream"], r["model"], r["status"]) for r in shadows} == {("shadow", "open-maid", 200)}
    assert {r["api"] for r in shadows} == {"chat", "responses"}
    assert all(r["prompt_tokens"] for r in shadows)  # a shadow's cost is counted
    served = [r for r in rows if r["kind"] == "chat"]
    assert len(served) == 3 and served[0]["conversation"] == next(
        r["conversation"] for r in shadows if r["stream"] == 0 and r["api"] == "chat")


def test_a_slow_shadow_adds_nothing_to_the_clients_latency(succession_proxy, shadow_fake):
    proxy = succession_proxy(route(shadow=shadow(cap=64)))
    for _ in range(10):
        shadow_fake.enqueue(Reply(chunks=[Pause(2.0), b"{}"], content_type="application/json"))
    with proxy.http() as http:
        times = []
        for _ in range(10):
            started = time.monotonic()
            assert http.post("/v1/chat/completions", json=BODY).status_code == 200
            times.append(time.monotonic() - started)
    assert max(times) < 1.0, times  # the shadow takes 2 s each time
    assert statistics.median(times) < 0.2


def test_shadow_errors_resets_and_stalls_change_nothing_for_the_client(succession_proxy, shadow_fake, fake):
    proxy = succession_proxy(route(shadow=shadow(cap=16)))
    stall = Gate(timeout=30)
    shadow_fake.enqueue(error_reply(500, "boom", type_="server_error"),
                        Reply(chunks=[chunk("open-maid", "半"), stall]),
                        Reply(status=200, body=b"<html>not json</html>", content_type="text/html"))
    with proxy.http() as http:
        answers = [http.post("/v1/chat/completions", json=BODY),
                   http.post("/v1/chat/completions", json={**BODY, "stream": True}),
                   http.post("/v1/chat/completions", json=BODY)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[1].text.rstrip().endswith("data: [DONE]") and "error" not in answers[1].text
    assert answers[0].json()["choices"][0]["message"]["content"] == MAID
    stall.open()


@contextlib.contextmanager
def resetting_server() -> Iterator[int]:
    """A port that accepts connections and resets them as soon as a request arrives."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_shadow_that_resets_the_connection_is_recorded_and_the_client_served(make_proxy, fake, tmp_path):
    fake.speak(MAID)
    with resetting_server() as port:
        proxy = make_proxy(route(shadow=SHADOW.format(sample=1.0, cap=2)),
                           extra_upstreams=f'[upstreams.shadow]\nbase_url = "http://127.0.0.1:{port}/v1"\n')
        with proxy.http() as http:
            reply = http.post("/v1/chat/completions", json=BODY)
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == MAID
        rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 2)
    failed = [r for r in rows if r["kind"] == "shadow"]
    assert len(failed) == 1 and failed[0]["status"] >= 500 and failed[0]["error_code"]


def test_a_full_shadow_skips_requests_and_counts_them(succession_proxy, shadow_fake):
    admin = "admin-" + os.urandom(8).hex()
    proxy = succession_proxy(route(shadow=shadow(cap=1)), env={"PERSONA_PROXY_ADMIN_KEYS": admin})
    gate = Gate(timeout=30)
    shadow_fake.enqueue(Reply(hold=gate))
    with proxy.http() as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=BODY).status_code == 200
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {admin}"}).text
    gate.open()
    assert len(shadow_fake.chat_requests) == 1
    assert 'persona_proxy_shadow_skipped_total{route="maid",target="open-maid@shadow"} 2.0' in metrics


def test_the_shadows_own_pool_never_takes_the_clients_connections(make_proxy, fake, tmp_path):
    # The shadow on the client's own upstream, held open: the client's pool of one stays free.
    fake.speak(MAID)
    gate = Gate(timeout=30)
    proxy = make_proxy(route(shadow=SHADOW.replace('upstream = "shadow"', 'upstream = "fake"').format(
        sample=1.0, cap=1)), upstream="max_connections = 1\npool_timeout = 0.2")
    fake.enqueue_for("open-maid", Reply(hold=gate))
    with proxy.http() as http:
        answers = [http.post("/v1/chat/completions", json=BODY).status_code for _ in range(3)]
    gate.open()
    assert answers == [200, 200, 200]


def test_tasks_are_never_shadowed(succession_proxy, shadow_fake):
    proxy = succession_proxy(route(shadow=shadow()))
    task = {"model": "maid", "messages": [{"role": "user", "content": "### Task:\nGenerate 1-3 broad tags."}]}
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=task).status_code == 200
        assert http.post("/v1/chat/completions", json=BODY,
                         headers={"x-openwebui-task": "title_generation"}).status_code == 200
    time.sleep(0.3)
    assert shadow_fake.requests == []


def test_the_sample_is_a_share_of_requests(succession_proxy, shadow_fake):
    proxy = succession_proxy(route(shadow=shadow(sample=0.0)))
    with proxy.http() as http:
        for _ in range(5):
            http.post("/v1/chat/completions", json=BODY)
    time.sleep(0.2)
    assert shadow_fake.requests == []


def test_shutdown_cancels_shadows_in_flight_and_does_not_wait_for_them(tmp_path, fake, shadow_fake):
    fake.speak(MAID)
    gate = Gate(timeout=60)
    shadow_fake.enqueue(Reply(chunks=[chunk("open-maid", "半"), gate]))
    config = tmp_path / "config.toml"
    config.write_text("[server]\nshutdown_grace = 5\ncheck_models = false\n"
                      + upstreams(("fake", fake), ("shadow", shadow_fake)) + route(shadow=shadow()),
                      encoding="utf-8")
    env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(tmp_path)}
    with serve_process(["--config", str(config)], env=env) as (proc, base):
        reply = httpx.post(base + "/v1/chat/completions", json={**BODY, "stream": True}, timeout=10)
        assert reply.status_code == 200 and "[DONE]" in reply.text
        wait_for(lambda: len(shadow_fake.requests) == 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - started
    gate.open()
    assert "Traceback" not in proc.output  # type: ignore[attr-defined]
    assert took < 3.0, took  # no client was in flight: nothing to wait for, shadows are not clients
    wait_for(lambda: len(shadow_fake.disconnects) == 1)
    rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 2)
    assert [r["error_code"] for r in rows if r["kind"] == "shadow"] == ["shutting_down"]


def test_the_shadow_stream_is_read_to_the_end_for_its_usage(succession_proxy, shadow_fake, tmp_path):
    proxy = succession_proxy(route(shadow=shadow()))
    with proxy.http() as http:
        http.post("/v1/chat/completions", json={**BODY, "stream": True})
    rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 2)
    row = next(r for r in rows if r["kind"] == "shadow")
    assert row["stream"] == 1 and row["prompt_tokens"] == 5 and row["ttfb_ms"] is not None
    assert shadow_fake.chat_requests[0].json["stream_options"] == {"include_usage": True}
    asyncio.run(asyncio.sleep(0))  # nothing left running in this thread
    assert default_stream  # the fake's shapes are the ones the proxy relays elsewhere


def test_a_failing_shadow_is_counted_as_a_shadow_request_never_as_a_route_error(succession_proxy, shadow_fake):
    admin = "admin-" + os.urandom(8).hex()
    proxy = succession_proxy(route(shadow=shadow()), env={"PERSONA_PROXY_ADMIN_KEYS": admin})
    shadow_fake.enqueue(error_reply(500, "boom", type_="server_error"))
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=BODY).status_code == 200
        wait_for(lambda: len(shadow_fake.requests) == 1)
        time.sleep(0.2)  # the shadow's record reaches the recorder after its answer
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {admin}"}).text
    counted = 'persona_proxy_requests_total{api="chat",client="",kind="shadow",route="maid",status="500",stream="no"}'
    assert counted + " 1.0" in metrics
    assert "persona_proxy_errors_total{" not in metrics


def test_the_offline_demo_can_be_its_own_shadow(tmp_path):
    from app.config import load_config
    from app.proxy.server import create_app

    from ...fakes.servers import ServerThread

    path = tmp_path / "config.toml"
    path.write_text('[server]\ncheck_models = false\n[upstreams.demo]\nkind = "demo"\n[routes.maid]\n'
                    'upstream = "demo"\nmodel = "maid-demo"\n[[routes.maid.shadow]]\nupstream = "demo"\n'
                    'model = "maid-demo-2"\n', encoding="utf-8")
    config = load_config(path, environ={"PERSONA_PROXY_DATA_DIR": str(tmp_path)})
    with ServerThread(create_app(config)) as server:
        assert httpx.post(server.url + "/v1/chat/completions", json=BODY, timeout=10).status_code == 200
        rows = table_rows(tmp_path / "persona-proxy-usage.sqlite3", "usage", 2)
    assert sorted((r["kind"], r["status"]) for r in rows) == [("chat", 200), ("shadow", 200)]


def test_a_responses_request_continuing_a_stored_response_is_not_shadowed(succession_proxy, shadow_fake):
    proxy = succession_proxy(route(shadow=shadow()))
    with proxy.http() as http:
        assert http.post("/v1/responses", json={"model": "maid", "input": "再來",
                                                "previous_response_id": "resp_1"}).status_code == 200
        assert http.post("/v1/responses", json={"model": "maid", "input": "早安"}).status_code == 200
    wait_for(lambda: len(shadow_fake.requests) == 1)
    time.sleep(0.2)
    assert [r.json.get("previous_response_id") for r in shadow_fake.requests] == [None]


def test_a_shadow_past_its_shutdown_date_is_not_asked(succession_proxy, shadow_fake):
    proxy = succession_proxy(route(shadow=shadow() + "shutdown_date = 2026-01-01\n"))
    with proxy.http() as http:
        assert http.post("/v1/chat/completions", json=BODY).status_code == 200
    time.sleep(0.2)
    assert shadow_fake.requests == []
