"""Fakes that answer in recognisable styles, as primary, canary and shadow of one route."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ...conftest import FT_MODEL, MAID_PROMPT, REPO, Proxy
from ...fakes.upstream import FakeOpenAI

SAMPLE = REPO / "examples" / "maid_sample.jsonl"
# Each style is told apart by the live measures: script, markers, breaks of character.
MAID = "主人早安！莉莉已經為您泡好紅茶了喔～❤️"
SIMPLIFIED = "主人早上好！我已经为您准备好红茶了。"
ENGLISH = "Good morning, master! Your tea is ready."
AI_TALK = "作為一個AI語言模型，我沒有辦法真的泡茶。"


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


def upstreams(*fakes: tuple[str, FakeOpenAI]) -> str:
    return "".join(f'[upstreams.{name}]\nbase_url = "{fake.url}/v1"\n' for name, fake in fakes)


def route(*, canary: str = "", shadow: str = "", extra: str = "") -> str:
    """The maid route with the given canary and shadow tables (TOML)."""
    return f"""
[routes.maid]
upstream = "fake"
model = "{FT_MODEL}"
system_prompt = "{MAID_PROMPT}"
{extra}
{canary}
{shadow}
"""


@pytest.fixture
def succession_proxy(make_proxy: Callable[..., Proxy], fake: FakeOpenAI, canary_fake: FakeOpenAI,
                     shadow_fake: FakeOpenAI) -> Callable[..., Proxy]:
    """A proxy whose route has the given canary/shadow tables, with the three fakes as upstreams."""
    fake.speak(MAID)

    def make(routes: str, **options: object) -> Proxy:
        extra = upstreams(("canary", canary_fake), ("shadow", shadow_fake))
        return make_proxy(routes, extra_upstreams=extra + str(options.pop("extra_upstreams", "")), **options)

    return make


def table_rows(path: Path, table: str, expected: int, timeout: float = 5.0, where: str = "") -> list[dict]:
    """Rows of ``table`` once there are ``expected`` of them (the recorder writes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict] = []
        if path.exists():
            with sqlite3.connect(path) as db, contextlib.suppress(sqlite3.OperationalError):
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute(f"SELECT * FROM {table} {where} ORDER BY time")]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
