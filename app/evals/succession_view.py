"""The succession report as a terminal table (the same look as ``eval``) and as one HTML page."""

from __future__ import annotations

from html import escape
from typing import Any

from .html import STYLE
from .report import display_width


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: Any, spec: str = "{:.2f}") -> str:
    return "-" if value is None else spec.format(value)


def _latency(value: dict[str, Any]) -> str:
    return "-" if not value or value["p50"] is None else f"{value['p50']:.0f} / {value['p95']:.0f}"


def _paired(key: str, spec: str = "{:.0%}") -> Any:
    return lambda e: "-" if not e.get("paired") else spec.format(e["paired"][key])


def _counted(value: Any, count: int, spec: Any = _pct) -> str:
    return "-" if value is None else f"{spec(value)} ({count})"


ROWS: list[tuple[str, Any]] = [
    ("role", lambda e: e["role"]),
    ("requests", lambda e: f"{e['requests']:,}"),
    ("conversations", lambda e: f"{e['conversations']:,}"),
    ("errors", lambda e: f"{e['errors']} ({_pct(e['error_rate'])})" if e["requests"] else "-"),
    ("latency p50 / p95 ms", lambda e: _latency(e["latency_ms"])),
    ("first byte p50 / p95 ms", lambda e: _latency(e["ttfb_ms"])),
    ("tokens in / out", lambda e: f"{e['prompt_tokens']:,} / {e['completion_tokens']:,}"),
    ("cost USD", lambda e: _num(e["cost_usd"], "{:.4f}")),
    ("live fidelity (0-1)", lambda e: _counted(e["fidelity"], e["replies"], _num)),
    ("in the training script", lambda e: _counted(e["script"], e["replies"])),
    ("persona markers", lambda e: _counted(e["markers"], e["replies"])),
    ("median length (chars)", lambda e: _num(e["length"], "{:.0f}")),
    ("breaks of character", lambda e: _counted(e["breaks"], e["replies"])),
    ("chrF to the served reply", _paired("chrf", "{:.2f}")),
    ("same script as served", _paired("script_agreement")),
    ("breaks: shadow / served", lambda e: "-" if not e.get("paired") else
        f"{e['paired']['breaks']:.0%} / {e['paired']['served_breaks']:.0%} ({e['paired']['pairs']} pairs)"),
]


def _reference_cells(ref: dict[str, Any] | None) -> list[str]:
    if ref is None:
        return ["-"] * len(ROWS)
    known = {"live fidelity (0-1)": "1.00 (ref)", "in the training script": f"{ref['in_script']:.0%}",
             "persona markers": _pct(ref["markers"]), "median length (chars)": f"{ref['length']:.0f}",
             "breaks of character": _pct(ref["breaks"]), "role": "reference",
             "requests": f"{ref['replies']} replies"}
    return [known.get(title, "-") for title, _ in ROWS]


def table(data: dict[str, Any]) -> list[str]:
    """Measures as rows; the training data, then each target, as columns."""
    entries = data["targets"]
    columns = [["training data", *_reference_cells(data["reference"])]]
    for entry in entries:
        columns.append([entry["target"], *(str(read(entry)) for _, read in ROWS)])
    rows = [["", *(title for title, _ in ROWS)], *columns]
    lines = list(zip(*rows, strict=True))
    widths = [max(display_width(cell) for cell in col) for col in rows]
    return ["  ".join(cell + " " * (w - display_width(cell)) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]


COLOURS = ("#c2185b", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f")


def render(data: dict[str, Any]) -> str:
    """A self-contained page: the verdict, live fidelity per day as a chart, then the table."""
    head = (f"<!doctype html><html lang=\"zh-Hant\"><meta charset=\"utf-8\"><title>persona-proxy succession: "
            f"{escape(data['route'])}</title><style>{STYLE}svg{{background:#fafafa;border:1px solid #ddd}}"
            "</style><body>")
    parts = [head, f"<h1>Succession of route <code>{escape(data['route'])}</code></h1>",
             f"<p class=note>since {escape(data['since'])}. {escape(data['verdict'])}</p>",
             "<h2>Live fidelity per day</h2>", _chart(data["targets"])]
    rows = [["", "training data", *(e["target"] for e in data["targets"])]]
    cells = _reference_cells(data["reference"])
    for i, (title, read) in enumerate(ROWS):
        rows.append([title, cells[i], *(str(read(e)) for e in data["targets"])])
    body = "".join("<tr>" + "".join(_cell(c, heading=i == 0 or j == 0) for j, c in enumerate(row)) + "</tr>"
                   for i, row in enumerate(rows))
    parts.append(f"<h2>Every target</h2><table>{body}</table>")
    return "".join(parts) + "</body></html>\n"


def _cell(text: str, *, heading: bool) -> str:
    tag = "th" if heading else "td"
    return f"<{tag}>{escape(text)}</{tag}>"


def _chart(entries: list[dict[str, Any]], width: int = 720, height: int = 240) -> str:
    days = sorted({d["day"] for e in entries for d in e["daily"] if d["fidelity"] is not None})
    if not days:
        return "<p class=muted>no measured replies in this window</p>"
    def x(day: str) -> float:
        return 40 + (days.index(day) * (width - 60) / max(1, len(days) - 1))

    def y(value: float) -> float:
        return height - 30 - value * (height - 50)

    marks = [f'<line x1="40" y1="{y(v):.0f}" x2="{width - 20}" y2="{y(v):.0f}" stroke="#ddd"/>'
             f'<text x="4" y="{y(v) + 4:.0f}" font-size="11">{v:.1f}</text>' for v in (0.0, 0.5, 1.0)]
    marks.append(f'<line x1="40" y1="{y(1.0):.0f}" x2="{width - 20}" y2="{y(1.0):.0f}" stroke="#888" '
                 'stroke-dasharray="4 3"><title>training data (reference)</title></line>')
    legend = []
    for i, entry in enumerate(e for e in entries if any(d["fidelity"] is not None for d in e["daily"])):
        colour = COLOURS[i % len(COLOURS)]
        points = [(x(d["day"]), y(d["fidelity"]), d) for d in entry["daily"] if d["fidelity"] is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
        marks.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        marks += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{escape(entry["target"])} '
                  f'{d["day"]}: {d["fidelity"]:.2f} over {d["replies"]} replies</title></circle>'
                  for px, py, d in points]
        legend.append(f'<span style="color:{colour}">■</span> {escape(entry["target"])} ({escape(entry["role"])})')
    labels = [f'<text x="{x(d):.0f}" y="{height - 10}" font-size="11" text-anchor="middle">{d[5:]}</text>'
              for d in days]
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
            + "".join(marks + labels) + "</svg><p class=note>" + " · ".join(legend)
            + " · dashed: the training data</p>")
