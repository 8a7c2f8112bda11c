"""Writing a card: a V3 object, its V2 twin, and the PNG or JSON that carries them.

SillyTavern writes a ``chara`` chunk (V2) and a ``ccv3`` chunk whose JSON is
the same object with only the spec label and version changed; readers
prefer ``ccv3`` and older ones still find ``chara``. We write them the same
way, so every app that reads cards reads ours.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from . import png
from .errors import CardError

V3_DEFAULTS: dict[str, Any] = {
    "name": "", "description": "", "personality": "", "scenario": "", "first_mes": "", "mes_example": "",
    "creator_notes": "", "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [],
    "tags": [], "creator": "", "character_version": "", "extensions": {}, "group_only_greetings": [],
}


def card_object(base: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A V3 card: ``base``'s data (everything it held, unknown fields too), then ``fields`` over it."""
    data: dict[str, Any] = {**V3_DEFAULTS, **(base or {})}
    data.update({key: value for key, value in fields.items() if value is not None})
    data["extensions"] = dict(data.get("extensions") or {})
    now = int(time.time())
    data.setdefault("creation_date", now)
    data["modification_date"] = now
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def v2_twin(card: Mapping[str, Any]) -> dict[str, Any]:
    return {**card, "spec": "chara_card_v2", "spec_version": "2.0"}


def to_png(card: Mapping[str, Any], image: bytes) -> bytes:
    """``image`` (a PNG, kept as it is) with the card in a ``chara`` and a ``ccv3`` chunk."""
    try:
        return png.with_text(image, [("chara", _encoded(v2_twin(card))), ("ccv3", _encoded(card))])
    except CardError as exc:
        raise CardError(f"the image cannot carry a card: {exc}") from None


def to_json(card: Mapping[str, Any]) -> bytes:
    return json.dumps(card, ensure_ascii=False, indent=2).encode() + b"\n"


def _encoded(card: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode()).decode("ascii")
