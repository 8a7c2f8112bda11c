"""The APIs a route answers, as adapters over one serving core.

Routing, the target plan, the guard, failover, usage and metrics exist
once (``serving``); an :class:`Api` says only what differs: the upstream
path, how the persona is placed, which messages Open WebUI's task detection
reads, how an answer or a stream is relayed. A Responses request to an
upstream that only speaks chat takes the translating adapter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import UpstreamSettings
from . import persona, responses
from .guard import Guard
from .relay import StreamRelay, read_json
from .responses_relay import ResponsesRelay, TranslatingRelay, read_translated
from .translate import responses_to_chat
from .transport import UpstreamResponse


class BodyBuilder(Protocol):
    def __call__(self, body: dict[str, Any], *, model: str, prompt: str | None, mode: persona.PromptMode,
                 params: Mapping[str, Any], few_shot: Sequence[dict[str, str]] = ()) -> dict[str, Any]: ...


RelayFactory = Callable[..., StreamRelay]
Placer = Callable[[dict[str, Any], int, Sequence[Any], str | None], dict[str, Any]]
Reader = Callable[[UpstreamResponse, Guard, float, bytes, dict[str, Any]],
                  Awaitable[tuple[bytes, dict[str, Any] | None]]]


async def _read_native(upstream: UpstreamResponse, guard: Guard, idle: float, model: bytes,
                       request: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
    return await read_json(upstream, guard, idle, model)


def _chat_relay(upstream: UpstreamResponse, *, request: dict[str, Any], **options: Any) -> StreamRelay:
    return StreamRelay(upstream, **options)


def _responses_relay(upstream: UpstreamResponse, *, request: dict[str, Any], **options: Any) -> StreamRelay:
    return ResponsesRelay(upstream, **options)


def _translating_relay(upstream: UpstreamResponse, *, request: dict[str, Any], **options: Any) -> StreamRelay:
    options.pop("strip_usage", None)  # the translator consumes the usage chunk itself
    return TranslatingRelay(upstream, request=request, **options)


def _chat_messages(body: Mapping[str, Any]) -> Any:
    return body.get("messages")


def _same(body: dict[str, Any]) -> dict[str, Any]:
    return body


@dataclass(frozen=True, slots=True)
class Api:
    name: str  # what the client called: "chat" or "responses" (usage records, metrics, logs)
    path: str  # where it goes upstream
    build: BodyBuilder
    messages: Callable[[Mapping[str, Any]], Any]
    convert: Callable[[dict[str, Any]], dict[str, Any]]
    relay: RelayFactory
    read: Reader
    # Where a card persona's per-request parts go: does the persona apply, what did its mode drop,
    # and placing lorebook entries at depth and the post-history instructions.
    applies: Callable[[Mapping[str, Any], persona.PromptMode], bool]
    dropped: Callable[[Mapping[str, Any], persona.PromptMode], int]
    place: Placer
    translated: bool = False

    def effective(self, upstream: UpstreamSettings) -> Api:
        """The adapter for this upstream: a chat-only one gets Responses requests translated."""
        if self.name == "responses" and (upstream.responses == "translate" or upstream.kind == "demo"):
            return RESPONSES_VIA_CHAT
        return self


CHAT = Api("chat", "chat/completions", persona.upstream_body, _chat_messages, _same, _chat_relay, _read_native,
           persona.applies, persona.dropped, persona.place)
RESPONSES = Api("responses", "responses", responses.upstream_body, responses.input_items, _same,
                _responses_relay, _read_native, responses.applies, responses.dropped, responses.place)
RESPONSES_VIA_CHAT = Api("responses", "chat/completions", responses.upstream_body, responses.input_items,
                         responses_to_chat, _translating_relay, read_translated, responses.applies,
                         responses.dropped, responses.place, translated=True)
