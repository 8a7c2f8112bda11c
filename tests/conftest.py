"""Shared fixtures: a fake upstream and the proxy, both real servers on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from app import create_app
from app.config import load_config

from .fakes.redis import RedisServer, require_redis
from .fakes.servers import ServerThread
from .fakes.styles import AI_TALK, FT_MODEL, MAID, MAID_PROMPT, SIMPLIFIED, upstreams
from .fakes.upstream import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
# Small datasets the tests ship, and the reference persona's real training set
# (present only where ../shared sits beside the repository).
DATA = REPO / "tests" / "data"
SHARED_DATASET = REPO.parent / "shared" / "data" / "maid_finetune_output.jsonl"


DEFAULT_ROUTES = f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
display_name = "Maid (fine-tuned)"
system_prompt = "{MAID_PROMPT}"
params = {{ temperature = 0.8 }}
"""


@dataclass
class Proxy:
    """A running proxy and the secrets it was started with."""

    server: ServerThread
    client_key: str | None
    upstream_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def in_flight(self) -> int:
        """Upstream requests the proxy has not closed yet, over all upstreams."""
        app = self.server.server.config.app
        return sum(client.in_flight for client in app.state.chat.clients.values())

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.client_key}"} if self.client_key else {}

    def http(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=10, **kwargs)

    def async_http(self, **kwargs: object) -> httpx.AsyncClient:
        options: dict[str, object] = {"timeout": 10, **kwargs}
        return httpx.AsyncClient(base_url=self.url, headers=self.headers(), **options)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=self.client_key or "unused", max_retries=0, timeout=10)

    def async_openai(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.client_key or "unused",
                                  max_retries=0, timeout=10)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test runs may write into the user's real home or data folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))


@pytest.fixture(autouse=True)
def quick_background_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Usage batches and config-file checks every few ms, so tests wait for them briefly."""
    monkeypatch.setattr("app.ops.recorder.FLUSH_SECONDS", 0.02)
    monkeypatch.setattr("app.proxy.runtime.WATCH_SECONDS", 0.05)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def make_proxy(tmp_path: Path, fake: FakeOpenAI) -> Iterator[Callable[..., Proxy]]:
    started: list[ServerThread] = []

    def make(
        routes: str = DEFAULT_ROUTES,
        *,
        server: str = "",
        upstream: str = "",
        with_keys: bool = True,
        env: dict[str, str] | None = None,
        extra_upstreams: str = "",
        check_models: bool = False,
    ) -> Proxy:
        client_key = "pp-client-" + secrets.token_hex(16) if with_keys else None
        upstream_key = "up-canary-" + secrets.token_hex(16)
        text = (
            f'[server]\nhost = "127.0.0.1"\nport = 0\napi_keys_env = "TEST_PROXY_KEYS"\n'
            f"check_models = {str(check_models).lower()}\n{server}\n"
            f'[upstreams.fake]\nbase_url = "{fake.url}/v1"\napi_key_env = "TEST_UPSTREAM_KEY"\n{upstream}\n'
            f"{extra_upstreams}\n{routes}"
        )
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        environ = {"TEST_UPSTREAM_KEY": upstream_key, "PERSONA_PROXY_DATA_DIR": str(tmp_path), **(env or {})}
        if client_key:
            environ["TEST_PROXY_KEYS"] = client_key
        config = load_config(path, environ=environ)
        thread = ServerThread(create_app(config)).start()
        started.append(thread)
        return Proxy(thread, client_key, upstream_key)

    yield make
    for thread in started:
        thread.stop()


@pytest.fixture
def proxy(make_proxy: Callable[..., Proxy]) -> Proxy:
    return make_proxy()


@pytest.fixture
def canary_fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().speak(SIMPLIFIED).start()
    yield server
    server.stop()


@pytest.fixture
def shadow_fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().speak(AI_TALK).start()
    yield server
    server.stop()


@pytest.fixture
def succession_proxy(make_proxy: Callable[..., Proxy], fake: FakeOpenAI, canary_fake: FakeOpenAI,
                     shadow_fake: FakeOpenAI) -> Callable[..., Proxy]:
    """A proxy whose route has the given canary/shadow tables, with the three fakes as upstreams."""
    fake.speak(MAID)

    def make(routes: str, **options: object) -> Proxy:
        extra = upstreams(("canary", canary_fake), ("shadow", shadow_fake))
        return make_proxy(routes, extra_upstreams=extra + str(options.pop("extra_upstreams", "")), **options)

    return make


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test's own (skipped where none is installed, except in CI)."""
    server = RedisServer(require_redis(), tmp_path).start()
    yield server
    server.stop()
