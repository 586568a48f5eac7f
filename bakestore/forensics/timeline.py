"""Timestamps in row content: which columns hold times, their ranges and their clusters.

The file format stores no times (sqlite-facts E1), so "when" comes from the rows themselves. The
seed incident was explained by exactly this: recipe categories created a day after everything
else, i.e. re-seeded after a wipe. Clusters are runs of times with no gap longer than
``gap_seconds``; the same clusters are used for every table so tables can be compared.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
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


_HMS: dict[str, int] = {}  # "HH:MM:SS" -> seconds of the day, -1 if not that shape
_DAY_BASE: dict[str, float | None] = {}  # "YYYY-MM-DD" -> Unix seconds at 00:00 UTC, None if not a date


def _hms(key: str) -> int:
    got = _HMS.get(key)
    if got is None:
        got = -1
        if key[2] == ":" and key[5] == ":" and key.isascii():
            hh, mm, ss = key[0:2], key[3:5], key[6:8]
            if hh.isdigit() and mm.isdigit() and ss.isdigit():
                h, mi, sec = int(hh), int(mm), int(ss)
                if h < 24 and mi < 60 and sec < 60:
                    got = h * 3600 + mi * 60 + sec
        if len(_HMS) < 200_000:
            _HMS[key] = got
    return got


def _day(key: str) -> float | None:
    if key in _DAY_BASE:
        return _DAY_BASE[key]
    base = _parse_iso_full(key) if key[4] == "-" and key[7] == "-" and key.isascii() else None
    if len(_DAY_BASE) < 100_000:
        _DAY_BASE[key] = base
    return base


_TAILS: dict[str, tuple[float, int] | None] = {}  # after "...HH:MM:SS": (fraction, zone offset) or None
_TAIL = re.compile(r"(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?\s*$")


def _tail(key: str) -> tuple[float, int] | None:
    """What _parse_iso_full makes of the text after the seconds: (fraction, zone offset in s)."""
    got: tuple[float, int] | None = None
    m = _TAIL.match(key) if key.isascii() else None
    if m:
        frac, tz = m.groups()
        offset = 0
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        got = (int(frac) / 10 ** len(frac) if frac else 0.0, offset)
    if len(_TAILS) < 100_000:
        _TAILS[key] = got
    return got


def times_of(values: Iterable[Any], encoding: str) -> list[float]:
    """``[t for t in (to_unix(v, encoding) for v in values) if t is not None]``, fast for ISO text.

    "YYYY-MM-DD HH:MM:SS" (what SQLite's datetime() writes) is split into its day and its time
    of day, each converted once and cached: exactly parse_iso's fast path, without two function
    calls per value. Anything else goes through to_unix itself.
    """
    if encoding != "iso":
        return [t for t in (to_unix(v, encoding) for v in values) if t is not None]
    out: list[float] = []
    append = out.append
    lo, hi = _LO, _HI
    hms_cache, day_cache, tail_cache = _HMS, _DAY_BASE, _TAILS
    for v in values:
        ts: float | None
        if type(v) is str and len(v) >= 19 and (v[10] == " " or v[10] == "T"):
            secs = hms_cache.get(v[11:19])
            if secs is None:
                secs = _hms(v[11:19])
            day = v[:10]
            base = day_cache[day] if day in day_cache else _day(day)
            if len(v) == 19:
                # Both parts valid is parse_iso's fast path (and an ASCII string); else its full parser.
                ts = base + secs if secs >= 0 and base is not None else parse_iso(v)
            else:
                # "...SS.mmmZ", "...SS+02:00": the tail (fraction, zone) is converted once and
                # cached too, and applied in the full parser's order, so the float is the same.
                tail = v[19:]
                adjust = tail_cache[tail] if tail in tail_cache else _tail(tail)
                if secs >= 0 and base is not None and adjust is not None:
                    ts = base + secs
                    if adjust[0]:
                        ts += adjust[0]
                    if adjust[1]:
                        ts -= adjust[1]
                else:
                    ts = parse_iso(v)
        elif type(v) is str and len(v) == 10:
            base = day_cache[v] if v in day_cache else _day(v)
            ts = base if base is not None else parse_iso(v)
        else:
            ts = to_unix(v, encoding) if not isinstance(v, str) else parse_iso(v)
        if ts is not None and lo <= ts <= hi:
            append(ts)
    return out


def _guess_encoding(values: list[Any]) -> str | None:
    """Which time encoding most non-null sample values follow (>= 80%), if any."""
    sample = [v for v in values if v is not None][:500]
    if not sample:
        return None
    needed = 0.8 * len(sample)
    for enc in ("iso", "unix_s", "unix_ms", "unix_us", "julian"):
        ok = misses = 0
        iso = enc == "iso"
        for v in sample:
            # The type test first: to_unix parses any text as ISO, whatever the encoding asked.
            if iso == isinstance(v, str) and to_unix(v, enc) is not None:
                ok += 1
            else:
                misses += 1
                if len(sample) - misses < needed:
                    break  # too many misses already: this encoding cannot reach 80 %
        if ok >= needed:
            return enc
    return None


def time_columns(schema: TableSchema, rows: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
    """Columns holding times: ISO text anywhere, numbers only where the name or type says time."""
    out: list[tuple[int, str]] = []
    for i, col in enumerate(schema.columns):
        if i == schema.rowid_alias:
            continue
        # The first 500 non-null values decide (_guess_encoding); read no further than that.
        sample: list[Any] = []
        present = False
        for r in rows:
            if i < len(r):
                present = True
                v = r[i]
                if v is not None:
                    sample.append(v)
                    if len(sample) >= 500:
                        break
        hinted = bool(_NAME_HINT.search(col.name) or _TYPE_HINT.search(col.decl_type))
        enc = _guess_encoding(sample)
        if enc is None and not present and hinted:
            enc = "iso" if col.affinity in ("TEXT", "NUMERIC", "BLOB") else "unix_s"
        if enc is None:
            continue
        if enc != "iso" and not hinted:
            continue
        out.append((i, enc))
    return out


def clusters(times: Iterable[float], gap: float = GAP_SECONDS) -> list[dict[str, Any]]:
    """Split sorted times wherever two neighbours are more than ``gap`` seconds apart."""
    return _clusters_sorted(sorted(times), gap)


def _clusters_sorted(ts: list[float], gap: float) -> list[dict[str, Any]]:
    if not ts:
        return []
    cuts = [k for k, (a, b) in enumerate(zip(ts, ts[1:]), 1) if b - a > gap]
    out: list[dict[str, Any]] = []
    for s, e in zip([0, *cuts], [*cuts, len(ts)]):
        out.append({"start_ts": ts[s], "end_ts": ts[e - 1], "count": e - s})
    for c in out:
        c["start"], c["end"] = iso_text(c["start_ts"]), iso_text(c["end_ts"])
    return out


def _summary(times: list[float]) -> dict[str, Any]:
    return _summary_sorted(sorted(times))


def _summary_sorted(ts: list[float], gap: float = GAP_SECONDS) -> dict[str, Any]:
    if not ts:
        return {"count": 0, "min": None, "max": None, "clusters": []}
    return {"count": len(ts), "min": iso_text(ts[0]), "max": iso_text(ts[-1]),
            "min_ts": ts[0], "max_ts": ts[-1], "clusters": _clusters_sorted(ts, GAP_SECONDS)}


def _primary(cols: list[tuple[int, str]], schema: TableSchema) -> tuple[int, str] | None:
    """The column that says when a row was made: a 'created' column if there is one."""
    if not cols:
        return None
    for i, enc in cols:
        if "creat" in schema.columns[i].name.lower() or "insert" in schema.columns[i].name.lower():
            return i, enc
    return cols[0]


@dataclass
class LiveTimeline:
    """The part of the timeline that depends on live rows only (computed while carving runs)."""

    gap: float
    columns: list[tuple[str, TableSchema, int, str, bool, dict[str, Any]]]  # table, schema, col, enc, primary, live
    global_clusters: list[dict[str, Any]]
    table_clusters: dict[str, list[int]]
    buckets: dict[tuple[str, int, str], int]


def live_timeline(db: "ParsedDatabase", gap: float = GAP_SECONDS) -> LiveTimeline:
    """Time columns of the live tables, their ranges and clusters, and the global clusters."""
    columns: list[tuple[str, TableSchema, int, str, bool, dict[str, Any]]] = []
    primary_times: dict[str, list[float]] = {}
    for name, lt in db.tables.items():
        if name.startswith("sqlite_"):
            continue
        rows = [vals for _, vals in lt.rows]
        cols = time_columns(lt.schema, rows)
        prim = _primary(cols, lt.schema)
        for i, enc in cols:
            live_t = sorted(times_of([r[i] for r in rows if i < len(r)], enc))
            columns.append((name, lt.schema, i, enc, prim == (i, enc), _summary_sorted(live_t)))
            if prim == (i, enc):
                primary_times[name] = live_t
    all_times = [t for ts in primary_times.values() for t in ts]
    global_clusters = clusters(all_times, gap)
    for c in global_clusters:
        c["tables"] = {}
    starts = [c["start_ts"] for c in global_clusters]
    table_clusters: dict[str, list[int]] = {}
    for name, ts in primary_times.items():  # ts is sorted: count the times in each cluster's span
        idx: dict[int, int] = {}
        # A time belongs to the last cluster starting at or before it (bisect_right(starts, t) - 1).
        bounds = [bisect.bisect_left(ts, x) for x in starts]
        before = bounds[0] if bounds else len(ts)
        if before:
            idx[-1] = before  # before the first cluster: impossible (every time is in one), as before
        for k, lo in enumerate(bounds):
            hi = bounds[k + 1] if k + 1 < len(bounds) else len(ts)
            if hi > lo:
                idx[k] = hi - lo
        for k, n in idx.items():
            global_clusters[k]["tables"][name] = n
        table_clusters[name] = sorted(idx)
    # A histogram the UI can chart directly: rows per hour bucket, live and recovered, per table.
    buckets: dict[tuple[str, int, str], int] = {}
    for name, ts in primary_times.items():
        for h, n in Counter([int(t // 3600) * 3600 for t in ts]).items():
            buckets[(name, h, "live")] = n
    return LiveTimeline(gap, columns, global_clusters, table_clusters, buckets)


def build_timeline(db: "ParsedDatabase", recovered: list["Recovered"], gap: float = GAP_SECONDS,
                   live: LiveTimeline | None = None) -> dict[str, Any]:
    """Per table and time column: live and recovered ranges and clusters, plus global clusters.

    ``live``: :func:`live_timeline` of ``db`` computed earlier (the same result either way).
    """
    if live is None or live.gap != gap:
        live = live_timeline(db, gap)
    wanted = {name for name, *_ in live.columns}  # only tables with a time column
    by_table_recovered: dict[str, list[list[Any]]] = {name: [] for name in wanted}
    for item in recovered:
        if item.table in wanted:
            by_table_recovered[item.table].append(item.values)
    columns: list[dict[str, Any]] = []
    buckets = dict(live.buckets)
    for name, schema, i, enc, primary, live_summary in live.columns:
        rec_t = times_of([r[i] for r in by_table_recovered[name] if i < len(r)], enc)
        columns.append({"table": name, "column": schema.columns[i].name, "encoding": enc,
                        "primary": primary, "live": live_summary, "recovered": _summary(rec_t)})
        if primary:
            for h, n in Counter([int(t // 3600) * 3600 for t in rec_t]).items():
                buckets[(name, h, "recovered")] = buckets.get((name, h, "recovered"), 0) + n
    histogram = [{"table": t, "hour": iso_text(h), "hour_ts": h, "state": s, "rows": n}
                 for (t, h, s), n in sorted(buckets.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))]
    return {"gap_seconds": gap, "columns": columns, "clusters": live.global_clusters,
            "table_clusters": live.table_clusters, "histogram": histogram}
