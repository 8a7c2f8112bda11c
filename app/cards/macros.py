"""Card macros and example dialogues.

``{{char}}`` and ``<BOT>`` are the character's name, resolved at load;
``{{user}}`` and ``<USER>`` are the caller's, known only per request, so they
are folded into one spelling (``{{user}}``) at load and replaced with one
``str.replace`` when a request names someone. Macros match case-insensitively.
Comments (``{{// ...}}``, ``{{comment: ...}}``) never reach a prompt.
"""

from __future__ import annotations

import re

USER = "{{user}}"
_CHAR = re.compile(r"\{\{\s*(?:char|charifnotgroup)\s*\}\}|<bot>", re.IGNORECASE)
_USER = re.compile(r"\{\{\s*user\s*\}\}|<user>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
_COMMENT = re.compile(r"\{\{\s*(?://|comment\s*:)[^}]*\}\}", re.IGNORECASE)
_ANY = re.compile(r"\{\{[^{}]*\}\}")
_START = re.compile(r"^\s*<start>\s*$", re.IGNORECASE | re.MULTILINE)


def resolve(text: str, char: str) -> str:
    """``text`` with the character's name in, comments out and the user macros in one spelling."""
    if "{" not in text and "<" not in text:
        return text
    text = _COMMENT.sub("", text)
    text = _CHAR.sub(lambda _: char, text)
    return _USER.sub(USER, text)


def has_original(text: str) -> bool:
    return _ORIGINAL.search(text) is not None


def with_original(text: str, original: str) -> str:
    return _ORIGINAL.sub(lambda _: original, text)


def unresolved(text: str) -> list[str]:
    """Macros left in a resolved text that the proxy does not fill (``{{user}}`` is filled per request)."""
    return sorted({m for m in _ANY.findall(text) if m != USER})


def examples(text: str, names: tuple[str, ...]) -> list[list[dict[str, str]]]:
    """``mes_example`` (already resolved) as blocks of user and assistant messages.

    Blocks start at a ``<START>`` line; a line starting ``{{user}}:`` is the
    user's, one starting with the character's name and a colon is hers, and a
    line with neither continues the message before it.
    """
    blocks: list[list[dict[str, str]]] = []
    speakers = [(USER + ":", "user"), *((f"{name}:", "assistant") for name in names if name)]
    for block in _START.split(text):
        messages: list[dict[str, str]] = []
        for line in block.split("\n"):
            speaker = next(((p, role) for p, role in speakers if line.lower().startswith(p.lower())), None)
            if speaker is not None:
                messages.append({"role": speaker[1], "content": line[len(speaker[0]):].strip()})
            elif messages:
                messages[-1]["content"] += "\n" + line
        for message in messages:
            message["content"] = message["content"].strip()
        messages = [m for m in messages if m["content"]]
        if messages:
            blocks.append(messages)
    return blocks


def example_text(messages: list[dict[str, str]]) -> str:
    """Few-shot exchanges as ``mes_example``: one ``<START>`` block per user message and the replies after it."""
    lines: list[str] = []
    for message in messages:
        if message["role"] == "user" or not lines:
            lines.append("<START>")
        speaker = "{{user}}" if message["role"] == "user" else "{{char}}"
        lines.append(f"{speaker}: {message['content']}")
    return "\n".join(lines)
