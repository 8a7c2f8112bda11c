"""CPU per request in-process: the proxy's whole path (and its background work) without sockets.

    python -m bench.inproc base=e71c476 head=.          # git revisions or folders holding app/
    python -m bench.inproc off=. on=. --route-keys 'on=dataset = "/abs/maid.jsonl"' \\
        --tail 'on=[fidelity]\\nsample = 1.0'
    python -m bench.inproc --instructions base=e71c476 head=.   # instructions per request, under callgrind
    python -m bench.inproc off=. on=. --client 'on=rpm = 100000000'   # a limited client's requests
    python -m bench.inproc info=. quiet=. --log-level quiet=warning     # the access line's cost

Each version runs in a process of its own: it builds the app with an
in-memory upstream (the benchmark's canned answer and 50-event stream),
sends REQUESTS requests straight into it as ASGI calls, then stops it, so
usage and fidelity records are written and counted inside the timing. The
versions take turns, TRIALS times; the figure is process CPU time per
request (median of the trials, and every trial's ratio to the first
version). No kernel networking, no load generator: far steadier than wrk on
a shared machine, for changes of a few microseconds.

With ``--instructions`` each version runs under valgrind's callgrind twice,
with REQUESTS and twice as many requests, and the figure is the difference
in instructions executed divided by REQUESTS: the same for the same code
whatever else the machine is doing (start-up cancels out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .ab import add_version_options, source_of, version_options

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import asyncio, json, os, sys, time
import httpx
sys.path.insert(0, os.environ["BENCH_ROOT"])
from bench.targets import PERSONA
from bench.upstream import MODEL, completion_body, stream_body
from app.config import load_config
from app.ops.logs import setup_logging
from app.proxy.server import create_app

JSON, SSE = completion_body().encode(), stream_body().encode()

class Canned(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request):
        stream = b'"stream":true' in request.content.replace(b" ", b"")
        return httpx.Response(200, content=SSE if stream else JSON,
                              headers={"content-type": "text/event-stream" if stream else "application/json"})

def config(path, keys, tail, client):
    route = lambda name: (f'[routes.{name}]\nupstream = "up"\nmodel = "{MODEL}"\nsystem_prompt = "{PERSONA}"\n'
                          f'params = {{ temperature = 0.8 }}\n' + keys.replace("ROUTE", name).replace("UPSTREAM", "up"))
    # The same key either way: an anonymous one, or a limited client's (the check costs the same).
    server = f'[server]\ncheck_models = false\napi_keys_env = "{"BENCH_NO_KEYS" if client else "BENCH_CLIENT_KEYS"}"\n'
    clients = f'[clients.bench]\nkey_env = "BENCH_CLIENT_KEYS"\n{client}\n' if client else ""
    path.write_text(f'{server}[upstreams.up]\nbase_url = "http://up.invalid/v1"\n'
                    f'{tail}\n{clients}\n{route("maid")}\n{route("maid-stream")}\n', encoding="utf-8")

async def main(kind, count, path):
    config = load_config(path)
    # The level a user runs at (info writes an access line per request), to stderr as a server does.
    setup_logging(os.environ.get("BENCH_LOG_LEVEL", "info"), config.server.log_format)
    app = create_app(config, transports={"up": Canned()})
    model = "maid-stream" if kind == "sse" else "maid"
    body = json.dumps({"model": model, "stream": kind == "sse",
                       "messages": [{"role": "user", "content": "你好，請幫我泡一杯茶。"}]}).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"authorization", b"Bearer " + os.environ["BENCH_CLIENT_KEYS"].encode())],
        "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 1),
        "client": ("127.0.0.1", 2)}
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    async def send(message):
        pass
    async with app.router.lifespan_context(app):
        for i in range(50):  # warm: first-use imports and caches are not the path being measured
            await app(dict(scope), receive, send)
        started = time.process_time()
        for i in range(count):
            await app(dict(scope), receive, send)
            if i % 200 == 0:
                await asyncio.sleep(0)  # let the background tasks take their turns, as a server's loop does
    # Stopping is inside the timing: what is still queued (usage rows, replies to measure) is done there.
    print(json.dumps({"cpu_us": (time.process_time() - started) / count * 1e6}))

from pathlib import Path
p = Path(os.environ["BENCH_DIR"]) / "config.toml"
config(p, os.environ.get("BENCH_KEYS", ""), os.environ.get("BENCH_TAIL", ""), os.environ.get("BENCH_CLIENT", ""))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), p))
'''


def trial(tree: Path, kind: str, count: int, keys: str, tail: str, instructions: bool = False,
          extra: dict[str, str] | None = None) -> float:
    if instructions:
        return (_run(tree, kind, 2 * count, keys, tail, True, extra)
                - _run(tree, kind, count, keys, tail, True, extra)) / count
    return _run(tree, kind, count, keys, tail, False, extra)


def _run(tree: Path, kind: str, count: int, keys: str, tail: str, instructions: bool,
         extra: dict[str, str] | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="pp-inproc-") as scratch:
        env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_ROOT": str(ROOT), "BENCH_DIR": scratch,
               "BENCH_KEYS": keys, "BENCH_TAIL": tail, "PERSONA_PROXY_DATA_DIR": scratch,
               # Fixed hashing, so dict and set layouts (and what the collector finds) repeat run to run.
               "PYTHONHASHSEED": "0", "BENCH_CLIENT_KEYS": "bench-client-key-0123456789", **(extra or {})}
        argv = [sys.executable, "-c", CHILD, kind, str(count)]
        if instructions:
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        if instructions:
            found = re.search(r"Collected : (\d+)", done.stderr)
            if found is None:
                raise SystemExit("callgrind printed no instruction count:\n" + done.stderr[-2000:])
            return float(found.group(1))
        return float(json.loads(done.stdout.strip().splitlines()[-1])["cpu_us"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--kinds", default="json,sse")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    add_version_options(parser)
    args = parser.parse_args()
    keys, tails, clients, levels = version_options(args)
    with tempfile.TemporaryDirectory(prefix="pp-inproc-src-") as scratch:
        sources = dict(source_of(spec, Path(scratch)) for spec in args.versions)
        for kind in args.kinds.split(","):
            samples: dict[str, list[float]] = {name: [] for name in sources}
            for _ in range(args.trials):
                for name, tree in sources.items():
                    assert tree is not None, "the bare relay has no in-process form"
                    extra = {"BENCH_CLIENT": clients.get(name, ""), "BENCH_LOG_LEVEL": levels.get(name, "info")}
                    samples[name].append(trial(tree, kind, args.requests, keys.get(name, ""), tails.get(name, ""),
                                               args.instructions, extra))
            first = next(iter(sources))
            unit = "instructions" if args.instructions else "CPU us"
            print(f"\n{kind}: {unit} per request in-process, median of {args.trials} trials; ratio to {first} by trial")
            for name, values in samples.items():
                ratios = sorted(v / b for v, b in zip(values, samples[first], strict=True))
                print(f"  {name:10} {statistics.median(values):10.1f}   x{statistics.median(ratios):.3f}   "
                      f"trials {' '.join(f'{r:.3f}' for r in ratios)}")


if __name__ == "__main__":
    main()
