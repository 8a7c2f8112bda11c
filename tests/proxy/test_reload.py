"""Hot reload (SIGHUP and file watch) under an open stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from ..conftest import FT_MODEL
from ..fakes.servers import serve_process
from ..fakes.upstream import FakeOpenAI, Gate, Reply, chunk

CHAT = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}


def no_keys() -> dict[str, str]:
    # Read when the test runs: the autouse fixture has pointed HOME at a temp dir by then,
    # so the server's usage records stay out of the real data folder.
    return {**os.environ, "PERSONA_PROXY_API_KEYS": ""}


def write_config(path: Path, upstream_url: str, prompt: str, extra: str = "") -> None:
    # No port: serve_process passes --port.
    path.write_text(f"""
[server]
check_models = false

[upstreams.fake]
base_url = "{upstream_url}/v1"

[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{prompt}"
{extra}
""", encoding="utf-8")


MAID_2 = '\n[routes.maid-2]\nupstream = "fake"\nmodel = "m2"\n'


def held_stream(config: Path, fake: FakeOpenAI, timeout: float) -> Gate:
    """The config with one route, and a stream queued on the fake that stops after its first event."""
    write_config(config, fake.url, "first persona")
    gate = Gate(timeout=timeout)
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "a", role="assistant"), gate, chunk(FT_MODEL, "b"),
                               b"data: [DONE]\n\n"]))
    return gate


@contextlib.asynccontextmanager
async def reloaded_under_stream(http: httpx.AsyncClient, proc: subprocess.Popen[str], config: Path,
                                upstream_url: str) -> AsyncIterator[AsyncIterator[str]]:
    """Opens the held stream, reads its first event, adds route maid-2 and sends SIGHUP; yields the rest."""
    async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        lines = resp.aiter_lines()
        async for line in lines:
            if line.startswith("data: "):
                break
        write_config(config, upstream_url, "second persona", MAID_2)
        proc.send_signal(signal.SIGHUP)  # to the parent only, when there are workers
        yield lines


def test_sighup_reloads_a_good_config_rejects_a_bad_one_and_never_cuts_a_stream(tmp_path, fake):
    config = tmp_path / "config.toml"
    gate = held_stream(config, fake, timeout=15)
    with serve_process(["--config", str(config)], env=no_keys()) as (proc, base):
        try:

            async def scenario() -> tuple[str, list[str], int]:
                async with httpx.AsyncClient(base_url=base, timeout=20) as http, \
                        reloaded_under_stream(http, proc, config, fake.url) as lines:
                    ids = await _models_after_reload(http)
                    await http.post("/v1/chat/completions", json=CHAT)
                    config.write_text("[routes.broken\n", encoding="utf-8")
                    proc.send_signal(signal.SIGHUP)
                    await asyncio.sleep(0.5)
                    after_bad = (await http.post("/v1/chat/completions", json=CHAT)).status_code
                    gate.open()
                    rest = "\n".join([line async for line in lines])
                return rest, ids, after_bad

            rest, ids, after_bad = asyncio.run(scenario())
        finally:
            gate.open()
    output = proc.output
    assert ids == ["maid", "maid-2"]
    assert '"b"' in rest and rest.rstrip().endswith("data: [DONE]")  # the open stream finished
    prompts = [r.json["messages"][0]["content"] for r in fake.chat_requests]
    assert prompts == ["first persona", "second persona", "second persona"]
    assert after_bad == 200
    assert "config reloaded" in output and "config reload rejected" in output, output


def test_reload_on_change_picks_up_an_edited_file(make_proxy, fake, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    proxy = make_proxy(server="reload_on_change = true")
    # A reload reads the environment again, as a restart would.
    monkeypatch.setenv("TEST_PROXY_KEYS", proxy.client_key)
    monkeypatch.setenv("TEST_UPSTREAM_KEY", proxy.upstream_key)
    config = tmp_path / "config.toml"
    original = config.read_text(encoding="utf-8")
    time.sleep(0.05)
    config.write_text(original + MAID_2, encoding="utf-8")
    with proxy.http() as http:
        deadline = time.monotonic() + 8
        ids: list[str] = []
        while time.monotonic() < deadline and "maid-2" not in ids:
            ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
            time.sleep(0.2)
        assert ids == ["maid", "maid-2"]
        config.write_text("[routes.broken\n", encoding="utf-8")
        deadline = time.monotonic() + 8
        while "config reload rejected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "config reload rejected" in caplog.text
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["maid", "maid-2"]
        assert http.post("/v1/chat/completions", json={**CHAT, "model": "maid-2"}).status_code == 200


async def _models_after_reload(http: httpx.AsyncClient) -> list[str]:
    for _ in range(100):
        ids = [m["id"] for m in (await http.get("/v1/models")).json()["data"]]
        if len(ids) > 1:
            return ids
        await asyncio.sleep(0.05)
    return ids


def test_sighup_to_the_parent_reloads_every_worker_in_place(tmp_path, fake):
    config = tmp_path / "config.toml"
    gate = held_stream(config, fake, timeout=20)
    with serve_process(["--config", str(config), "--workers", "2"], env=no_keys()) as (proc, base):
        try:

            async def scenario() -> tuple[str, list[list[str]]]:
                async with httpx.AsyncClient(base_url=base, timeout=20) as http, \
                        reloaded_under_stream(http, proc, config, fake.url) as lines:
                    # New connections each time, so both workers answer; until 12 in a row show the new route.
                    seen: list[list[str]] = []
                    deadline = time.monotonic() + 15
                    while (len(seen) < 12 or any(ids != ["maid", "maid-2"] for ids in seen[-12:])) \
                            and time.monotonic() < deadline:
                        async with httpx.AsyncClient(base_url=base, timeout=5) as fresh:
                            seen.append([m["id"] for m in (await fresh.get("/v1/models")).json()["data"]])
                        await asyncio.sleep(0.05)
                    seen = seen[-12:]
                    gate.open()
                    rest = "\n".join([line async for line in lines])
                return rest, seen

            rest, seen = asyncio.run(scenario())
        finally:
            gate.open()
    output = proc.output
    assert all(ids == ["maid", "maid-2"] for ids in seen), seen
    assert '"b"' in rest and rest.rstrip().endswith("data: [DONE]")  # the open stream was not cut
    # Each worker logs one "config reloaded"; under heavy load uvicorn may replace an unresponsive worker (which
    # then starts on the new file without that line), so at least one, and never uvicorn's own restart.
    assert output.count("config reloaded") >= 1, output
    assert "restarting processes" not in output  # uvicorn's own SIGHUP answer replaces the workers
