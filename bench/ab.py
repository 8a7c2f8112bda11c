"""A change as an A/B in one run: CPU time per request of two or more code versions.

    python -m bench.ab HEAD~1 HEAD                  # git revisions (exported with git archive)
    python -m bench.ab base=/tmp/old new=.          # or source trees holding app/
    python -m bench.ab HEAD bare                    # "bare" is bench/bare.py, the bare relay
    python -m bench.ab --rounds 10 --modes json:32,sse:32 A B
    python -m bench.ab off=. live=. --route-keys 'live=dataset = "/path/maid.jsonl"'   # one tree, two configs
    python -m bench.ab off=. on=. --client 'on=rpm = 100000000'     # a limited client (in-process counters)
    python -m bench.ab info=. quiet=. --log-level quiet=warning     # what the access line costs

Every version serves the same routes from the same nginx; they take turns
within each round (the others paused), and the figure compared is the CPU
time the proxy process spent per request, read from /proc: on a shared
machine it is far steadier than req/s. Each version is compared with the
first round by round, and the median of those paired ratios is printed, with
every round's ratio so the spread shows. Small effects need 8-10 rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from .load import chat_body, wrk
from .targets import PROXY_KEY, BareRelay, PersonaProxy, Target, free_port
from .upstream import Nginx

ROOT = Path(__file__).resolve().parent.parent


class Version(PersonaProxy):
    """persona-proxy run from a given source tree."""

    def __init__(self, upstream_port: int, source: Path, cpus: str | None, route_keys: str = "",
                 tail: str = "", log_level: str = "info", client: str = "") -> None:
        super().__init__(upstream_port, cpus=cpus, route_keys=route_keys, extra_routes=tail, log_level=log_level,
                         client=client)
        self.source = source

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv, env = super().command()
        return argv, {**env, "PYTHONPATH": str(self.source)}


def source_of(spec: str, scratch: Path) -> tuple[str, Path | None]:
    """``name=path``, a path, ``bare``, or a git revision; returns its name and tree (None: bare relay)."""
    name, _, value = spec.rpartition("=") if "=" in spec else (spec, "", spec)
    if value == "bare":
        return name, None
    if Path(value, "app").is_dir():
        return name, Path(value).resolve()
    tree = scratch / f"rev-{len(list(scratch.iterdir()))}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", value, "app"], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"{value!r} is neither a folder holding app/ nor a git revision")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return name, tree


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(target: Target, mode: str, connections: int, seconds: int) -> float:
    """Microseconds of the target's CPU per request, over one wrk run."""
    model = "maid-stream" if mode == "sse" else "maid"
    before = cpu_seconds(target.pid)
    result = wrk(f"http://127.0.0.1:{target.port}/v1/chat/completions", chat_body(model, mode == "sse"),
                 PROXY_KEY, connections, seconds)
    return (cpu_seconds(target.pid) - before) / (result.rps * seconds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="git revisions, folders holding app/, or 'bare'")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--modes", default="json:32,sse:32", help="json|sse:connections, comma-separated")
    parser.add_argument("--no-pin", action="store_true", help="don't pin load to CPU 0 and targets to CPU 1")
    add_version_options(parser)
    args = parser.parse_args()
    keys, tails, clients, levels = version_options(args)
    cpus = None if args.no_pin or len(os.sched_getaffinity(0)) < 2 else "1"
    if cpus:
        os.sched_setaffinity(0, {0})
    modes = [(m, int(c)) for m, _, c in (spec.partition(":") for spec in args.modes.split(","))]
    upstream = free_port()
    with tempfile.TemporaryDirectory(prefix="pp-ab-") as scratch, Nginx(upstream):
        sources = dict(source_of(spec, Path(scratch)) for spec in args.versions)
        targets = {name: (BareRelay(upstream, cpus=cpus) if tree is None else
                          Version(upstream, tree, cpus, keys.get(name, ""), tails.get(name, ""),
                                  levels.get(name, "info"), clients.get(name, ""))).start()
                   for name, tree in sources.items()}
        try:
            samples = run(targets, modes, args.rounds, args.seconds)
        finally:
            for target in targets.values():
                target.stop()
    print_results(samples, list(targets), modes)


def add_version_options(parser: argparse.ArgumentParser) -> None:
    """What each version may be given on its own, as ``NAME=VALUE`` (``bench.ab`` and ``bench.inproc``)."""
    parser.add_argument("--route-keys", action="append", default=[], metavar="NAME=TOML",
                        help="more keys for both routes of version NAME ('\\n' for a new line; ROUTE and UPSTREAM "
                             "stand for each route's name and upstream), e.g. a dataset or shadow tables")
    parser.add_argument("--tail", action="append", default=[], metavar="NAME=TOML",
                        help="more tables before the routes of version NAME, e.g. '[fidelity]\\nsample = 1.0'")
    parser.add_argument("--client", action="append", default=[], metavar="NAME=TOML",
                        help="version NAME's key belongs to a [clients.bench] with these keys, e.g. 'rpm = 100000000'")
    parser.add_argument("--log-level", action="append", default=[], metavar="NAME=LEVEL",
                        help="version NAME logs at LEVEL (default: info, what a user runs)")


def version_options(args: argparse.Namespace) -> tuple[dict[str, str], ...]:
    """Route keys, tails, clients and log levels, each by version name."""
    return tuple(_per_version(specs) for specs in (args.route_keys, args.tail, args.client, args.log_level))


def _per_version(specs: list[str]) -> dict[str, str]:
    return {name: text.replace("\\n", "\n") for name, _, text in (spec.partition("=") for spec in specs)}


def run(targets: dict[str, Target], modes: list[tuple[str, int]], rounds: int,
        seconds: int) -> dict[tuple[str, int, str], list[float]]:
    samples: dict[tuple[str, int, str], list[float]] = {}
    for _ in range(rounds):
        for mode, connections in modes:
            for name, target in targets.items():
                for other in targets.values():
                    other.pause()
                target.resume()
                samples.setdefault((mode, connections, name), []).append(
                    measure(target, mode, connections, seconds))
    for target in targets.values():
        target.resume()
    return samples


def print_results(samples: dict[tuple[str, int, str], list[float]], names: list[str],
                  modes: list[tuple[str, int]]) -> None:
    first = names[0]
    for mode, connections in modes:
        print(f"\n{mode} c={connections}: CPU us per request, median over rounds; ratio to {first}, paired by round")
        base = samples[mode, connections, first]
        for name in names:
            mine = samples[mode, connections, name]
            ratios = sorted(m / b for m, b in zip(mine, base, strict=True))
            print(f"  {name:12} {statistics.median(mine):7.1f} us   x{statistics.median(ratios):.3f}   "
                  f"rounds {' '.join(f'{r:.3f}' for r in ratios)}")


if __name__ == "__main__":
    main()
