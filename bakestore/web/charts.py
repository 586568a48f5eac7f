"""The forensics timeline as a server-rendered SVG: one lane per table, rows per hour as dots,
clusters as shaded bands, recovered (deleted) rows in a second colour.

Input is the report's ``timeline`` section (``histogram`` and ``clusters``, see
``bakestore.forensics.timeline``); nothing is computed here beyond placing marks on the page.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

WIDTH = 980
ALL = "all tables"
RIGHT = 24
TOP = 46
LANE = 24
BOTTOM = 44
LIVE = "#3a6ea5"
RECOVERED = "#d9822b"
BAND = "#e8eef6"
BAND_EDGE = "#b9c9de"

_STEPS = [(3600, "%H:%M"), (3 * 3600, "%H:%M"), (6 * 3600, "%m-%d %H:%M"), (12 * 3600, "%m-%d %H:%M"),
          (86400, "%Y-%m-%d"), (2 * 86400, "%Y-%m-%d"), (7 * 86400, "%Y-%m-%d"), (14 * 86400, "%Y-%m-%d"),
          (30 * 86400, "%Y-%m"), (91 * 86400, "%Y-%m"), (182 * 86400, "%Y-%m"), (365 * 86400, "%Y")]


def _text(x: float, y: float, s: str, *, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}>{escape(s)}</text>'


def _utc(ts: float, fmt: str) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime(fmt)


def timeline_svg(timeline: dict[str, Any], *, title: str = "Rows over time") -> str:
    """An SVG document (inline-able) of the timeline; a short message if it has no times."""
    hist = [h for h in timeline.get("histogram") or [] if isinstance(h.get("hour_ts"), (int, float))]
    if not hist:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40" role="img" '
                'aria-label="no timeline"><text x="8" y="24" font-family="sans-serif" font-size="13">'
                'No time columns with values were found, so there is no timeline.</text></svg>')
    first_seen: dict[str, float] = {}
    for h in hist:
        first_seen[h["table"]] = min(first_seen.get(h["table"], h["hour_ts"]), h["hour_ts"])
    # An "all tables" lane on top makes the clusters stand out; then tables by first activity.
    totals: dict[tuple[float, str], int] = {}
    for h in hist:
        totals[(h["hour_ts"], h["state"])] = totals.get((h["hour_ts"], h["state"]), 0) + h["rows"]
    hist = [{"table": ALL, "hour_ts": ts, "hour": _utc(ts, "%Y-%m-%d %H:00"), "state": state, "rows": n}
            for (ts, state), n in totals.items()] + hist
    tables = [ALL] + sorted(first_seen, key=lambda t: (first_seen[t], t))
    left = min(320, 16 + 6.4 * max(len(t) for t in tables))
    t0 = min(h["hour_ts"] for h in hist)
    t1 = max(h["hour_ts"] for h in hist) + 3600
    span = max(t1 - t0, 6 * 3600)
    pad = span * 0.03
    t0, t1 = t0 - pad, t0 - pad + span + 2 * pad
    plot_w = WIDTH - left - RIGHT
    height = TOP + LANE * len(tables) + BOTTOM

    def x(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * plot_w

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label={quoteattr(title)} font-family="system-ui, sans-serif" '
        f'font-size="11">',
        f"<title>{escape(title)}</title>",
        "<style>.lab{fill:#333}.all{fill:#222;font-weight:700}.mute{fill:#777}.clab{fill:#456;font-weight:600}</style>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    # Cluster bands behind everything, labelled along the top.
    for n, cluster in enumerate(timeline.get("clusters") or [], 1):
        start, end = cluster.get("start_ts"), cluster.get("end_ts")
        if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
            continue
        x0, x1 = x(start), x(end + 3600)
        if x1 - x0 < 6:
            mid = (x0 + x1) / 2
            x0, x1 = mid - 3, mid + 3
        tip = f"cluster {n}: {cluster.get('start')} … {cluster.get('end')} UTC, {cluster.get('count')} rows"
        out.append(f'<g class="cluster"><title>{escape(tip)}</title>'
                   f'<rect x="{x0:.1f}" y="{TOP - 14}" width="{x1 - x0:.1f}" height="{LANE * len(tables) + 14}" '
                   f'fill="{BAND}" stroke="{BAND_EDGE}" stroke-width="0.8" rx="2"/></g>')
        out.append(_text((x0 + x1) / 2, TOP - 18, f"C{n} · {cluster.get('count')}", anchor="middle", cls="clab"))
    # Lanes.
    for i, table in enumerate(tables):
        y = TOP + LANE * i + LANE / 2
        out.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{"#ccd" if table == ALL else "#eee"}"/>')
        out.append(_text(left - 8, y + 4, table, anchor="end", cls="all" if table == ALL else "lab"))
    # Axis with UTC ticks.
    axis_y = TOP + LANE * len(tables) + 4
    out.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{axis_y}" y2="{axis_y}" stroke="#999"/>')
    step, fmt = next(((s, f) for s, f in _STEPS if (t1 - t0) / s <= 9), (_STEPS[-1][0] * math.ceil((t1 - t0) / (9 * _STEPS[-1][0])), "%Y"))
    tick = math.ceil(t0 / step) * step
    while tick <= t1:
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#999"/>')
        out.append(_text(tx, axis_y + 16, _utc(tick, fmt), anchor="middle", cls="mute"))
        tick += step
    out.append(_text(WIDTH - RIGHT, axis_y + 32, "time (UTC)", anchor="end", cls="mute"))
    # Dots: one per table, hour and state; area grows with the number of rows (per lane kind).
    biggest = max((h["rows"] for h in hist if h["table"] != ALL), default=1) or 1
    biggest_all = max((h["rows"] for h in hist if h["table"] == ALL), default=1) or 1
    lane_of = {t: i for i, t in enumerate(tables)}
    for h in sorted(hist, key=lambda h: h["state"] != "live"):
        y = TOP + LANE * lane_of[h["table"]] + LANE / 2
        r = 2.2 + 7.0 * math.sqrt(h["rows"] / (biggest_all if h["table"] == ALL else biggest))
        colour = LIVE if h["state"] == "live" else RECOVERED
        tip = f"{h['table']} · {h.get('hour')} UTC · {h['rows']} {h['state']} row(s)"
        out.append(f'<circle cx="{x(h["hour_ts"] + 1800):.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}" '
                   f'fill-opacity="0.72" class={quoteattr(str(h["state"]))}><title>{escape(tip)}</title></circle>')
    # Legend.
    lx = left
    for label, colour in (("live rows", LIVE), ("recovered (deleted) rows", RECOVERED)):
        out.append(f'<circle cx="{lx + 5}" cy="14" r="5" fill="{colour}" fill-opacity="0.72"/>')
        out.append(_text(lx + 14, 18, label, cls="lab"))
        lx += 30 + 7 * len(label)
    out.append(f'<rect x="{lx}" y="8" width="16" height="12" fill="{BAND}" stroke="{BAND_EDGE}"/>')
    gap = float(timeline.get("gap_seconds") or 3600) / 3600
    out.append(_text(lx + 22, 18, f"cluster (no gap over {gap:g} h)", cls="lab"))
    out.append("</svg>")
    return "\n".join(out)
