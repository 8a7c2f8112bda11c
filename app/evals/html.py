"""An eval as one self-contained HTML page: bars per measure, then every prompt's replies side by side.

No script, no font or style sheet from the network: the page opens anywhere.
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,"Noto Sans CJK TC","PingFang TC",sans-serif;margin:2rem;color:#222;
max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.chart{display:grid;grid-template-columns:minmax(14rem,24rem) 1fr 4rem;gap:.3rem .6rem;align-items:center;
margin:.4rem 0 1rem}
.bar{height:1rem;background:#c2185b;border-radius:2px}.bar.ref{background:#888}.muted{color:#888}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border:1px solid #ddd;padding:.4rem;
vertical-align:top;text-align:left;overflow-wrap:anywhere}th{background:#f6f6f6}.note{font-size:.85rem;color:#555}
"""
# (key in the results, title, how a value is shown, the largest value for a full bar)
MEASURES = [("fidelity", "Fidelity (0-1)", "{:.2f}", 1.0),
            ("script", "Replies in the training script", "{:.0%}", 1.0),
            ("markers", "Persona markers used", "{:.0%}", 1.0),
            ("length", "Median length (characters)", "{:.0f}", None),
            ("closeness", "chrF to the reference reply", "{:.2f}", 1.0),
            ("breaks", "Replies breaking character", "{:.0%}", 1.0),
            ("judge", "Judge's score (1-5)", "{:.1f}", 5.0)]


def render(data: dict[str, Any]) -> str:
    entries = data["targets"]
    parts = [f"<!doctype html><html lang=\"zh-Hant\"><meta charset=\"utf-8\"><title>persona-proxy eval: "
             f"{escape(data['route'])}</title><style>{STYLE}</style><body>",
             f"<h1>Persona fidelity of route <code>{escape(data['route'])}</code></h1>",
             f"<p class=note>{data['prompts']} held-out prompts; training replies are mostly "
             f"<b>{escape(data['script'])}</b>; markers: "
             + ", ".join(f"{escape(m)} ({s:.0%})" for m, s in data["markers"].items()) + "</p>"]
    for key, title, spec, top in MEASURES:
        if key != "judge" or any("judge" in e for e in entries):
            parts.append(_chart(entries, key, title, spec, top))
    if data.get("rubric"):
        parts.append(f"<h2>The judge's rubric</h2><pre>{escape(data['rubric'])}</pre>")
    parts.append(_replies(entries))
    return "".join(parts) + "</body></html>\n"


def _chart(entries: list[dict[str, Any]], key: str, title: str, spec: str, top: float | None) -> str:
    values = [e.get(key) for e in entries]
    known = [v for v in values if isinstance(v, int | float)]
    scale = top or max(known, default=1) or 1
    rows = []
    for entry, value in zip(entries, values, strict=True):
        label = escape(entry["target"]) + ("" if entry["status"] in ("ok", "reference") else
                                           f" <span class=muted>({escape(entry['status'])})</span>")
        if not isinstance(value, int | float):
            rows.append(f"<div>{label}</div><div class=muted>not measured</div><div></div>")
            continue
        width = max(0.0, min(100.0, 100 * value / scale))
        kind = "bar ref" if entry["status"] == "reference" else "bar"
        rows.append(f"<div>{label}</div><div><div class=\"{kind}\" style=\"width:{width:.1f}%\"></div></div>"
                    f"<div>{spec.format(value)}</div>")
    return f"<h2>{escape(title)}</h2><div class=chart>{''.join(rows)}</div>"


def _replies(entries: list[dict[str, Any]]) -> str:
    targets = [e for e in entries[1:] if e.get("replies")]
    if not targets:
        return ""
    head = "<tr><th>prompt</th><th>reference (training)</th>" + "".join(
        f"<th>{escape(e['target'])}</th>" for e in targets) + "</tr>"
    rows = []
    for i, first in enumerate(targets[0]["replies"]):
        cells = "".join(f"<td>{escape(e['replies'][i]['reply'] or '—')}</td>" for e in targets)
        rows.append(f"<tr><td>{escape(first['prompt'])}</td><td>{escape(first['reference'] or '—')}</td>{cells}</tr>")
    return f"<h2>Replies side by side</h2><table>{head}{''.join(rows)}</table>"
