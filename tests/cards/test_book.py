"""Lorebook entries as read: decorators, SillyTavern's placement, keys compiled into one RE2 set."""

from __future__ import annotations

from app.cards.book import key_pattern, read_book


def book(*entries, **fields):
    return read_book({"entries": list(entries), **fields})


def test_decorators_set_depth_and_role_and_leave_the_content():
    entry = book({"keys": ["a"], "content": "@@depth 3\n@@role assistant\n@@@depth 2\nThe fact."}).entries[0]
    assert (entry.position, entry.depth, entry.role, entry.content) == ("depth", 3, "assistant", "The fact.")


def test_unknown_decorators_are_listed_once_at_load():
    loaded = book({"keys": ["a"], "content": "@@activate_only_after 3\n@@scan_depth 4\nfact", "name": "n"})
    assert loaded.warnings == ("character_book.entries[0] (n): ignored unsupported decorator(s): "
                               "@@activate_only_after 3, @@scan_depth 4",)
    assert loaded.entries[0].content == "fact"


def test_sillytavern_extensions_place_an_entry_at_depth():
    entry = book({"keys": ["a"], "content": "x", "extensions": {"position": 4, "depth": 2, "role": 1}}).entries[0]
    assert (entry.position, entry.depth, entry.role) == ("depth", 2, "user")


def test_empty_keys_are_dropped_with_a_warning():
    loaded = book({"keys": ["", " ", "tea"], "content": "x"}, {"keys": [""], "content": "y", "name": "nothing"})
    assert loaded.entries[0].keys == ("tea",)
    assert any("2 empty key(s) ignored" in w for w in loaded.warnings)
    assert any("(nothing): no keys and not constant, so it never fires" in w for w in loaded.warnings)


def test_disabled_entries_never_fire_and_carry_no_pattern():
    loaded = book({"keys": ["a"], "content": "x", "enabled": False}, {"keys": ["b"], "content": "y"})
    assert loaded.entries[0].never and loaded.matcher.owners == ((1, False),)


def test_key_patterns():
    assert key_pattern("Tea", False, False) == "(?i)Tea"
    assert key_pattern("a.b", False, True) == r"a\.b"
    assert key_pattern("/sw(or)?d/is", True, True) == "(?is)sw(or)?d"
    assert key_pattern("/x/g", True, False) == "x"  # g means nothing to a search; the flags decide the case
    assert key_pattern("colou?r", True, False) == "(?i)colou?r"


def test_one_scan_finds_primary_and_secondary_hits():
    loaded = book({"keys": ["tea"], "content": "1"},
                  {"keys": ["sugar"], "secondary_keys": ["tea"], "selective": True, "content": "2"},
                  {"keys": ["/\\bmoon\\b/"], "use_regex": True, "content": "3"})
    primary, secondary = loaded.matcher.hits("Tea with SUGAR under the moonlight")
    assert primary == {0, 1} and secondary == {1}


def test_sillytavern_world_info_numbers_place_entries():
    # Fields as SillyTavern 1.19 writes its world-info files (default/content/Eldoria.json).
    def st(uid, position, **more):
        return {"uid": uid, "key": ["k"], "keysecondary": [], "comment": f"e{uid}", "content": "x",
                "constant": False, "selective": True, "order": 100, "position": position, "disable": False,
                "depth": 4, "role": None, **more}

    loaded = read_book({"entries": {"0": st(0, 0), "1": st(1, 1), "2": st(2, 4, depth=2, role=2), "3": st(3, 2)}})
    placed = [(e.position, e.depth, e.role) for e in loaded.entries]
    assert placed == [("before_char", 4, "system"), ("after_char", 4, "system"), ("depth", 2, "assistant"),
                      ("after_char", 4, "system")]
    assert not loaded.entries[0].selective  # selective without secondary keys is a plain entry
    assert any("SillyTavern position 2" in w for w in loaded.warnings)
