"""Cards the tests write: a V2 maid with a lorebook, in every container."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from app.cards.png import avatar, chunk, with_text

LILY: dict[str, Any] = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {
        "name": "Lily", "description": "{{char}} is a maid who serves {{user}}.", "personality": "cheerful",
        "scenario": "a tea room", "first_mes": "Welcome home, {{user}}!",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello, master!\n<START>\n<USER>: Tea?\n<bot>: Right away!\n"
                       "With sugar?",
        "system_prompt": "{{original}}\nStay in character.", "post_history_instructions": "Reply as {{char}}.",
        "creator_notes": "by hand", "tags": ["maid"], "creator": "someone", "character_version": "1",
        "alternate_greetings": [], "extensions": {"talkativeness": "0.5", "fav": True},
        "x_unknown": {"kept": 1},
        "character_book": {"name": "Lily's facts", "scan_depth": 2, "token_budget": 500, "entries": [
            {"keys": ["tea"], "content": "Lily brews oolong.", "insertion_order": 1, "name": "tea", "enabled": True},
            {"keys": ["/sugar|honey/i"], "use_regex": True, "content": "@@depth 1\n@@role user\nLily hates sugar.",
             "insertion_order": 2, "name": "sugar", "enabled": True},
            {"keys": [], "constant": True, "content": "Lily lives in Taipei.", "position": "after_char",
             "insertion_order": 0, "name": "home", "enabled": True},
        ]},
    },
}


def card_json(card: dict[str, Any] | None = None) -> bytes:
    return json.dumps(card or LILY, ensure_ascii=False).encode()


def card_png(card: dict[str, Any] | None = None, keyword: str = "chara") -> bytes:
    encoded = base64.b64encode(card_json(card)).decode()
    return with_text(avatar(40, 60), [(keyword, encoded)])


def card_charx(card: dict[str, Any] | None = None, name: str = "card.json") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, card_json(card))
        archive.writestr("assets/icon/images/main.png", avatar(10, 10))
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def raw_text_chunk(keyword: str, text: bytes) -> bytes:
    return chunk(b"tEXt", keyword.encode() + b"\x00" + text)
