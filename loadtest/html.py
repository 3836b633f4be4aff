"""The HTML report of ``loadtest run``: one self-contained file, charts as inline SVG.

No script, stylesheet, font or image is fetched from anywhere: the charts are SVG
drawn here in Python from the result document (docs/decisions.md, "Load-test
report: inline SVG"), so the file opens the same offline, from a CI artefact or an
email attachment. Per scenario: latency over time (p50 and p99 per second),
throughput over time, the latency histogram, the figures and error counts; per
target: the server's gauges over time and its counters over the run; the SLO
verdicts on top, breaches marked.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

W, H = 560, 200
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 28
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right} th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
.breach{background:#fee2e2;color:#991b1b;font-weight:600} .met{background:#dcfce7}
.charts{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0} figcaption{font-size:12px;
color:#555} svg{background:#fafafa;border:1px solid #eee} .note{color:#92400e}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e12:
        return f"{int(value):,}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _svg_open(title: str) -> str:
    return (
        f'<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(title)}">'
    )


def line_chart(title: str, series: list[tuple[str, list[tuple[float, float]]]], unit: str) -> str:
    """An SVG line chart; ``series`` are (label, [(x, y), ...])."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return f"<figure><figcaption>{_esc(title)}: no data</figcaption></figure>"
    x_max = max(max(x for x, _ in points), 1.0)
    y_max = _nice_max(max(y for _, y in points))
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(x: float) -> float:
        return PAD_L + x / x_max * iw

    def sy(y: float) -> float:
        return PAD_T + ih - y / y_max * ih

    parts = [_svg_open(title)]
    for i in range(5):
        y = y_max * i / 4
        parts.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            f'stroke="#e5e5e5"/><text x="{PAD_L - 4}" y="{sy(y) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{_esc(f"{y:g}")}</text>'
        )
    parts.append(
        f'<text x="{W - PAD_R}" y="{H - 6}" font-size="10" text-anchor="end">'
        f"s (0 to {x_max:g}); {_esc(unit)}</text>"
    )
    for n, (label, pts) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{path}"/>'
        )
        parts.append(
            f'<text x="{PAD_L + 6 + n * 90}" y="{H - 6}" font-size="11" fill="{colour}">'
            f"{_esc(label)}</text>"
        )
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{_esc(title)}</figcaption></figure>"


def bar_chart(title: str, bars: list[tuple[str, float]], unit: str) -> str:
    if not bars or not any(v for _, v in bars):
        return f"<figure><figcaption>{_esc(title)}: no data</figcaption></figure>"
    y_max = _nice_max(max(v for _, v in bars))
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    bw = iw / len(bars)
    parts = [_svg_open(title)]
    for i, (label, value) in enumerate(bars):
        h = value / y_max * ih
        x = PAD_L + i * bw
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{PAD_T + ih - h:.1f}" '
            f'width="{max(bw - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{_esc(label)}: {_esc(_num(value))}'
            f"</title></rect>"
        )
        if len(bars) <= 16 or i % max(1, len(bars) // 12) == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{H - 14}" font-size="9" text-anchor="middle">'
                f"{_esc(label)}</text>"
            )
    parts.append(
        f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" font-size="10" text-anchor="end">'
        f'{y_max:g}</text><text x="{W - PAD_R}" y="{H - 2}" font-size="10" '
        f'text-anchor="end">{_esc(unit)}</text></svg>'
    )
    return f"<figure>{''.join(parts)}<figcaption>{_esc(title)}</figcaption></figure>"


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = ("figure", "value")) -> str:
    body = "".join(f"<tr><td>{_esc(a)}</td><td>{_esc(b)}</td></tr>" for a, b in rows)
    return f"<table><tr><th>{_esc(head[0])}</th><th>{_esc(head[1])}</th></tr>{body}</table>"


