"""The benchmark's fast upstream: nginx serving fixed OpenAI answers.

nginx answers ``POST /json/v1/chat/completions`` with a fixed
``chat.completion`` and ``POST /sse/v1/chat/completions`` with a fixed
50-event stream (``/v1/responses`` likewise, in Responses form), so the
upstream is never the bottleneck.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

MODEL = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
STREAM_EVENTS = 50
REPLY = "主人，歡迎回來！我是女僕莉莉，今天有什麼可以為您效勞的嗎？"


def completion_body() -> str:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1732492800, "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": REPLY}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70},
    }, ensure_ascii=False, separators=(",", ":"))


def stream_body() -> str:
    events = []
    for i in range(STREAM_EVENTS):
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": "主人"}
        finish = "stop" if i == STREAM_EVENTS - 1 else None
        chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1732492800,
                 "model": MODEL, "system_fingerprint": "fp_bench",
                 "choices": [{"index": 0, "delta": {} if finish else delta, "logprobs": None,
                              "finish_reason": finish}]}
        events.append("data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


def response_body() -> str:
    """A fixed Responses API answer, as OpenAI writes it (model after nested fields)."""
    return json.dumps(_response("completed", REPLY), ensure_ascii=False, separators=(",", ":"))


def _response(status: str, text: str | None) -> dict:
    output = [] if text is None else [{"type": "message", "id": "msg_bench", "status": "completed",
                                       "role": "assistant",
                                       "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    return {"id": "resp_bench", "object": "response", "created_at": 1732492800, "status": status, "error": None,
            "incomplete_details": None, "instructions": None, "max_output_tokens": None, "model": MODEL,
            "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": None if text is None else {"input_tokens": 40, "output_tokens": 30, "total_tokens": 70}}


def response_stream_body() -> str:
    """50 Responses events: created, in_progress, item and part added, deltas, dones, completed."""
    def event(kind: str, seq: int, **fields: object) -> str:
        data = json.dumps({"type": kind, "sequence_number": seq, **fields}, ensure_ascii=False, separators=(",", ":"))
        return f"event: {kind}\ndata: {data}\n\n"

    ids = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    head = [event("response.created", 0, response=_response("in_progress", None)),
            event("response.in_progress", 1, response=_response("in_progress", None)),
            event("response.output_item.added", 2, output_index=0, item={"type": "message", "id": "msg_bench",
                  "status": "in_progress", "role": "assistant", "content": []}),
            event("response.content_part.added", 3, part={"type": "output_text", "text": "", "annotations": []},
                  **ids)]
    deltas = STREAM_EVENTS - len(head) - 4
    text = "主人" * deltas
    body = [event("response.output_text.delta", 4 + i, delta="主人", logprobs=[], **ids) for i in range(deltas)]
    part = {"type": "output_text", "text": text, "annotations": []}
    seq = 4 + deltas
    tail = [event("response.output_text.done", seq, text=text, logprobs=[], **ids),
            event("response.content_part.done", seq + 1, part=part, **ids),
            event("response.output_item.done", seq + 2, output_index=0, item={
                "type": "message", "id": "msg_bench", "status": "completed", "role": "assistant", "content": [part]}),
            event("response.completed", seq + 3, response=_response("completed", text))]
    return "".join(head + body + tail)


def _write_site(www: Path) -> None:
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1,
                                                      "owned_by": "bench"}]})
    for prefix, name, body in (("json", "chat/completions", completion_body()),
                               ("sse", "chat/completions", stream_body()),
                               ("json", "responses", response_body()),
                               ("sse", "responses", response_stream_body()),
                               ("json", "models", models), ("sse", "models", models)):
        path = www / prefix / "v1" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def _conf(root: Path, port: int) -> str:
    # Static files answer POST with 405; error_page turns that into the file.
    return f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    etag off;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root}/www;
        location /json/ {{ default_type application/json; error_page 405 =200 $uri; }}
        location /sse/ {{ default_type text/event-stream; error_page 405 =200 $uri; }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground on 127.0.0.1:port, in a private temp dir."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="pp-bench-nginx-"))
        self.root.chmod(0o755)  # nginx workers run as an unprivileged user
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        _write_site(self.root / "www")
        conf = self.root / "nginx.conf"
        conf.write_text(_conf(self.root, self.port), encoding="utf-8")
        self.proc = subprocess.Popen([binary, "-p", str(self.root), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("nginx failed: " + self.proc.stderr.read().decode()[-500:])  # type: ignore[union-attr]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
