"""Recognisable reply styles for a route's primary, canary and shadow, and helpers to read what they left."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from .upstream import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent.parent
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
MAID_PROMPT = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"

SAMPLE = REPO / "examples" / "maid_sample.jsonl"
# Each style is told apart by the live measures: script, markers, breaks of character.
MAID = "主人早安！莉莉已經為您泡好紅茶了喔～❤️"
SIMPLIFIED = "主人早上好！我已经为您准备好红茶了。"
ENGLISH = "Good morning, master! Your tea is ready."
AI_TALK = "作為一個AI語言模型，我沒有辦法真的泡茶。"


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
