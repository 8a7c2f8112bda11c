"""Checking a chat fine-tuning JSONL dataset, streamed line by line.

Errors are what OpenAI's format rules reject (the cookbook's checks, plus
tools, tool_calls and weight); warnings are what it accepts but a user wants
to know: duplicates, inconsistent system prompts, empty or extreme replies,
examples over the token limit, BOM, mixed line endings, blank lines. Only
per-line hashes and counts are kept, so a file of any size fits in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tokens import TokenCounter

MIN_EXAMPLES = 10
DEFAULT_TOKEN_LIMIT = 65_536
TOKEN_LIMITS = {"gpt-4o-mini-2024-07-18": 65_536}
LONG_REPLY_TOKENS = 2_048
SHOWN_PER_KIND = 20
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"})
EXAMPLE_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
_NOT_WORD = re.compile(r"[\W_]+")


def comparable(text: str) -> str:
    """Text with case, spacing and punctuation removed, for spotting near duplicates."""
    return _NOT_WORD.sub("", text.lower())


@dataclass
class Finding:
    kind: str
    line: int | None
    message: str


@dataclass
class DatasetReport:
    path: str
    token_source: str = ""
    tokens_exact: bool = False
    examples: int = 0
    messages: int = 0
    assistant_turns: int = 0
    example_tokens: list[int] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    system_prompts: Counter[str] = field(default_factory=Counter)
    missing_system: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def dominant_system_prompt(self) -> str | None:
        return self.system_prompts.most_common(1)[0][0] if self.system_prompts else None

    def error(self, kind: str, line: int | None, message: str) -> None:
        self._add(self.errors, kind, line, message)

    def warn(self, kind: str, line: int | None, message: str) -> None:
        self._add(self.warnings, kind, line, message)

    def _add(self, into: list[Finding], kind: str, line: int | None, message: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= SHOWN_PER_KIND:
            into.append(Finding(kind, line, message))


def check_dataset(path: Path, counter: TokenCounter, model: str | None = None) -> DatasetReport:
    """Read ``path`` once and report every problem found."""
    report = DatasetReport(str(path), counter.source, counter.exact)
    scan = _Scan(report, counter, TOKEN_LIMITS.get(model or "", DEFAULT_TOKEN_LIMIT))
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            scan.line(number, raw)
    scan.finish()
    return report


class _Scan:
    """The state carried from line to line."""

    def __init__(self, report: DatasetReport, counter: TokenCounter, token_limit: int) -> None:
        self.report = report
        self.counter = counter
        self.token_limit = token_limit
        self.endings: Counter[str] = Counter()
        self.trailing_blank: list[int] = []
        self.exact: dict[bytes, int] = {}
        self.near: dict[bytes, int] = {}

    def line(self, number: int, raw: bytes) -> None:
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            self.report.warn("bom", 1, "file starts with a UTF-8 byte order mark; remove it")
            raw = raw[3:]
        self.endings["CRLF" if raw.endswith(b"\r\n") else "LF" if raw.endswith(b"\n") else "none"] += 1
        text = raw.strip()
        if not text:
            self.trailing_blank.append(number)
            return
        for blank in self.trailing_blank:
            self.report.warn("blank_line", blank, "blank line between examples")
        self.trailing_blank = []
        example = self._parse(number, text)
        if example is not None:
            self._example(number, example)

    def _parse(self, number: int, text: bytes) -> dict[str, Any] | None:
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.report.error("invalid_json", number, f"not valid JSON ({getattr(exc, 'msg', exc)})")
            return None
        if not isinstance(value, dict):
            self.report.error("not_object", number, "each line must be a JSON object")
            return None
        return value

    def _example(self, number: int, example: dict[str, Any]) -> None:
        report = self.report
        report.examples += 1
        problems = example_problems(example)
        for kind, message in problems:
            report.error(kind, number, message)
        if problems:
            return
        messages: list[dict[str, Any]] = example["messages"]
        report.messages += len(messages)
        report.assistant_turns += sum(m["role"] == "assistant" for m in messages)
        tokens = self.counter.example(messages, example.get("tools"))
        report.example_tokens.append(tokens)
        if tokens > self.token_limit:
            report.warn("too_many_tokens", number,
                        f"{tokens} tokens, over the {self.token_limit}-token limit: it will be truncated")
        self._duplicates(number, example, messages)
        self._system_prompt(messages)
        self._replies(number, messages)

    def _duplicates(self, number: int, example: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        exact = hashlib.sha1(json.dumps(example, sort_keys=True, ensure_ascii=False).encode()).digest()
        first = self.exact.setdefault(exact, number)
        if first != number:
            self.report.warn("duplicate", number, f"exact duplicate of line {first}")
            return
        near_text = "\x00".join(f"{m['role']}:{comparable(str(m.get('content') or ''))}"
                                for m in messages if m["role"] != "system")
        near = hashlib.sha1(near_text.encode()).digest()
        first = self.near.setdefault(near, number)
        if first != number:
            self.report.warn("near_duplicate", number,
                             f"same conversation as line {first} apart from case, spacing or punctuation")

    def _system_prompt(self, messages: list[dict[str, Any]]) -> None:
        prompt = next((m["content"] for m in messages if m["role"] == "system"), None)
        if isinstance(prompt, str):
            self.report.system_prompts[prompt] += 1
        else:
            self.report.missing_system += 1

    def _replies(self, number: int, messages: list[dict[str, Any]]) -> None:
        for i, message in enumerate(messages):
            if message["role"] != "assistant" or message.get("tool_calls") or message.get("function_call"):
                continue
            content = (message.get("content") or "").strip()
            if not content:
                self.report.warn("empty_reply", number, f"message {i}: empty assistant reply")
            elif len(content) < 2:
                self.report.warn("short_reply", number, f"message {i}: very short reply {content!r}")
            elif (tokens := self.counter.text(content)) > LONG_REPLY_TOKENS:
                self.report.warn("long_reply", number, f"message {i}: very long reply ({tokens} tokens)")

    def finish(self) -> None:
        report = self.report
        if self.trailing_blank:
            report.warn("trailing_blank_lines", self.trailing_blank[0],
                        f"{len(self.trailing_blank)} blank line(s) at the end of the file")
        used = {k for k, v in self.endings.items() if v and k != "none"}
        if len(used) > 1:
            report.warn("mixed_line_endings", None,
                        f"mixed line endings: {self.endings['CRLF']} CRLF and {self.endings['LF']} LF lines")
        if len(report.system_prompts) > 1:
            report.warn("inconsistent_system_prompts", None,
                        f"{len(report.system_prompts)} different system prompts; the most common is used in "
                        f"{report.system_prompts.most_common(1)[0][1]} examples")
        if report.missing_system and report.system_prompts:
            report.warn("missing_system_prompt", None, f"{report.missing_system} examples have no system prompt")
        if report.examples < MIN_EXAMPLES:
            report.error("too_few_examples", None,
                         f"{report.examples} examples; fine-tuning needs at least {MIN_EXAMPLES} (50-100 recommended)")


def example_problems(example: dict[str, Any]) -> list[tuple[str, str]]:
    """Everything OpenAI's format rules reject in one example, as (kind, message)."""
    problems: list[tuple[str, str]] = []
    for key in sorted(set(example) - EXAMPLE_KEYS):
        problems.append(("unknown_example_key", f"unrecognized key '{key}'"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, ("missing_messages", "missing 'messages' list")]
    if "tools" in example:
        problems += _tools_problems(example["tools"])
    for i, message in enumerate(messages):
        problems += [(kind, f"message {i}: {text}") for kind, text in _message_problems(message)]
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append(("no_assistant_message", "no assistant message to learn from"))
    return problems


def _message_problems(message: Any) -> list[tuple[str, str]]:
    if not isinstance(message, dict):
        return [("message_not_object", "not an object")]
    problems = [("unknown_message_key", f"unrecognized key '{key}'") for key in sorted(set(message) - MESSAGE_KEYS)]
    role = message.get("role")
    if role is None:
        problems.append(("missing_role", "missing 'role'"))
    elif role not in ROLES:
        problems.append(("unknown_role", f"unrecognized role '{role}'"))
    calls = message.get("tool_calls") or message.get("function_call")
    content = message.get("content")
    if "content" not in message and not calls:
        problems.append(("missing_content", "missing 'content'"))
    elif content is not None and not isinstance(content, str):
        problems.append(("content_not_string", "'content' must be a string"))
    elif content is None and not (role == "assistant" and calls):
        problems.append(("content_not_string", "'content' is null without tool_calls"))
    if "weight" in message:
        if role != "assistant":
            problems.append(("bad_weight", "'weight' is only allowed on assistant messages"))
        elif message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
            problems.append(("bad_weight", "'weight' must be 0 or 1"))
    if "tool_calls" in message:
        problems += _tool_calls_problems(message["tool_calls"], role)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.append(("missing_tool_call_id", "tool message without 'tool_call_id'"))
    return problems


def _tool_calls_problems(calls: Any, role: Any) -> list[tuple[str, str]]:
    if role != "assistant":
        return [("bad_tool_calls", "'tool_calls' is only allowed on assistant messages")]
    if not isinstance(calls, list) or not calls:
        return [("bad_tool_calls", "'tool_calls' must be a non-empty list")]
    problems = []
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or call.get("type") != "function":
            problems.append(("bad_tool_calls", f"tool_calls[{j}] needs a string 'id' and type 'function'"))
        elif not isinstance(function, dict) or not isinstance(function.get("name"), str) \
                or not isinstance(function.get("arguments"), str):
            problems.append(("bad_tool_calls", f"tool_calls[{j}].function needs 'name' and 'arguments' strings"))
    return problems


def _tools_problems(tools: Any) -> list[tuple[str, str]]:
    if not isinstance(tools, list):
        return [("bad_tools", "'tools' must be a list")]
    problems = []
    for j, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict) \
                or not isinstance(function.get("name"), str):
            problems.append(("bad_tools", f"tools[{j}] must be {{'type': 'function', 'function': {{'name': ...}}}}"))
    return problems
