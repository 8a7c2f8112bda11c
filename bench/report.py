"""Turning benchmark results into one markdown report, with the targets checked."""

from __future__ import annotations

import statistics

from .load import LoadResult
from .run import CONCURRENCY, X1, X2, Results

PP, LL, DIRECT, BARE = "persona-proxy", "litellm", "direct", "bare-relay"


def _med(items: list[LoadResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in items)


def _get(results: Results, name: str, mode: str, conns: int, attr: str) -> float | None:
    items = results.load.get((name, mode, conns))
    return _med(items, attr) if items else None


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def load_table(results: Results) -> list[str]:
    lines = ["| mode | c | direct req/s | proxy req/s | proxy p50 / p90 / p99 ms | overhead p50 / p99 ms "
             "| LiteLLM req/s | LiteLLM p50 / p99 ms | proxy / LiteLLM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for mode in ("json", "sse"):
        for conns in CONCURRENCY:
            d = {a: _get(results, DIRECT, mode, conns, a) for a in ("rps", "p50_ms", "p99_ms")}
            p = {a: _get(results, PP, mode, conns, a) for a in ("rps", "p50_ms", "p90_ms", "p99_ms", "errors")}
            lite = {a: _get(results, LL, mode, conns, a) for a in ("rps", "p50_ms", "p99_ms")}
            over50 = p["p50_ms"] - d["p50_ms"] if p["p50_ms"] is not None and d["p50_ms"] is not None else None
            over99 = p["p99_ms"] - d["p99_ms"] if p["p99_ms"] is not None and d["p99_ms"] is not None else None
            ratio = p["rps"] / lite["rps"] if p["rps"] and lite["rps"] else None
            label = "stream (50 events)" if mode == "sse" else "non-stream"
            lines.append(
                f"| {label} | {conns} | {_fmt(d['rps'])} | {_fmt(p['rps'])} | {_fmt(p['p50_ms'], '.2f')} / "
                f"{_fmt(p['p90_ms'], '.2f')} / {_fmt(p['p99_ms'], '.2f')} | {_fmt(over50, '.2f')} / "
                f"{_fmt(over99, '.2f')} | {_fmt(lite['rps'])} | {_fmt(lite['p50_ms'], '.1f')} / "
                f"{_fmt(lite['p99_ms'], '.1f')} | {_fmt(ratio, '.1f')}x |")
    return lines


def bare_table(results: Results) -> list[str]:
    """persona-proxy against the 60-line Starlette + aiohttp pass-through, measured in the same rounds."""
    lines = ["| mode | c | bare relay req/s | proxy req/s | proxy / bare | bare p99 ms | proxy p99 ms "
             "| p99 proxy / bare |", "|---|---|---|---|---|---|---|---|"]
    for mode in ("json", "sse"):
        for conns in CONCURRENCY:
            b, p = _get(results, BARE, mode, conns, "rps"), _get(results, PP, mode, conns, "rps")
            b99, p99 = _get(results, BARE, mode, conns, "p99_ms"), _get(results, PP, mode, conns, "p99_ms")
            label = "stream (50 events)" if mode == "sse" else "non-stream"
            ratio = p / b if p and b else None
            tail = p99 / b99 if p99 and b99 else None
            lines.append(f"| {label} | {conns} | {_fmt(b)} | {_fmt(p)} | {_fmt(ratio, '.2f')} | "
                         f"{_fmt(b99, '.1f')} | {_fmt(p99, '.1f')} | {_fmt(tail, '.1f')}x |")
    return lines


def responses_table(results: Results) -> list[str]:
    """The Responses API beside chat on the same routes and upstream, c=32."""
    lines = ["| API | mode | direct req/s | proxy req/s | proxy / direct | proxy p50 / p99 ms |",
             "|---|---|---|---|---|---|"]
    for api, modes in (("chat", ("json", "sse")), ("responses", ("rjson", "rsse"))):
        for mode in modes:
            d, p = _get(results, DIRECT, mode, 32, "rps"), _get(results, PP, mode, 32, "rps")
            ratio = p / d if p and d else None
            label = "stream (50 events)" if mode.endswith("sse") else "non-stream"
            lines.append(f"| {api} | {label} | {_fmt(d)} | {_fmt(p)} | {_fmt(ratio, '.2f')} | "
                         f"{_fmt(_get(results, PP, mode, 32, 'p50_ms'), '.2f')} / "
                         f"{_fmt(_get(results, PP, mode, 32, 'p99_ms'), '.2f')} |")
    return lines


def ttfb_table(results: Results) -> list[str]:
    lines = ["| target | non-stream p50 / p99 ms | stream first event p50 / p99 ms |", "|---|---|---|"]
    for name in (DIRECT, PP, LL):
        cells = []
        for mode in ("json", "sse"):
            samples = sorted(results.ttfb.get((name, mode), []))
            cells.append("n/a" if not samples else
                         f"{statistics.median(samples):.2f} / {samples[int(len(samples) * 0.99) - 1]:.2f}")
        if any(c != "n/a" for c in cells):
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return lines


def _ttfb_p50(results: Results, name: str, mode: str) -> float | None:
    samples = results.ttfb.get((name, mode))
    return statistics.median(samples) if samples else None


def targets(results: Results) -> list[tuple[str, str, bool | None]]:
    g = _get
    d50, p50 = g(results, DIRECT, "json", 1, "p50_ms"), g(results, PP, "json", 1, "p50_ms")
    d99, p99 = g(results, DIRECT, "json", 1, "p99_ms"), g(results, PP, "json", 1, "p99_ms")
    rows: list[tuple[str, str, bool | None]] = []

    def add(text: str, value: float | None, ok: bool | None, spec: str = ".2f") -> None:
        rows.append((text, _fmt(value, spec), None if value is None else ok))

    over50 = None if p50 is None or d50 is None else p50 - d50
    over99 = None if p99 is None or d99 is None else p99 - d99
    add("non-stream overhead p50 at c=1 <= 0.5 ms", over50, over50 is not None and over50 <= 0.5)
    add("non-stream overhead p99 at c=1 <= 2 ms", over99, over99 is not None and over99 <= 2)
    for conns in (32, 128):
        rps = g(results, PP, "json", conns, "rps")
        add(f"non-stream req/s at c={conns} >= 3000", rps, rps is not None and rps >= 3000, ".0f")
        lite = g(results, LL, "json", conns, "rps")
        ratio = rps / lite if rps and lite else None
        add(f"non-stream req/s at c={conns} >= 25x LiteLLM", ratio, ratio is not None and ratio >= 25, ".1f")
    tail = g(results, PP, "json", 128, "p99_ms")
    add("non-stream p99 at c=128 <= 80 ms", tail, tail is not None and tail <= 80)
    t_d, t_p = _ttfb_p50(results, DIRECT, "sse"), _ttfb_p50(results, PP, "sse")
    t_over = None if t_d is None or t_p is None else t_p - t_d
    add("stream first-event overhead p50 at c=1 <= 1 ms", t_over, t_over is not None and t_over <= 1)
    srps = g(results, PP, "sse", 32, "rps")
    add("50-event streams/s at c=32 >= 1500", srps, srps is not None and srps >= 1500, ".0f")
    slite = g(results, LL, "sse", 32, "rps")
    sratio = srps / slite if srps and slite else None
    add("streams/s at c=32 >= 60x LiteLLM", sratio, sratio is not None and sratio >= 60, ".1f")
    idle = results.rss.get(f"{PP} idle")
    add("idle RSS <= 70 MB", idle, idle is not None and idle <= 70, ".1f")
    streams_key = next((k for k in results.rss if k.endswith("idle streams") and k[0].isdigit()), None)
    base = results.rss.get("idle streams base")
    added = results.rss[streams_key] - base if streams_key and base is not None else None
    add("1,000 idle streams add <= 100 MB", added, added is not None and added <= 100, ".1f")
    one, two = g(results, X1, "json", 128, "rps"), g(results, X2, "json", 128, "rps")
    scale = two / one if one and two else None
    add("two workers >= 1.6x one worker (c=128, both on all cores)", scale, scale is not None and scale >= 1.6)
    return rows


def bare_targets(results: Results) -> list[tuple[str, str, bool | None]]:
    """The targets measured against the bare relay in the same run (a share of it, not absolute figures)."""
    rows: list[tuple[str, str, bool | None]] = []
    for mode, conns, floor in (("json", 32, 0.65), ("json", 128, 0.65), ("sse", 32, 0.80)):
        proxy, bare = _get(results, PP, mode, conns, "rps"), _get(results, BARE, mode, conns, "rps")
        share = proxy / bare if proxy and bare else None
        what = "non-stream req/s" if mode == "json" else "50-event streams/s"
        rows.append((f"{what} at c={conns} >= {floor:.2f} of the bare relay", _fmt(share, ".2f"),
                     None if share is None else share >= floor))
    for mode in ("json", "sse"):
        # Round by round: a tail that comes and goes must stay within bounds in every run.
        ratios = [p.p99_ms / b.p99_ms for p, b in zip(results.load.get((PP, mode, 128), []),
                                                      results.load.get((BARE, mode, 128), []), strict=False)]
        what = "non-stream" if mode == "json" else "stream"
        met = all(r <= 1.5 for r in ratios) if ratios else None
        rows.append((f"{what} p99 at c=128 <= 1.5x the bare relay's, every round",
                     " / ".join(f"{r:.2f}" for r in ratios) or "n/a", met))
    d50, p50 = _get(results, DIRECT, "json", 1, "p50_ms"), _get(results, PP, "json", 1, "p50_ms")
    b50 = _get(results, BARE, "json", 1, "p50_ms")
    over = p50 - d50 if p50 is not None and d50 is not None else None
    bare_over = f" (bare relay {b50 - d50:.2f})" if b50 is not None and d50 is not None else ""
    rows.append(("non-stream overhead p50 at c=1 <= 0.25 ms", _fmt(over, ".2f") + bare_over,
                 None if over is None else over <= 0.25))
    idle = results.rss.get(f"{PP} idle")
    rows.append(("idle RSS <= 55 MB", _fmt(idle, ".1f"), None if idle is None else idle <= 55))
    return rows


def render(results: Results, header: str) -> str:
    lines = ["# persona-proxy benchmark", "", header, "",
             "Each figure is the median over rounds; overhead = proxy minus direct at the same percentile.", "",
             "## Throughput and latency", "", *load_table(results), ""]
    for conns in (32, 128):
        two = _get(results, X2, "json", conns, "rps")
        one = _get(results, X1, "json", conns, "rps")
        if one and two:
            p99_one, p99_two = _get(results, X1, "json", conns, "p99_ms"), _get(results, X2, "json", conns, "p99_ms")
            lines.append(f"Workers on all cores, non-stream c={conns}: one {one:.0f} req/s (p99 {p99_one:.1f} ms), "
                         f"two {two:.0f} req/s (p99 {p99_two:.1f} ms), {two / one:.2f}x.  ")
    lines += ["", "## Against a bare relay (same libraries, same upstream, same rounds)", "", *bare_table(results), "",
              "## Responses API beside chat (c=32, same routes and upstream)", "", *responses_table(results), "",
              "## Time to first byte (c=1, sequential, one connection)", "", *ttfb_table(results), "",
              "## Memory (RSS)", "", "| what | MB |", "|---|---|",
              *(f"| {k} | {v:.1f} |" for k, v in results.rss.items()), "",
              "## Targets", "", "| target | measured | met |", "|---|---|---|",
              *(f"| {t} | {v} | {'yes' if ok else 'no' if ok is False else 'not measured'} |"
                for t, v, ok in targets(results)), "",
              "## Targets against the bare relay", "", "| target | measured | met |", "|---|---|---|",
              *(f"| {t} | {v} | {'yes' if ok else 'no' if ok is False else 'not measured'} |"
                for t, v, ok in bare_targets(results))]
    if results.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in results.notes)]
    return "\n".join(lines) + "\n"
