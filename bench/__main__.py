"""Entry point: ``python -m bench``. See ``bench/run.py`` for what is measured."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from pathlib import Path

from .report import render
from .run import Results, endpoints, idle_streams, only_running, run_round, run_ttfb, versions, workers_round
from .targets import BareRelay, LiteLLM, PersonaProxy, free_port, litellm_binary, rss_mb
from .upstream import Nginx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="repeated rounds; figures are medians")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--ttfb-requests", type=int, default=300, help="sequential requests per TTFB sample")
    parser.add_argument("--idle-streams", type=int, default=1000, help="open streams for the memory probe")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if installed")
    parser.add_argument("--no-pin", action="store_true",
                        help="don't pin: by default the load generator and nginx run on CPU 0, "
                             "each single-worker proxy on CPU 1")
    parser.add_argument("--out", type=Path, help="write the markdown report here too")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    results = Results()
    upstream_port = free_port()
    cores = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cores) >= 2
    proxy_cpus = str(cores[1]) if pin else None
    all_cpus = ",".join(map(str, cores)) if pin else None
    if pin:
        # Children (nginx, wrk, the TTFB probe in this process) inherit this.
        os.sched_setaffinity(0, {cores[0]})
        results.notes.append(f"pinned: wrk, nginx and probes on CPU {cores[0]}; each single-worker proxy "
                             f"on CPU {cores[1]}; the worker comparison uses CPUs {all_cpus}")
    with Nginx(upstream_port):
        targets = {"persona-proxy": PersonaProxy(upstream_port, cpus=proxy_cpus).start(),
                   "bare-relay": BareRelay(upstream_port, cpus=proxy_cpus).start()}
        if not args.no_litellm and litellm_binary():
            targets["litellm"] = LiteLLM(upstream_port, cpus=proxy_cpus).start()
        else:
            results.notes.append("LiteLLM not installed: no LiteLLM column "
                                 "(pip install 'litellm[proxy]==1.108.7', or set LITELLM_BIN)")
        try:
            for name, target in targets.items():
                results.rss[f"{name} idle"] = rss_mb(target.pid)
            eps = endpoints(upstream_port, targets)
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}/{args.rounds}", flush=True)
                run_round(eps, results, args.seconds, targets)
                run_ttfb(eps, results, args.ttfb_requests, targets)
                only_running(targets, "")
                workers_round(upstream_port, args.seconds, results, all_cpus)
            only_running(targets, "")
            for name, target in targets.items():
                target.resume()
                results.rss[f"{name} after load"] = rss_mb(target.pid)
        finally:
            for target in targets.values():
                target.stop()
    idle_streams(args.idle_streams, results, proxy_cpus)
    header = (f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
              f"({platform.processor() or platform.machine()}), {args.rounds} rounds x {args.seconds:g} s.\n"
              f"Versions: {versions()}.")
    report = render(results, header)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
