"""The benchmark's fast upstream: nginx serving fixed OpenAI answers.

nginx answers ``POST /json/v1/chat/completions`` with a fixed
``chat.completion`` and ``POST /sse/v1/chat/completions`` with a fixed
50-event stream, so the upstream is never the bottleneck.
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


def _write_site(www: Path) -> None:
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1,
                                                      "owned_by": "bench"}]})
    for prefix, name, body in (("json", "chat/completions", completion_body()),
                               ("sse", "chat/completions", stream_body()),
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
