"""The processes under test: persona-proxy and, when installed, LiteLLM's proxy."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .upstream import MODEL

PROXY_KEY = "bench-proxy-key-0123456789abcdef"
PERSONA = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def wait_ready(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for child in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in children]
    for child in list(found):
        found.extend(_descendants(child))
    return found


class Target:
    """A proxy process listening on 127.0.0.1:port."""

    name = "target"

    def __init__(self, cpus: str | None = None) -> None:
        self.port = free_port()
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix=f"pp-bench-{self.name}-"))

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> Target:
        argv, env = self.command()
        if self.cpus is not None:
            argv = ["taskset", "-c", self.cpus, *argv]
        log = (self.dir / "log.txt").open("wb")
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_raise_fd_limit, cwd=self.dir, start_new_session=True)
        wait_ready(f"http://127.0.0.1:{self.port}/v1/models", {"authorization": f"Bearer {PROXY_KEY}"},
                   self.proc)
        return self

    def pause(self) -> None:
        """Freeze the whole process group so it cannot steal CPU from another target's run."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class PersonaProxy(Target):
    name = "persona-proxy"

    def __init__(self, upstream_port: int, workers: int = 1, extra_routes: str = "", cpus: str | None = None,
                 route_keys: str = "", log_level: str = "info", client: str = "") -> None:
        super().__init__(cpus)
        self.upstream_port = upstream_port
        self.workers = workers
        self.extra_routes = extra_routes
        # The level a user runs at: info writes an access line per request.
        self.log_level = log_level
        # Limits for the benchmark's key: it then belongs to [clients.bench] with these keys.
        self.client = client
        # More keys for both benchmark routes (a dataset, canary or shadow tables go after them).
        self.route_keys = route_keys

    def command(self) -> tuple[list[str], dict[str, str]]:
        base = f"http://127.0.0.1:{self.upstream_port}"
        config = self.dir / "config.toml"
        config.write_text(f"""
[server]
port = {self.port}
log_level = "{self.log_level}"
{'api_keys_env = "BENCH_NO_KEYS"' if self.client else ""}

[upstreams.json]
base_url = "{base}/json/v1"
api_key_env = "BENCH_UPSTREAM_KEY"

[upstreams.sse]
base_url = "{base}/sse/v1"
api_key_env = "BENCH_UPSTREAM_KEY"

{self.extra_routes}

{f'[clients.bench]{chr(10)}key_env = "PERSONA_PROXY_API_KEYS"{chr(10)}{self.client}' if self.client else ""}

[routes.maid]
upstream = "json"
model = "{MODEL}"
system_prompt = "{PERSONA}"
params = {{ temperature = 0.8 }}
{self.route_keys.replace("ROUTE", "maid").replace("UPSTREAM", "json")}

[routes.maid-stream]
upstream = "sse"
model = "{MODEL}"
system_prompt = "{PERSONA}"
params = {{ temperature = 0.8 }}
{self.route_keys.replace("ROUTE", "maid-stream").replace("UPSTREAM", "sse")}
""", encoding="utf-8")
        argv = [sys.executable, "-m", "app", "serve", "--config", str(config), "--workers", str(self.workers)]
        # Usage records go to the target's own temp dir: a shared data dir would grow run after run
        # (it had reached 3.6 million rows here) and every insert would pay for its index.
        return argv, {"PERSONA_PROXY_API_KEYS": PROXY_KEY, "BENCH_UPSTREAM_KEY": "upstream-key",
                      "PERSONA_PROXY_DATA_DIR": str(self.dir / "data")}


class BareRelay(Target):
    """A 60-line Starlette + aiohttp pass-through (bench/bare.py): the yardstick."""

    name = "bare-relay"

    def __init__(self, upstream_port: int, cpus: str | None = None) -> None:
        super().__init__(cpus)
        self.upstream_port = upstream_port

    def command(self) -> tuple[list[str], dict[str, str]]:
        repo = str(Path(__file__).resolve().parent.parent)
        argv = [sys.executable, "-m", "bench.bare", "--port", str(self.port),
                "--upstream", f"http://127.0.0.1:{self.upstream_port}"]
        return argv, {"PYTHONPATH": repo}


def litellm_binary() -> str | None:
    return os.environ.get("LITELLM_BIN") or shutil.which("litellm")


class LiteLLM(Target):
    name = "litellm"

    def __init__(self, upstream_port: int, cpus: str | None = None) -> None:
        super().__init__(cpus)
        self.upstream_port = upstream_port

    def command(self) -> tuple[list[str], dict[str, str]]:
        base = f"http://127.0.0.1:{self.upstream_port}"
        config = self.dir / "litellm.yaml"
        config.write_text(f"""
model_list:
  - model_name: maid
    litellm_params:
      model: openai/{MODEL}
      api_base: {base}/json/v1
      api_key: upstream-key
  - model_name: maid-stream
    litellm_params:
      model: openai/{MODEL}
      api_base: {base}/sse/v1
      api_key: upstream-key
general_settings:
  master_key: {PROXY_KEY}
litellm_settings:
  telemetry: false
""", encoding="utf-8")
        argv = [litellm_binary() or "litellm", "--config", str(config), "--port", str(self.port),
                "--host", "127.0.0.1", "--num_workers", "1"]
        return argv, {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
