"""What succession costs: live fidelity per reply in-process, and a shadow's cost to the client's latency.

    python -m bench.succession                 # both parts
    python -m bench.succession --micro         # in-process figures only

In-process: microseconds to assemble a 50-event stream's text from the bytes
the client got, to measure one reply, and the whole per-reply record.
Latency: the same proxy tree with no shadow, and with a 100% shadow whose
upstream takes 2 s at the default max_in_flight (4) and at 1024, taking
turns in each round; wrk's p50 and p99 per round, at c=1 and c=16.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

from .load import chat_body, wrk
from .targets import PROXY_KEY, PersonaProxy, free_port, wait_ready
from .upstream import REPLY, Nginx, stream_body

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "maid_sample.jsonl"


def micro() -> None:
    from app.ops.fidelity import FidelityRecord  # noqa: F401  (imported for the record's cost below)
    from app.proxy.succession.live import LiveFidelity, Reply
    from app.proxy.succession.replies import reply_of
    from app.tuning import fewshot
    from app.tuning.fidelity import Profile, measure_reply

    profile = Profile.of([r for _, r in fewshot.exchanges(SAMPLE)])
    raw = stream_body().encode()
    assert (reply_of(raw, "chat", True)[0] or "").startswith("主人主人")

    class _Metrics:
        pass

    live = LiveFidelity(lambda records: None, _Metrics())  # type: ignore[arg-type]

    def record() -> None:
        live.record(Reply(0.0, "maid", "m@u", "primary", "chat", True, None, None, raw, profile))

    def best(stmt, number: int = 2000) -> float:  # type: ignore[no-untyped-def]
        return min(timeit.repeat(stmt, number=number, repeat=7)) / number * 1e6

    long = REPLY * 8
    print(f"stream text from 50 events ({len(raw)} bytes): {best(lambda: reply_of(raw, 'chat', True)):.1f} us")
    print(f"measure a {len(REPLY)}-char reply: {best(lambda: measure_reply(REPLY, profile)):.1f} us; "
          f"{len(long)} chars: {best(lambda: measure_reply(long, profile)):.1f} us")
    print(f"whole record of a 50-event stream (assemble + measure + row): {best(record):.1f} us")


def latency(rounds: int, seconds: int) -> None:
    slow_port = free_port()
    cpus = "1" if len(os.sched_getaffinity(0)) >= 2 else None
    # The slow upstream answers as many requests as the proxy: it runs beside wrk and nginx on CPU 0,
    # or it would take the proxy's core from it and the bench would measure that instead.
    pin = ["taskset", "-c", "0"] if cpus else []
    slow = subprocess.Popen([*pin, sys.executable, "-m", "bench.slow", str(slow_port), "2"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if cpus:
        os.sched_setaffinity(0, {0})
    upstream = free_port()
    shadow = '\n[[routes.ROUTE.shadow]]\nupstream = "slow"\nmodel = "slow-maid"\nsample = 1.0\n'
    wide = shadow + "max_in_flight = 1024\n"
    tail = f'[upstreams.slow]\nbase_url = "http://127.0.0.1:{slow_port}/v1"\nfirst_byte_timeout = 30\n'
    try:
        wait_ready(f"http://127.0.0.1:{slow_port}/v1/models", {}, slow)
        with Nginx(upstream):
            targets = {"no shadow": PersonaProxy(upstream, cpus=cpus),
                       "shadow, cap 4": PersonaProxy(upstream, cpus=cpus, route_keys=shadow, extra_routes=tail),
                       "shadow, cap 1024": PersonaProxy(upstream, cpus=cpus, route_keys=wide, extra_routes=tail)}
            for target in targets.values():
                target.start()
            try:
                _rounds(targets, rounds, seconds)
            finally:
                for target in targets.values():
                    target.stop()
    finally:
        slow.terminate()
        slow.wait()


def _rounds(targets: dict[str, PersonaProxy], rounds: int, seconds: int) -> None:
    results: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    for _ in range(rounds):
        for connections in (1, 16):
            for name, target in targets.items():
                for other in targets.values():
                    other.pause()
                target.resume()
                time.sleep(0.2)
                run = wrk(f"http://127.0.0.1:{target.port}/v1/chat/completions", chat_body("maid", False),
                          PROXY_KEY, connections, seconds)
                results.setdefault((connections, name), []).append((run.p50_ms, run.p99_ms, run.rps))
    for target in targets.values():
        target.resume()
    for (connections, name), runs in sorted(results.items()):
        p50s = " ".join(f"{r[0]:.2f}" for r in runs)
        p99s = " ".join(f"{r[1]:.2f}" for r in runs)
        print(f"c={connections:<3} {name:18} p50 {statistics.median(r[0] for r in runs):6.2f} ms ({p50s})   "
              f"p99 {statistics.median(r[1] for r in runs):6.2f} ms ({p99s})   "
              f"{statistics.median(r[2] for r in runs):7.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.succession", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--micro", action="store_true", help="only the in-process figures")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    micro()
    if not args.micro:
        latency(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
