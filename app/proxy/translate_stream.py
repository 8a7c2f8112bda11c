"""A chat completion stream, chunk by chunk, as the Responses event sequence.

``ChatToResponses`` is a pure state machine: :meth:`feed` takes one parsed
chat chunk and returns the Responses events it completes, :meth:`finish`
closes what is open and returns the terminal event. One response id and
increasing ``sequence_number`` values throughout, and a terminal
``response.completed`` only for a stream that really finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .translate import FINISH_STATUS, function_item, message_item, new_ids, response_object, usage_of


@dataclass
class _Call:
    """A function call being streamed: chat's tool_calls[index] as one output item."""

    output_index: int
    item_id: str
    call_id: Any
    name: Any
    arguments: list[str] = field(default_factory=list)


class ChatToResponses:
    """Turns chat chunks into Responses events (dicts; the caller frames them)."""

    def __init__(self, request: dict[str, Any], model: str) -> None:
        self.request = request
        self.model = model
        self.response_id, self._token = new_ids()
        self.sequence = 0
        self.started = False
        self.finished = False
        self.output: list[dict[str, Any] | None] = []
        self.chat_usage: dict[str, Any] | None = None
        self._text: list[str] | None = None
        self._text_index = -1
        self._calls: dict[int, _Call] = {}
        self.finish_reason: str | None = None
        self._created_at: int | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _response(self, status: str, *, usage: dict[str, Any] | None = None,
                  incomplete: str | None = None) -> dict[str, Any]:
        output = [item for item in self.output if item is not None] if status != "in_progress" else []
        return response_object(self.request, self.response_id, model=self.model, status=status, output=output,
                               usage=usage, incomplete=incomplete, created_at=self._created_at)

    def start(self) -> list[dict[str, Any]]:
        self.started = True
        created = self._response("in_progress")
        return [self._event("response.created", response=created),
                self._event("response.in_progress", response=created)]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chat chunk completes."""
        events = [] if self.started else self.start()
        if isinstance(chunk.get("created"), int) and self._created_at is None:
            self._created_at = chunk["created"]
        if isinstance(chunk.get("usage"), dict):
            self.chat_usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 has no Responses form; the first choice is the answer
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                events += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        events = []
        item_id = f"msg_{self._token}"
        if self._text is None:
            self._text, self._text_index = [], len(self.output)
            self.output.append(None)
            events += [self._event("response.output_item.added", output_index=self._text_index,
                                   item=message_item(item_id, "", "in_progress")),
                       self._event("response.content_part.added", item_id=item_id, output_index=self._text_index,
                                   content_index=0, part={"type": "output_text", "text": "", "annotations": []})]
        self._text.append(text)
        events.append(self._event("response.output_text.delta", item_id=item_id, output_index=self._text_index,
                                  content_index=0, delta=text, logprobs=[]))
        return events

    def _call_delta(self, piece: dict[str, Any]) -> list[dict[str, Any]]:
        events = []
        index = piece.get("index", len(self._calls))
        function = piece.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(len(self.output), f"fc_{self._token}_{index}", piece.get("id"),
                                              function.get("name"))
            self.output.append(None)
            events.append(self._event("response.output_item.added", output_index=call.output_index,
                                      item=function_item(call.item_id, call.call_id, call.name, "", "in_progress")))
        if function.get("arguments"):
            call.arguments.append(function["arguments"])
            events.append(self._event("response.function_call_arguments.delta", item_id=call.item_id,
                                      output_index=call.output_index, delta=function["arguments"]))
        return events

    def finish(self) -> list[dict[str, Any]]:
        """Close every open item and end with ``response.completed`` (or ``response.incomplete``)."""
        events = [] if self.started else self.start()
        if self._text is not None:
            events += self._close_text()
        for call in self._calls.values():
            events += self._close_call(call)
        status, reason = FINISH_STATUS.get(self.finish_reason or "", ("completed", None))
        final = self._response(status, usage=usage_of(self.chat_usage), incomplete=reason)
        self.finished = True
        return [*events, self._event(f"response.{status}", response=final)]

    def _close_text(self) -> list[dict[str, Any]]:
        assert self._text is not None
        text, index, item_id = "".join(self._text), self._text_index, f"msg_{self._token}"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = message_item(item_id, text, "completed")
        self.output[index] = item
        return [self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                            text=text, logprobs=[]),
                self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                            part=part),
                self._event("response.output_item.done", output_index=index, item=item)]

    def _close_call(self, call: _Call) -> list[dict[str, Any]]:
        arguments = "".join(call.arguments)
        item = function_item(call.item_id, call.call_id, call.name, arguments, "completed")
        self.output[call.output_index] = item
        return [self._event("response.function_call_arguments.done", item_id=call.item_id,
                            output_index=call.output_index, name=call.name, arguments=arguments),
                self._event("response.output_item.done", output_index=call.output_index, item=item)]

    def error(self, code: str | None, message: str) -> dict[str, Any]:
        """The in-band ``error`` event for a stream that broke; never a made-up completion."""
        self.finished = True
        return self._event("error", code=code, message=message, param=None)