def render(doc: dict[str, Any]) -> str:
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        # nothing may be fetched: no network at all, even by accident
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Vestibule load test {_esc(doc['started_at'])}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>Vestibule load test: {'passed' if doc['passed'] else 'FAILED'}</h1>",
        f"<p>Started {_esc(doc['started_at'])}, {doc['duration_s']:g} s, targets "
        f"{_esc(', '.join(doc['targets']))}; scenarios {_esc(', '.join(doc['scenarios']))}. "
        f"Unexpected errors: {doc['errors']['unexpected']}.</p>",
    ]
    if doc["slo"]:
        rows = []
        for v in doc["slo"]:
            cls = "met" if v["met"] else "breach"
            actual = "not measured" if v["actual"] is None else _num(v["actual"])
            rows.append(
                f'<tr class="{cls}"><td>{_esc(v["objective"])}</td><td>{_esc(actual)}</td>'
                f"<td>{'met' if v['met'] else 'BREACHED'}</td></tr>"
            )
        out.append(
            '<h2>Objectives</h2><table id="slo"><tr><th>objective</th><th>measured</th>'
            f"<th>verdict</th></tr>{''.join(rows)}</table>"
        )
    harness = doc["harness"]
    out.append("<h2>Harness</h2>")
    out.append(
        _table(
            [
                (f"load process {p['index']}", f"{p['cpu_s']:.2f} s, {p['cpu_share']:.0%} of one")
                for p in harness["processes"]
            ],
            ("process", "CPU"),
        )
    )  # fmt: skip
    if harness["note"]:
        out.append(f'<p class="note">{_esc(harness["note"])}</p>')
    for name, body in doc["scenarios"].items():
        out.append(f'<h2 id="scenario-{_esc(name)}">{_esc(name)}</h2><div class="charts">')
        timeline = body["timeline"]
        out.append(
            line_chart(
                f"{name}: latency over time",
                [
                    ("p50", [(p["t"], p["p50_ms"]) for p in timeline]),
                    ("p99", [(p["t"], p["p99_ms"]) for p in timeline]),
                ],
                "ms",
            )
        )
        out.append(
            line_chart(
                f"{name}: throughput over time",
                [("per second", [(p["t"], p["count"]) for p in timeline])],
                "operations/s",
            )
        )
        out.append(
            bar_chart(
                f"{name}: latency histogram",
                [(f"≤{b['le_ms']:g}", b["count"]) for b in body["histogram"]],
                "count per latency bucket (ms)",
            )
        )
        out.append("</div>")
        out.append(_table([(k, _num(v)) for k, v in body["figures"].items()]))
        errors = {**{f"unexpected {k}": v for k, v in body["errors"].items()},
                  **{f"refused {k}": v for k, v in body["refused"].items()}}  # fmt: skip
        if errors:
            out.append(_table([(k, _num(v)) for k, v in errors.items()], ("error", "count")))
        if body["first_errors"]:
            items = "".join(f"<li>{_esc(e)}</li>" for e in body["first_errors"])
            out.append(f"<p>First errors:</p><ul>{items}</ul>")
    for target in doc["server"]:
        out.append(f"<h2>Server {_esc(target['url'])} (from /metrics)</h2><div class='charts'>")
        names = sorted({k for g in target["gauges"] for k in g if k != "t"})
        out.append(
            line_chart(
                "server gauges over time",
                [(n.replace("vestibule_", ""), [(g["t"], g.get(n, 0.0)) for g in target["gauges"]])
                 for n in names],
                "count",
            )
        )  # fmt: skip
        out.append(
            bar_chart(
                "server join histogram (hello -> welcome, per bucket)",
                _unbucket(target["join_histogram"]),
                "s (bucket upper bound)",
            )
        )
        out.append("</div>")
        counters: list[tuple[str, str]] = [
            ("joins (welcome sent)", _num(target["joins"])),
            ("relayed signals", _num(target["relayed"])),
        ]
        counters += [(f"errors {k}", _num(v)) for k, v in sorted(target["errors"].items())]
        shown = ("vestibule_messages_in_total", "vestibule_presence")
        counters += [
            (k, _num(v)) for k, v in sorted(target["counters"].items()) if k.startswith(shown)
        ]
        out.append(_table(counters, ("counter (change over the run)", "value")))
    out.append("</body></html>")
    return "\n".join(out)


def _unbucket(cumulative: dict[str, float]) -> list[tuple[str, float]]:
    def bound(key: str) -> float:
        return math.inf if key == "+Inf" else float(key)

    out = []
    previous = 0.0
    for key in sorted(cumulative, key=bound):
        out.append((key, cumulative[key] - previous))
        previous = cumulative[key]
    return out


def write(doc: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(render(doc), encoding="utf-8")
