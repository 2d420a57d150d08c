"""An HTML timeline of histories that are not linearizable, one section per key.

One row per client; each operation is a bar from its invoke to its return (an unknown outcome
runs to the right edge, hatched). Green: in the longest order the search could build; red: the
rest (the first red operation that was invoked is where every order broke down). Hover a bar
for its input and output; the order found is listed under the timeline.
"""

from __future__ import annotations

import html
import math

from .history import Operation
from .search import Outcome


def _section(key: str, ops: list[Operation], outcome: Outcome) -> str:
    finite = [t for o in ops for t in (o.call, o.ret) if not math.isinf(t)]
    t0, t1 = min(finite), max(finite)
    span = max(t1 - t0, 1e-3)
    width, row_h = 1100, 22
    clients = sorted({o.client for o in ops})
    rows = {c: i for i, c in enumerate(clients)}
    order = {op: n for n, op in enumerate(outcome.longest)}
    bars = []
    for i, o in enumerate(ops):
        x = 150 + (o.call - t0) / span * (width - 170)
        end = width - 10 if math.isinf(o.ret) else 150 + (o.ret - t0) / span * (width - 170)
        colour = "#7bc47f" if i in order else "#e06c6c"
        y = rows[o.client] * row_h + 4
        tip = html.escape(f"{o.describe()}  [{o.call - t0:.3f}s .. "
                          f"{'unknown' if math.isinf(o.ret) else f'{o.ret - t0:.3f}s'}]"
                          + (f"  (#{order[i] + 1} in the order found)" if i in order else ""))
        dash = ' stroke-dasharray="4 2"' if math.isinf(o.ret) else ""
        bars.append(f'<rect x="{x:.1f}" y="{y}" width="{max(end - x, 3):.1f}" height="{row_h - 8}" fill="{colour}" '
                    f'stroke="#333"{dash}><title>{tip}</title></rect>')
    labels = [f'<text x="4" y="{rows[c] * row_h + 16}" font-size="12">{html.escape(c)}</text>' for c in clients]
    svg = (f'<svg width="{width}" height="{len(clients) * row_h + 8}" xmlns="http://www.w3.org/2000/svg">'
           + "".join(labels + bars) + "</svg>")
    listing = "".join(f"<li>{html.escape(ops[i].describe())}</li>" for i in outcome.longest)
    left = "".join(f"<li>{html.escape(o.describe())}</li>" for i, o in enumerate(ops) if i not in order)
    return (f"<h2>{html.escape(key)}</h2>{svg}<p>The longest order found ({len(outcome.longest)} of {len(ops)} "
            f"operations, {outcome.steps} search steps):</p><ol>{listing}</ol>"
            f"<p>Operations no order could take in after it:</p><ul>{left}</ul>")


def render(failures: list[tuple[str, list[Operation], Outcome]], title: str) -> str:
    body = "".join(_section(k, ops, out) for k, ops, out in failures)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:1em} li{font-family:monospace;font-size:12px}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


__all__ = ["render"]
