"""Reading a character card: a PNG with a ``ccv3``/``chara`` chunk, a JSON card (V1, V2, V3) or a CHARX zip.

The card's ``data`` object is kept whole (unknown fields and ``extensions``
included) so an export writes back everything it held; only the fields the
proxy uses are checked, each with a message that names it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import png
from .book import Book, read_book
from .errors import CardError

# A card with its art is a few MB; the card's own JSON is text, rarely more than a few hundred KB.
MAX_FILE_BYTES = 32 << 20
MAX_JSON_BYTES = 4 << 20
TEXT_FIELDS = ("name", "nickname", "description", "personality", "scenario", "first_mes", "mes_example",
               "system_prompt", "post_history_instructions", "creator_notes")
V1_FIELDS = ("description", "personality", "scenario", "first_mes", "mes_example")


@dataclass(frozen=True, slots=True)
class Card:
    spec: str  # chara_card_v3, chara_card_v2 or chara_card_v1
    data: dict[str, Any]
    book: Book | None
    warnings: tuple[str, ...] = ()

    def text(self, name: str) -> str:
        value = self.data.get(name)
        return value if isinstance(value, str) else ""

    @property
    def name(self) -> str:
        """Who ``{{char}}`` is: the V3 ``nickname`` when set, else the name."""
        return self.text("nickname").strip() or self.text("name").strip()


def read_card(path: Path) -> Card:
    """The card in ``path``, whatever its container; :class:`CardError` says what is wrong."""
    raw = _read_file(path)
    if raw.startswith(png.SIGNATURE):
        return parse_card(_json(_png_card(raw), "its card chunk"))
    if raw.startswith(b"PK\x03\x04"):
        return parse_card(_json(_charx_card(raw), "card.json"))
    if not raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise CardError("it is not a character card: neither a PNG, a CHARX (zip) nor a JSON object")
    return parse_card(_json(raw, "the file"))


def read_lorebook(path: Path) -> Book:
    """A standalone lorebook: ``{"spec": "lorebook_v3", "data": {...}}``, a bare book, or a card's book."""
    obj = _json(_read_file(path), "the file")
    if not isinstance(obj, dict):
        raise CardError("a lorebook is a JSON object")
    if obj.get("spec") == "lorebook_v3":
        return read_book(obj.get("data"), "data")
    if isinstance(obj.get("spec"), str) and obj["spec"].startswith("chara_card"):
        book = parse_card(obj).book
        if book is None:
            raise CardError("this card has no character_book to use as a lorebook")
        return book
    if obj.get("spec") is not None:
        raise CardError(f"unknown lorebook spec {obj['spec']!r}; expected lorebook_v3 or a bare book")
    if "entries" not in obj:
        raise CardError("a lorebook needs entries (a lorebook_v3 file or a book with an entries list)")
    return read_book(obj, "book")


def parse_card(obj: Any) -> Card:
    """A card from its JSON object, its spec and version checked."""
    if not isinstance(obj, dict):
        raise CardError("a card is a JSON object")
    spec, data = _spec(obj)
    for name in TEXT_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise CardError(f"data.{name} is not a string")
    if not str(data.get("name") or "").strip():
        raise CardError("the card has no name")
    book = read_book(data["character_book"], "data.character_book") if data.get("character_book") else None
    return Card(spec, data, book, book.warnings if book else ())


def _spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    spec = obj.get("spec")
    if spec is None:
        if "name" in obj and any(field in obj for field in V1_FIELDS):
            return "chara_card_v1", obj
        raise CardError("not a character card (no spec, and not a V1 card with a name and a description)")
    if spec not in ("chara_card_v2", "chara_card_v3"):
        raise CardError(f"unknown card spec {spec!r}; expected chara_card_v2 or chara_card_v3")
    major = 3 if spec == "chara_card_v3" else 2
    try:
        version = float(obj.get("spec_version", major))
    except (TypeError, ValueError):
        version = -1.0
    if not major <= version < major + 1:
        raise CardError(f"unknown {spec} version {obj.get('spec_version')!r}; expected {major}.0")
    data = obj.get("data")
    if not isinstance(data, dict):
        raise CardError(f"{spec} needs a data object")
    return spec, data


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CardError(f"it is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES >> 20} MiB limit for a card")
        return path.read_bytes()
    except OSError as exc:
        raise CardError(f"it cannot be read ({exc.strerror})") from None


def _png_card(raw: bytes) -> bytes:
    texts = png.text_chunks(raw)
    encoded = texts.get("ccv3") or texts.get("chara")
    if encoded is None:
        raise CardError("it is a PNG without a character card in it (no ccv3 or chara tEXt chunk)")
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CardError("its card chunk is not valid base64") from None


def _charx_card(raw: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            try:
                info = archive.getinfo("card.json")
            except KeyError:
                raise CardError("it is a CHARX without card.json at its root") from None
            if info.file_size > MAX_JSON_BYTES:
                raise CardError(f"its card.json is over the {MAX_JSON_BYTES >> 20} MiB limit")
            return archive.read(info)
    except zipfile.BadZipFile:
        raise CardError("it is not a valid CHARX (zip) file") from None


def _json(raw: bytes, what: str) -> Any:
    if len(raw) > MAX_JSON_BYTES:
        raise CardError(f"its card JSON is over the {MAX_JSON_BYTES >> 20} MiB limit")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CardError(f"{what} is not UTF-8 text") from None
    except ValueError as exc:
        raise CardError(f"{what} is not valid JSON ({exc})") from None
