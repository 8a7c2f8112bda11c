"""Responses API <-> Chat Completions, for upstreams that only speak chat.

Pure transformations with no I/O: a Responses request becomes a chat
request; a chat answer becomes a response object; a chat stream, chunk by
chunk, becomes the Responses event sequence (``response.created`` ...
``response.completed``). The mapping follows OpenAI's documented shapes
(see ``docs/responses-api.md`` in the shared notes).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from .errors import InvalidRequest

# Chat parameters that keep their name in the Responses API.
SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier", "prompt_cache_key",
             "safety_identifier", "top_logprobs")
# Responses-only fields a chat server has no use for.
RESPONSES_ONLY = ("store", "include", "truncation", "background", "metadata", "conversation", "prompt",
                  "max_tool_calls", "stream_options")


def responses_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat request that asks the same as a Responses request."""
    if body.get("previous_response_id"):
        raise InvalidRequest("This route's upstream only speaks Chat Completions, so it cannot continue a stored "
                             "response: send the whole conversation in 'input' instead of previous_response_id.",
                             code="unsupported_parameter", param="previous_response_id")
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        messages.append({"role": "system", "content": body["instructions"]})
    messages += input_to_messages(body.get("input"))
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for key in SAME_NAME:
        if key in body:
            chat[key] = body[key]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if isinstance(body.get("reasoning"), dict) and body["reasoning"].get("effort"):
        chat["reasoning_effort"] = body["reasoning"]["effort"]
    text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(text_format, dict) and text_format.get("type") in ("json_object", "json_schema"):
        chat["response_format"] = _response_format(text_format)
    if body.get("tools"):
        chat["tools"] = [_chat_tool(tool) for tool in body["tools"]]
    if "tool_choice" in body:
        chat["tool_choice"] = _chat_tool_choice(body["tool_choice"])
    if body.get("stream"):
        chat["stream"] = True  # usage is asked for by the serving layer, as for any chat stream
    return chat


def input_to_messages(items: Any) -> list[dict[str, Any]]:
    """Responses ``input`` (a string or items) as chat messages, order kept."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    for item in items or []:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role", "user")
            messages.append({"role": role, "content": _chat_content(item.get("content"), role)})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            last = messages[-1] if messages else None
            # Consecutive calls are one assistant turn in chat form.
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": output if isinstance(output, str) else _chat_content(output, "tool")})
        elif kind in ("reasoning", "item_reference"):
            continue  # nothing a chat server can use
        else:
            raise InvalidRequest(f"Input items of type '{kind}' need an upstream that serves the Responses API.",
                                 code="unsupported_value", param="input")
    return messages


def _chat_content(content: Any, role: str) -> Any:
    if not isinstance(content, list):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": part.get("image_url"),
                                                             "detail": part.get("detail", "auto")}})
        elif kind == "input_file":
            parts.append({"type": "file", "file": {k: part[k] for k in ("file_id", "file_data", "filename")
                                                   if k in part}})
        else:
            parts.append(part)
    # Text-only turns as plain strings: every chat server takes those (not all take parts).
    if all(p["type"] == "text" for p in parts) and (role != "user" or len(parts) == 1):
        return "".join(p["text"] for p in parts)
    return parts


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise InvalidRequest(f"The hosted tool '{tool.get('type')}' needs an upstream that serves the Responses "
                             "API; this route's upstream only speaks Chat Completions.",
                             code="unsupported_value", param="tools")
    # "strict" only when the client said so: a Responses tool without it is strict where its
    # schema allows, which a chat server cannot judge; lenient is the safe reading there.
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text_format: dict[str, Any]) -> dict[str, Any]:
    if text_format["type"] == "json_object":
        return {"type": "json_object"}
    schema = {k: text_format[k] for k in ("name", "schema", "strict", "description") if k in text_format}
    return {"type": "json_schema", "json_schema": schema}


def new_ids() -> tuple[str, str]:
    """A response id and the id prefix of its items."""
    token = secrets.token_hex(12)
    return f"resp_{token}", token


def usage_of(chat_usage: Any) -> dict[str, Any] | None:
    """Chat usage in Responses form."""
    if not isinstance(chat_usage, dict):
        return None
    prompt, completion = chat_usage.get("prompt_tokens") or 0, chat_usage.get("completion_tokens") or 0
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": chat_usage.get("total_tokens") or prompt + completion}


def response_object(request: dict[str, Any], response_id: str, *, model: str, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                    incomplete: str | None = None, created_at: int | None = None) -> dict[str, Any]:
    """A response object echoing the request's settings, as OpenAI's does."""
    return {
        "id": response_id, "object": "response", "created_at": created_at or int(time.time()), "status": status,
        "error": None, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": request.get("instructions"), "max_output_tokens": request.get("max_output_tokens"),
        "model": model, "output": output, "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None, "reasoning": request.get("reasoning"), "store": False,
        "temperature": request.get("temperature"), "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
        "top_p": request.get("top_p"), "truncation": request.get("truncation", "disabled"),
        "usage": usage, "user": request.get("user"), "metadata": request.get("metadata") or {},
    }


FINISH_STATUS = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


def chat_to_response(chat: dict[str, Any], request: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole chat completion as a response object."""
    response_id, token = new_ids()
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(f"msg_{token}", text, "completed"))
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        output.append(function_item(f"fc_{token}_{i}", call.get("id"), function.get("name"),
                                    function.get("arguments") or "", "completed"))
    status, reason = FINISH_STATUS.get(choice.get("finish_reason") or "", ("completed", None))
    return response_object(request, response_id, model=model, status=status, output=output,
                           usage=usage_of(chat.get("usage")), incomplete=reason,
                           created_at=chat.get("created") if isinstance(chat.get("created"), int) else None)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text or
            status == "completed" else []}


def function_item(item_id: str, call_id: Any, name: Any, arguments: str, status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def sse(event: dict[str, Any]) -> bytes:
    """One Responses event, framed as OpenAI frames it."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
