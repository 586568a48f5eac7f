"""Timestamps in row content: which columns hold times, their ranges and their clusters.

The file format stores no times (sqlite-facts E1), so "when" comes from the rows themselves. The
seed incident was explained by exactly this: recipe categories created a day after everything
else, i.e. re-seeded after a wipe. Clusters are runs of times with no gap longer than
``gap_seconds``; the same clusters are used for every table so tables can be compared.
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from .fileformat import TableSchema

if TYPE_CHECKING:
    from .analysis import ParsedDatabase
    from .carve import Recovered

GAP_SECONDS = 3600.0
_LO, _HI = 631152000.0, 4102444800.0  # 1990-01-01 .. 2100-01-01: plausible content times
_NAME_HINT = re.compile(r"(_at|_on|_ts|date|time|timestamp|created|updated|modified|deleted|when)$", re.I)
_TYPE_HINT = re.compile(r"DATE|TIME", re.I)
_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
                  r"\s*(Z|[+-]\d{2}:?\d{2})?)?\s*$")


def iso_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


_DAYS: dict[str, float | None] = {}


def parse_iso(value: str) -> float | None:
    """ISO-8601 date or date-time as Unix seconds (naive times are taken as UTC, as SQLite does)."""
    # Fast path for the common "YYYY-MM-DD HH:MM:SS" (what SQLite's datetime() writes): the date
    # part is converted once per day and cached; anything else takes the full parser below.
    if (len(value) == 19 and value[10] in " T" and value[4] == "-" and value[7] == "-" and value[13] == ":"
            and value[16] == ":" and value.isascii()):
        hh, mm, ss = value[11:13], value[14:16], value[17:19]
        if hh.isdigit() and mm.isdigit() and ss.isdigit():
            h, mi, sec = int(hh), int(mm), int(ss)
            if h < 24 and mi < 60 and sec < 60:
                day = value[:10]
                base = _DAYS.get(day, -1.0)
                if base == -1.0:
                    base = _parse_iso_full(day)
                    if len(_DAYS) < 100_000:
                        _DAYS[day] = base
                if base is not None:
                    return base + (h * 3600 + mi * 60 + sec)
    return _parse_iso_full(value)


def _parse_iso_full(value: str) -> float | None:
    m = _ISO.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=timezone.utc)
    except ValueError:
        return None
    ts = dt.timestamp()
    if frac:
        ts += int(frac) / 10 ** len(frac)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ts -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return ts


def to_unix(value: Any, encoding: str) -> float | None:
    """Interpret a value of a column already judged to hold times; None if this one does not."""
    if isinstance(value, str):
        ts = parse_iso(value)
    elif isinstance(value, bool) or value is None or isinstance(value, bytes):
        return None
    elif isinstance(value, (int, float)):
        v = float(value)
        if encoding == "unix_s":
            ts = v
        elif encoding == "unix_ms":
            ts = v / 1e3
        elif encoding == "unix_us":
            ts = v / 1e6
        elif encoding == "julian":
            ts = (v - 2440587.5) * 86400.0
        else:
            return None
    else:
        return None
    if ts is None or not _LO <= ts <= _HI:
        return None
    return ts


def _guess_encoding(values: list[Any]) -> str | None:
    """Which time encoding most non-null sample values follow (>= 80%), if any."""
    sample = [v for v in values if v is not None][:500]
    if not sample:
        return None
    for enc in ("iso", "unix_s", "unix_ms", "unix_us", "julian"):
        ok = sum(1 for v in sample if to_unix(v, enc) is not None
                 and (enc == "iso") == isinstance(v, str))
        if ok >= 0.8 * len(sample):
            return enc
    return None


def time_columns(schema: TableSchema, rows: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
    """Columns holding times: ISO text anywhere, numbers only where the name or type says time."""
    out: list[tuple[int, str]] = []
    for i, col in enumerate(schema.columns):
        if i == schema.rowid_alias:
            continue
        values = [r[i] for r in rows if i < len(r)]
        hinted = bool(_NAME_HINT.search(col.name) or _TYPE_HINT.search(col.decl_type))
        enc = _guess_encoding(values)
        if enc is None and not values and hinted:
            enc = "iso" if col.affinity in ("TEXT", "NUMERIC", "BLOB") else "unix_s"
        if enc is None:
            continue
        if enc != "iso" and not hinted:
            continue
        out.append((i, enc))
    return out


def clusters(times: Iterable[float], gap: float = GAP_SECONDS) -> list[dict[str, Any]]:
    """Split sorted times wherever two neighbours are more than ``gap`` seconds apart."""
    ts = sorted(times)
    out: list[dict[str, Any]] = []
    for t in ts:
        if out and t - out[-1]["end_ts"] <= gap:
            out[-1]["end_ts"] = t
            out[-1]["count"] += 1
        else:
            out.append({"start_ts": t, "end_ts": t, "count": 1})
    for c in out:
        c["start"], c["end"] = iso_text(c["start_ts"]), iso_text(c["end_ts"])
    return out


def _summary(times: list[float]) -> dict[str, Any]:
    if not times:
        return {"count": 0, "min": None, "max": None, "clusters": []}
    return {"count": len(times), "min": iso_text(min(times)), "max": iso_text(max(times)),
            "min_ts": min(times), "max_ts": max(times), "clusters": clusters(times)}


def _primary(cols: list[tuple[int, str]], schema: TableSchema) -> tuple[int, str] | None:
    """The column that says when a row was made: a 'created' column if there is one."""
    if not cols:
        return None
    for i, enc in cols:
        if "creat" in schema.columns[i].name.lower() or "insert" in schema.columns[i].name.lower():
            return i, enc
    return cols[0]


def build_timeline(db: "ParsedDatabase", recovered: list["Recovered"], gap: float = GAP_SECONDS) -> dict[str, Any]:
    """Per table and time column: live and recovered ranges and clusters, plus global clusters."""
    by_table_recovered: dict[str, list[list[Any]]] = {}
    for item in recovered:
        by_table_recovered.setdefault(item.table, []).append(item.values)
    columns: list[dict[str, Any]] = []
    primary_times: dict[str, list[float]] = {}
    events: list[dict[str, Any]] = []
    for name, lt in db.tables.items():
        if name.startswith("sqlite_"):
            continue
        rows = [vals for _, vals in lt.rows]
        cols = time_columns(lt.schema, rows)
        prim = _primary(cols, lt.schema)
        for i, enc in cols:
            live_t = [t for t in (to_unix(r[i], enc) for r in rows if i < len(r)) if t is not None]
            rec_t = [t for t in (to_unix(r[i], enc) for r in by_table_recovered.get(name, []) if i < len(r))
                     if t is not None]
            columns.append({"table": name, "column": lt.schema.columns[i].name, "encoding": enc,
                            "primary": prim == (i, enc), "live": _summary(live_t), "recovered": _summary(rec_t)})
            if prim == (i, enc):
                primary_times[name] = live_t
                for t in rec_t:
                    events.append({"ts": t, "table": name, "state": "recovered"})
    all_times = [t for ts in primary_times.values() for t in ts]
    global_clusters = clusters(all_times, gap)
    for c in global_clusters:
        c["tables"] = {}
    starts = [c["start_ts"] for c in global_clusters]
    table_clusters: dict[str, list[int]] = {}
    for name, ts in primary_times.items():
        idx: dict[int, int] = {}
        for t in ts:
            k = bisect.bisect_right(starts, t) - 1
            idx[k] = idx.get(k, 0) + 1
        for k, n in idx.items():
            global_clusters[k]["tables"][name] = n
        table_clusters[name] = sorted(idx)
    # A histogram the UI can chart directly: rows per hour bucket, live and recovered, per table.
    buckets: dict[tuple[str, int, str], int] = {}
    for name, ts in primary_times.items():
        for t in ts:
            key = (name, int(t // 3600) * 3600, "live")
            buckets[key] = buckets.get(key, 0) + 1
    for ev in events:
        key = (ev["table"], int(ev["ts"] // 3600) * 3600, "recovered")
        buckets[key] = buckets.get(key, 0) + 1
    histogram = [{"table": t, "hour": iso_text(h), "hour_ts": h, "state": s, "rows": n}
                 for (t, h, s), n in sorted(buckets.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))]
    return {"gap_seconds": gap, "columns": columns, "clusters": global_clusters,
            "table_clusters": table_clusters, "histogram": histogram}
