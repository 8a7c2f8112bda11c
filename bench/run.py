"""Benchmark persona-proxy against the bare upstream and LiteLLM, side by side.

    python -m bench.run [--rounds 3] [--seconds 5] [--no-litellm] [--out FILE]

Targets run in the same session and are interleaved within each round, so
machine noise hits them alike; every figure is the median over rounds.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata

from .idle import HoldingUpstream, open_idle_streams
from .load import LoadResult, chat_body, responses_body, ttfb, wrk
from .targets import PROXY_KEY, PersonaProxy, Target, free_port, rss_mb
from .upstream import MODEL

CONCURRENCY = (1, 32, 128)
# The Responses API rows: same upstream, same routes, c=32 only; LiteLLM is not measured there.
RESPONSES_MODES = {"rjson": False, "rsse": True}
X1, X2 = "persona-proxy x1 (all cores)", "persona-proxy x2 (all cores)"


@dataclass
class Endpoint:
    """Where one target serves one mode (non-streaming ``json`` or ``sse``)."""

    name: str
    port: int
    path: str
    model: str
    key: str | None

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@dataclass
class Results:
    load: dict[tuple[str, str, int], list[LoadResult]] = field(default_factory=lambda: defaultdict(list))
    ttfb: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    rss: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def endpoints(upstream_port: int, targets: dict[str, Target]) -> dict[str, dict[str, Endpoint]]:
    out = {"direct": {
        "json": Endpoint("direct", upstream_port, "/json/v1/chat/completions", MODEL, None),
        "sse": Endpoint("direct", upstream_port, "/sse/v1/chat/completions", MODEL, None),
        "rjson": Endpoint("direct", upstream_port, "/json/v1/responses", MODEL, None),
        "rsse": Endpoint("direct", upstream_port, "/sse/v1/responses", MODEL, None),
    }}
    for name, target in targets.items():
        out[name] = {
            "json": Endpoint(name, target.port, "/v1/chat/completions", "maid", PROXY_KEY),
            "sse": Endpoint(name, target.port, "/v1/chat/completions", "maid-stream", PROXY_KEY),
        }
        if name != "litellm":
            out[name]["rjson"] = Endpoint(name, target.port, "/v1/responses", "maid", PROXY_KEY)
            out[name]["rsse"] = Endpoint(name, target.port, "/v1/responses", "maid-stream", PROXY_KEY)
    return out


def body_for(ep: Endpoint, mode: str) -> str:
    if mode in RESPONSES_MODES:
        return responses_body(ep.model, RESPONSES_MODES[mode])
    return chat_body(ep.model, mode == "sse")


def only_running(targets: dict[str, Target], name: str) -> None:
    """Let only the measured target run; the others are frozen (SIGSTOP) meanwhile."""
    for other, target in targets.items():
        if other == name:
            target.resume()
        else:
            target.pause()


def run_round(eps: dict[str, dict[str, Endpoint]], results: Results, seconds: float,
              targets: dict[str, Target]) -> None:
    for mode in ("json", "sse", *RESPONSES_MODES):
        for conns in (32,) if mode in RESPONSES_MODES else CONCURRENCY:
            for name, by_mode in eps.items():
                if mode not in by_mode:
                    continue
                only_running(targets, name)
                ep = by_mode[mode]
                result = wrk(ep.url(), body_for(ep, mode), ep.key, conns, seconds)
                results.load[(name, mode, conns)].append(result)
                if name == "litellm":
                    # LiteLLM keeps working through its backlog after wrk stops;
                    # let it finish so it does not steal the next run's CPU.
                    time.sleep(3)
                print(f"  {name:<16} {mode:<4} c={conns:<3} {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                      f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}", flush=True)


def run_ttfb(eps: dict[str, dict[str, Endpoint]], results: Results, count: int,
             targets: dict[str, Target]) -> None:
    for name, by_mode in eps.items():
        only_running(targets, name)
        for mode, ep in by_mode.items():
            if mode in RESPONSES_MODES:
                continue
            samples = ttfb("127.0.0.1", ep.port, ep.path, chat_body(ep.model, mode == "sse"), ep.key, count)
            results.ttfb[(name, mode)].extend(samples)


def median_of(items: list[LoadResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in items)


def workers_round(upstream_port: int, seconds: float, results: Results, cpus: str | None) -> None:
    """One and two workers under the same conditions, both free to use every core."""
    for workers, name in ((1, "persona-proxy x1 (all cores)"), (2, X2)):
        proxy = PersonaProxy(upstream_port, workers=workers, cpus=cpus).start()
        try:
            for conns in (32, 128):
                result = wrk(proxy_url(proxy.port), chat_body("maid", False), PROXY_KEY, conns, seconds)
                results.load[(name, "json", conns)].append(result)
                print(f"  {name:<28} json c={conns:<3} {result.rps:9.0f} req/s  p99 {result.p99_ms:7.2f} ms")
        finally:
            proxy.stop()


def proxy_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def idle_streams(count: int, results: Results, cpus: str | None) -> None:
    hold_port = free_port()
    with HoldingUpstream(hold_port):
        route = f'\n[upstreams.hold]\nbase_url = "http://127.0.0.1:{hold_port}/v1"\nmax_connections = 4096\n' \
                f'\n[routes.hold]\nupstream = "hold"\nmodel = "{MODEL}"\n'
        proxy = PersonaProxy(hold_port, extra_routes=route, cpus=cpus).start()
        try:
            time.sleep(1)
            before = rss_mb(proxy.pid)
            ok, during = asyncio.run(open_idle_streams(proxy.port, PROXY_KEY, count, lambda: rss_mb(proxy.pid)))
        finally:
            proxy.stop()
    results.rss["idle streams base"] = before
    results.rss[f"{count} idle streams"] = during
    results.notes.append(f"{ok}/{count} idle streams received their first event")


def versions() -> str:
    names = ["starlette", "uvicorn", "httpx", "orjson", "uvloop", "httptools", "aiohttp", "litellm"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    wrk_v = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    return ", ".join([f"Python {platform.python_version()}", *found, f"nginx {nginx}", f"wrk {wrk_v}"])
