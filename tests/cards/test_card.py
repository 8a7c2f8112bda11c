"""Reading cards: every container and spec, and one clear reason for every bad file."""

from __future__ import annotations

import copy
import json
import zlib

import pytest

from app.cards import CardError, read_card, read_lorebook
from app.cards.png import SIGNATURE, avatar, chunks, with_text

from .cardfiles import LILY, card_charx, card_json, card_png, raw_text_chunk, write


@pytest.mark.parametrize("make, suffix", [(card_json, ".json"), (card_png, ".png"), (card_charx, ".charx")])
def test_every_container_reads_the_same_card(tmp_path, make, suffix):
    card = read_card(write(tmp_path / f"lily{suffix}", make()))
    assert card.spec == "chara_card_v2" and card.name == "Lily"
    assert card.book is not None and [e.label for e in card.book.entries] == ["tea", "sugar", "home"]
    # Everything the card held is kept, unknown fields and extensions too.
    assert card.data["x_unknown"] == {"kept": 1} and card.data["extensions"]["fav"] is True


def test_a_png_with_both_chunks_is_read_from_ccv3(tmp_path):
    v3 = copy.deepcopy(LILY) | {"spec": "chara_card_v3", "spec_version": "3.0"}
    v3["data"] = {**v3["data"], "nickname": "Lil"}
    import base64

    png = with_text(avatar(20, 20), [("chara", base64.b64encode(card_json()).decode()),
                                     ("ccv3", base64.b64encode(card_json(v3)).decode())])
    card = read_card(write(tmp_path / "both.png", png))
    assert card.spec == "chara_card_v3" and card.name == "Lil"  # nickname wins for {{char}}


def test_v1_and_v3_cards(tmp_path):
    v1 = {"name": "Old", "description": "old style", "first_mes": "hey"}
    assert read_card(write(tmp_path / "v1.json", json.dumps(v1).encode())).spec == "chara_card_v1"
    v3 = {"spec": "chara_card_v3", "spec_version": "3.1", "data": {"name": "New"}}
    assert read_card(write(tmp_path / "v3.json", json.dumps(v3).encode())).name == "New"


def _truncated() -> bytes:
    return card_png()[:-30]


def _bad_crc() -> bytes:
    data = bytearray(card_png())
    data[40] ^= 0xFF
    return bytes(data)


BAD = [
    ("nochunk.png", lambda: avatar(10, 10), "without a character card in it"),
    ("truncated.png", _truncated, "truncated"),
    ("corrupt.png", _bad_crc, "corrupt"),
    ("b64.png", lambda: with_text(avatar(10, 10), [("chara", "not base64!!")]), "not valid base64"),
    ("json.png", lambda: with_text(avatar(10, 10), [("chara", "bm90IGpzb24=")]), "not valid JSON"),
    ("spec.json", lambda: json.dumps({"spec": "chara_card_v9", "data": {"name": "x"}}).encode(), "unknown card spec"),
    ("version.json", lambda: json.dumps({"spec": "chara_card_v3", "spec_version": "4.0", "data": {"name": "x"}})
     .encode(), "unknown chara_card_v3 version"),
    ("noname.json", lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": ""}}).encode(), "no name"),
    ("type.json", lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": "x", "description": 3}}).encode(),
     "data.description is not a string"),
    ("nocard.charx", lambda: card_charx(name="other.json"), "without card.json"),
    ("regex.json", lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": "x", "character_book": {
        "entries": [{"keys": ["(?<=a)b"], "use_regex": True, "content": "c", "name": "look"}]}}}).encode(),
     "key '(?<=a)b' is not a usable regular expression"),
    ("broken.json", lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": "x", "character_book": {
        "entries": [{"keys": ["/[a/"], "use_regex": True, "content": "c"}]}}}).encode(), "missing ]"),
    ("flags.json", lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": "x", "character_book": {
        "entries": [{"keys": ["/a/q"], "use_regex": True, "content": "c"}]}}}).encode(), "unknown regular-expression"),
    ("text.txt", lambda: b"name = 'toml'", "neither a PNG, a CHARX (zip) nor a JSON object"),
]


@pytest.mark.parametrize("name, make, reason", BAD, ids=[b[0] for b in BAD])
def test_bad_cards_say_what_is_wrong(tmp_path, name, make, reason):
    with pytest.raises(CardError) as caught:
        read_card(write(tmp_path / name, make()))
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_card_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("app.cards.card.MAX_FILE_BYTES", 1000)
    with pytest.raises(CardError, match=r"MB, over the 32 MiB limit|over the \d+ MiB"):
        read_card(write(tmp_path / "big.png", card_png()))


def test_png_chunks_are_checked_and_rewritten_without_touching_the_image(tmp_path):
    image = avatar(30, 30)
    once = with_text(image, [("chara", "QQ==")])
    twice = with_text(once, [("ccv3", "Qg==")])
    kinds = [kind for kind, _ in chunks(twice)]
    assert kinds == [b"IHDR", b"IDAT", b"tEXt", b"IEND"]  # the old card chunk replaced, not kept
    assert [p for k, p in chunks(twice) if k == b"IDAT"] == [p for k, p in chunks(image) if k == b"IDAT"]
    assert twice.startswith(SIGNATURE) and zlib.crc32(twice) != zlib.crc32(once)
    assert raw_text_chunk("chara", b"x")[4:8] == b"tEXt"


def test_standalone_lorebooks(tmp_path):
    book = LILY["data"]["character_book"]
    v3 = write(tmp_path / "facts.json", json.dumps({"spec": "lorebook_v3", "data": book}).encode())
    assert [e.label for e in read_lorebook(v3).entries] == ["tea", "sugar", "home"]
    bare = write(tmp_path / "bare.json", json.dumps(book).encode())
    assert read_lorebook(bare).scan_depth == 2
    # SillyTavern's own world-info export: entries keyed by uid, with its field names.
    st = {"entries": {"0": {"uid": 0, "key": ["moon"], "keysecondary": [], "content": "The moon is pink.",
                            "order": 5, "disable": False, "comment": "moon"}}}
    entry = read_lorebook(write(tmp_path / "st.json", json.dumps(st).encode())).entries[0]
    assert entry.keys == ("moon",) and entry.insertion_order == 5 and entry.label == "moon" and not entry.never
    with pytest.raises(CardError, match="needs entries"):
        read_lorebook(write(tmp_path / "none.json", b'{"name": "x"}'))
