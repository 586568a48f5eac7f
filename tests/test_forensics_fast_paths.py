"""The fast paths give exactly what the plain ones give: report.json text, case.db tables."""

from __future__ import annotations

import io
import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

from bakestore.forensics.carve import Recovered
from bakestore.forensics.casedb import write_case_db
from bakestore.forensics.jsontext import values_json as encode_values
from bakestore.forensics.report import Report, _json_default, _recovered_json


def _values(rng: random.Random) -> list[Any]:
    pool: list[Any] = [None, 0, 1, -7, 2**62, 3.25, -0.0, float("nan"), float("inf"), "", "plain text",
                       "quote \" backslash \\ tab \t newline \n", "ünïcödé ✓", "\x7f", b"", b"\x00\xffbytes",
                       True, 1e300, -2**63]
    return [rng.choice(pool) for _ in range(rng.randint(0, 7))]


def _item(rng: random.Random, i: int) -> Recovered:
    table = rng.choice(["recipes", "sqlite_master", "odd \"name\"", "ingrédients"])
    return Recovered(
        table=table, source=rng.choice(["freelist", "freeblock", "wal"]), page=rng.randint(1, 10**6),
        offset=rng.randint(0, 65535), rowid=rng.choice([None, rng.randint(-5, 2**40)]), values=_values(rng),
        confidence=rng.choice([0.97, 0.8, 0.55, 0.999, 0.5 + i % 7 / 100]),
        region=rng.choice(["cell", "freeblock", "gap"]), frame=rng.choice([None, None, 3]),
        detail=rng.choice(["", "", "overflow chain followed", "x; y"]),
        candidates=rng.choice([[], [], ["recipes"]]),
        also_found_in=rng.choice([[], [], [{"source": "wal", "page": 3, "offset": 9, "region": "cell",
                                           "frame": 2, "confidence": 0.9}]]),
        rowid_live=rng.choice([False, True]), partial=rng.choice([False, True]), key=i)


def _report(items: list[Recovered], pages: int = 0) -> Report:
    return Report(file={"name": "x"}, header={"page_size": 4096}, pages={"page_count": pages}, integrity={},
                  wal={"present": False}, journal={}, tables=[], timeline={}, recovered=items,
                  page_list=[{"page": i, "kind": "table_leaf"} for i in range(pages)],
                  columns={"recipes": ["id", "name"], "sqlite_master": ["type", "name"]}, meta={"t": 1.5})


def test_streamed_report_json_is_the_text_json_dumps_writes() -> None:
    rng = random.Random(5)
    items = [_item(rng, i) for i in range(21000)]
    # types the fast path does not expect take the generic path and must still match
    items[5].confidence = 1  # type: ignore[assignment]
    items[6].rowid_live = 0  # type: ignore[assignment]
    items[7].page = True  # type: ignore[assignment]
    items[8].confidence = float("nan")
    report = _report(items, pages=300)
    assert report._large()
    expected = json.dumps(report.to_dict(), ensure_ascii=False, default=_json_default)
    assert report.to_json() == expected
    for it in items[::2]:  # as carving leaves them: values already encoded
        it.values_json = encode_values(it.values)
    assert report.to_json() == expected
    out = io.StringIO()
    report.write_json(out)
    assert out.getvalue() == expected
    doc = json.loads(expected)
    assert doc["recovered"][9]["values"] == json.loads(json.dumps(report.to_dict()["recovered"][9]["values"],
                                                                   default=_json_default))


def test_recovered_json_matches_item_dicts() -> None:
    rng = random.Random(11)
    items = [_item(rng, i) for i in range(500)]
    report = _report(items)
    expected = json.dumps(report.to_dict()["recovered"], ensure_ascii=False, default=_json_default)
    assert "[" + _recovered_json(items, report.columns) + "]" == expected
    assert any(isinstance(v, float) and math.isnan(v) for it in items for v in it.values)


def test_small_report_json_stays_indented() -> None:
    report = _report([_item(random.Random(1), 0)])
    assert not report._large()
    assert report.to_json() == json.dumps(report.to_dict(), indent=1, ensure_ascii=False, default=_json_default)


def test_case_db_recovered_rows_hold_the_values(tmp_path: Path) -> None:
    rng = random.Random(3)
    items = [_item(rng, i) for i in range(300)]
    for it in items[::3]:
        it.values_json = encode_values(it.values)
    report = _report(items, pages=5)
    write_case_db(report, tmp_path / "case.db")
    conn = sqlite3.connect(tmp_path / "case.db")
    try:
        rows = conn.execute("SELECT id, table_name, page, row_id, values_json, candidates FROM recovered_rows "
                            "ORDER BY id").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert len(rows) == 300 and {"recovered_rows", "pages", "file_info", "findings"} <= tables
    for (i, table, page, rowid, values_json, candidates), item in zip(rows, items):
        assert (table, page, rowid) == (item.table, item.page, item.rowid)
        assert values_json == json.dumps(report.to_dict()["recovered"][i - 1]["values"], ensure_ascii=False)
        assert json.loads(candidates) == item.candidates


def test_drop_live_prefixes_matches_the_prefix_lookup() -> None:
    from types import SimpleNamespace

    from bakestore.forensics.analysis import drop_live_prefixes
    from bakestore.forensics.carve import PrefixLookup

    rng = random.Random(8)
    words = ["", "a", "ab", "abc", "b", "ba", "MK1", "MK12", "MK123"]
    live_rows = [(i, (i, rng.choice(words), rng.choice([None, 1, 2, "2"]), rng.choice(words))) for i in range(400)]
    live_rows += [(500 + i, (None, rng.choice(words))) for i in range(20)]  # another width
    db = SimpleNamespace(tables={"t": SimpleNamespace(rows=live_rows)})
    items = []
    for k in range(3000):
        _, vals = rng.choice(live_rows)
        cut = [v if rng.random() < 0.6 else None for v in vals]
        j = rng.randrange(len(cut))
        if isinstance(cut[j], str):
            cut[j] = cut[j][:rng.randint(0, len(cut[j]))]
        if rng.random() < 0.2:
            cut[rng.randrange(len(cut))] = rng.choice(words + [7, None])
        items.append(Recovered(rng.choice(["t", "t", "gone"]), "freelist", 1, k, None, cut, 0.9, "cell",
                               partial=rng.random() < 0.8, key=k))
    ref: PrefixLookup[bool] = PrefixLookup()
    ref.extend("t", [(vals, True) for _, vals in live_rows])
    expected = [it for it in items if not (it.partial and ref.find(it.table, it.values))]
    got = drop_live_prefixes(items, db)  # type: ignore[arg-type]
    assert [id(it) for it in got] == [id(it) for it in expected]
    assert len(expected) < len(items) and any(it.partial for it in expected)


def test_times_of_matches_to_unix_value_by_value() -> None:
    from bakestore.forensics.timeline import times_of, to_unix

    class S(str):
        pass

    values: list[Any] = [
        "2026-01-01 00:00:07", "2026-01-01T23:59:59", "2026-02-30 10:00:00", "2026-01-01 24:00:00",
        "2026-01-01 12:60:00", "2026-01-01 12:00:60", "2026-01-01 1a:00:00", "٢٠٢٦-01-01 00:00:00",
        "2026-01-01 ٠٠:00:00", " 2026-01-01 00:00:0", "2026-01-01 00:00:00Z", "2026-01-01x00:00:00",
        "2026/01/01 00:00:00", "1980-01-01 00:00:00", "2026-01-01", "2026-01-01 00:00", "2026-01-01 00:00:00.5",
        "2026-01-01 00:00:00+02:00", "", "garbage text here!!", "2026-01-01 00-00-00", S("2026-01-01 00:00:01"),
        None, 0, 1767225600, 1767225600.5, 1767225600000, b"2026-01-01 00:00:00", True, 2461041.5,
    ]
    values += [f"2026-0{m}-1{d} {h:02d}:{mi:02d}:{s:02d}" for m in range(1, 4) for d in range(3)
               for h in (0, 13, 23) for mi in (0, 59) for s in (0, 30)]
    # bakestore's own stamps (milliseconds, Z) and the other tails the full parser accepts or not
    values += ["2026-10-01T09:00:13.554Z", "2026-10-01T09:00:13.5Z", "2026-10-01 09:00:13,123456789",
               "2026-10-01T09:00:13+02:00", "2026-10-01T09:00:13 -0130", "2026-10-01T09:00:13.000Z ",
               "2026-10-01T09:00:13.Z", "2026-10-01T09:00:13.1234567890Z", "2026-10-01T09:00:13Zjunk",
               "2026-10-01T09:00:13.٣Z", "2026-10-01T09:00:13+2:00", "2026-10-01T09:00:13+00:00",
               "2026-10-01T09:00:13.000", "2026-10-01T24:00:13.554Z", "2026-02-30T09:00:13.554Z",
               "2026-10-01T09:00:13.554Z\n", "2026-10-01x09:00:13.554Z", "2026-10-01", "2026-02-30", "2026-1-011",
               "٢٠٢٦-10-01", " 2026-10-1", "1970-01-01", "2099-12-31T23:59:59.999Z"]
    values += [f"2026-11-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}Z" for d in (1, 15, 28) for h in (0, 12, 23)
               for mi in (0, 31) for s in (0, 59) for ms in (0, 1, 554, 999)]
    for enc in ("iso", "unix_s", "unix_ms", "unix_us", "julian"):
        expected = [t for t in (to_unix(v, enc) for v in values) if t is not None]
        assert times_of(values, enc) == expected, enc
        assert times_of(values, enc) == expected, enc  # again, from the caches


def _old_build_timeline(db: Any, recovered: list[Recovered], gap: float) -> dict[str, Any]:
    """build_timeline as it was before the live part moved out (the reference)."""
    import bisect

    from bakestore.forensics.timeline import _guess_encoding, _primary, iso_text, to_unix

    def old_clusters(times: list[float]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for t in sorted(times):
            if out and t - out[-1]["end_ts"] <= gap:
                out[-1]["end_ts"] = t
                out[-1]["count"] += 1
            else:
                out.append({"start_ts": t, "end_ts": t, "count": 1})
        for c in out:
            c["start"], c["end"] = iso_text(c["start_ts"]), iso_text(c["end_ts"])
        return out

    def summary(times: list[float]) -> dict[str, Any]:
        if not times:
            return {"count": 0, "min": None, "max": None, "clusters": []}
        return {"count": len(times), "min": iso_text(min(times)), "max": iso_text(max(times)),
                "min_ts": min(times), "max_ts": max(times), "clusters": old_clusters(times)}

    def old_time_columns(schema: Any, rows: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
        from bakestore.forensics.timeline import _NAME_HINT, _TYPE_HINT
        out = []
        for i, col in enumerate(schema.columns):
            if i == schema.rowid_alias:
                continue
            values = [r[i] for r in rows if i < len(r)]
            hinted = bool(_NAME_HINT.search(col.name) or _TYPE_HINT.search(col.decl_type))
            enc = _guess_encoding(values)
            if enc is None and not values and hinted:
                enc = "iso" if col.affinity in ("TEXT", "NUMERIC", "BLOB") else "unix_s"
            if enc is None or (enc != "iso" and not hinted):
                continue
            out.append((i, enc))
        return out

    by_table: dict[str, list[list[Any]]] = {}
    for item in recovered:
        by_table.setdefault(item.table, []).append(item.values)
    columns, primary_times, events = [], {}, []
    for name, lt in db.tables.items():
        if name.startswith("sqlite_"):
            continue
        rows = [vals for _, vals in lt.rows]
        cols = old_time_columns(lt.schema, rows)
        prim = _primary(cols, lt.schema)
        for i, enc in cols:
            live_t = [t for t in (to_unix(r[i], enc) for r in rows if i < len(r)) if t is not None]
            rec_t = [t for t in (to_unix(r[i], enc) for r in by_table.get(name, []) if i < len(r)) if t is not None]
            columns.append({"table": name, "column": lt.schema.columns[i].name, "encoding": enc,
                            "primary": prim == (i, enc), "live": summary(live_t), "recovered": summary(rec_t)})
            if prim == (i, enc):
                primary_times[name] = live_t
                events += [{"ts": t, "table": name, "state": "recovered"} for t in rec_t]
    global_clusters = old_clusters([t for ts in primary_times.values() for t in ts])
    for c in global_clusters:
        c["tables"] = {}
    starts = [c["start_ts"] for c in global_clusters]
    table_clusters = {}
    for name, ts in primary_times.items():
        idx: dict[int, int] = {}
        for t in ts:
            k = bisect.bisect_right(starts, t) - 1
            idx[k] = idx.get(k, 0) + 1
        for k, n in idx.items():
            global_clusters[k]["tables"][name] = n
        table_clusters[name] = sorted(idx)
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


def test_timeline_matches_the_one_pass_version() -> None:
    from types import SimpleNamespace

    from bakestore.forensics.fileformat import parse_create_table
    from bakestore.forensics.timeline import build_timeline, live_timeline

    rng = random.Random(9)
    base = 1_767_225_600
    for round_ in range(12):
        tables = {}
        recovered = []
        for t in range(rng.randint(1, 4)):
            name = f"t{t}"
            schema = parse_create_table(name, f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, created_at TEXT, "
                                              "updated_ts INTEGER, note TEXT, baked_on REAL)", 2)
            shift = rng.choice([0, 86400, 3 * 86400])
            rows = []
            for r in range(rng.randint(0, 700)):
                ts = base + shift + rng.choice([0, 7200, 50000]) + rng.randint(0, 3000)
                created = rng.choice([time_text(ts), time_text(ts).replace(" ", "T"), None, "junk", ts])
                rows.append((r + 1, (r + 1, created, rng.choice([ts, ts * 1000, None]), "n",
                                     rng.choice([None, 2461041.5 + r / 100]))))
            tables[name] = SimpleNamespace(schema=schema, rows=rows)
            for r in range(rng.randint(0, 50)):
                ts = base + rng.randint(-200000, 500000)
                recovered.append(Recovered(name, "freelist", 1, r, None, [None, time_text(ts), ts, "x", None],
                                           0.9, "cell", key=r))
        db = SimpleNamespace(tables=tables)
        expected = _old_build_timeline(db, recovered, 3600.0)
        assert build_timeline(db, recovered) == expected, round_  # type: ignore[arg-type]
        assert build_timeline(db, recovered, live=live_timeline(db)) == expected  # type: ignore[arg-type]


def time_text(ts: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _walk_outcome(page: bytes, pgno: int, usable: int, want_index: bool) -> Any:
    from bakestore.forensics.btree import PageView, WalkResult, _walk_page, parse_page_header

    try:
        header = parse_page_header(page, pgno, usable)
    except Exception as exc:  # noqa: BLE001
        return ("header", type(exc), str(exc))
    result = WalkResult(pgno)
    stack: list[tuple[int, int]] = []
    try:
        _walk_page(PageView(page * 3, usable, 3), page, pgno, header, usable, 0, stack, result, want_index)
        error = None
    except Exception as exc:  # noqa: BLE001
        error = (type(exc), str(exc))
    return (result.rows, result.index_payloads, result.overflow_pages, result.errors, stack, error)


def _reference_walk(page: bytes, pgno: int, usable: int, want_index: bool) -> Any:
    """The walk of one page as it was: every cell through read_table_leaf_cell / read_index_cell."""
    import struct

    from bakestore.forensics.btree import (INTERIOR_INDEX, INTERIOR_TABLE, LEAF_TABLE, PageView, WalkResult,
                                           parse_page_header, read_index_cell, read_overflow,
                                           read_table_leaf_cell)

    try:
        header = parse_page_header(page, pgno, usable)
    except Exception as exc:  # noqa: BLE001
        return ("header", type(exc), str(exc))
    view = PageView(page * 3, usable, 3)
    result = WalkResult(pgno)
    stack: list[tuple[int, int]] = []
    error = None
    try:
        if header.kind == LEAF_TABLE:
            for off in header.pointers:
                cell = read_table_leaf_cell(page, off, usable)
                payload = cell.local
                if cell.overflow:
                    rest, err = read_overflow(view, cell.overflow, cell.payload_size - len(cell.local), usable,
                                              result.overflow_pages)
                    payload = payload + rest
                    if err:
                        result.errors.append({"page": pgno, "error": f"page {pgno} cell at {off} (rowid "
                                                                     f"{cell.rowid}): {err}"})
                result.rows.append((cell.rowid, payload))
        elif header.kind == INTERIOR_TABLE:
            children = [struct.unpack_from(">I", page, off)[0] for off in header.pointers]
            children.append(header.right_child)
            for child in reversed(children):
                stack.append((child, 1))
        else:
            interior = header.kind == INTERIOR_INDEX
            for off in header.pointers:
                if interior:
                    stack.append((struct.unpack_from(">I", page, off)[0], 1))
                local, psize, ovf = read_index_cell(page, off, usable, interior)
                if ovf:
                    rest, err = read_overflow(view, ovf, psize - len(local), usable, result.overflow_pages)
                    local = local + rest
                    if err:
                        result.errors.append({"page": pgno, "error": f"page {pgno} index cell at {off}: {err}"})
                if want_index:
                    result.index_payloads.append(local)
            if interior:
                stack.append((header.right_child, 1))
    except Exception as exc:  # noqa: BLE001
        error = (type(exc), str(exc))
    return (result.rows, result.index_payloads, result.overflow_pages, result.errors, stack, error)


def test_inline_cell_reading_matches_the_cell_readers(tmp_path: Path) -> None:
    from tests.forensics_corpus import build_rollback

    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=300, n_big=4)
    data = db.path.read_bytes()
    pages = [data[i:i + 4096] for i in range(4096, len(data), 4096)]
    pages = [p for p in pages if p[0] in (0x0D, 0x05, 0x0A, 0x02)]
    assert len({p[0] for p in pages}) >= 3
    rng = random.Random(6)
    for n in range(3000):
        page = bytearray(rng.choice(pages))
        for _ in range(rng.choice([0, 1, 2, 5, 20])):
            pos = rng.randrange(len(page)) if rng.random() < 0.5 else rng.randrange(8, 64)
            page[pos] = rng.randrange(256)
        want_index = n % 3 == 0
        expected = _reference_walk(bytes(page), 2, 4096, want_index)
        assert _walk_outcome(bytes(page), 2, 4096, want_index) == expected


def _old_deduplicate(items: list[Recovered]) -> list[Recovered]:
    """deduplicate as it was (grouping every key), the reference for the faster one."""
    from bakestore.forensics.carve import PrefixLookup

    order = {s: i for i, s in enumerate(("freelist", "freeblock", "unallocated", "superseded", "wal", "journal"))}
    groups: dict[int, list[Recovered]] = {}
    for it in items:
        groups.setdefault(it.key, []).append(it)
    out: list[Recovered] = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        group.sort(key=lambda r: (-r.confidence, -(r.rowid is not None), order.get(r.source, 9), r.page, r.offset))
        kept: list[Recovered] = []
        for it in group:
            for k in kept:
                if it.rowid is None or k.rowid is None or it.rowid == k.rowid:
                    k.also_found_in.append(it.where())
                    break
            else:
                kept.append(it)
        out.extend(kept)
    partial_tables = {it.table for it in out if it.partial}
    whole: PrefixLookup[Recovered] = PrefixLookup()
    if partial_tables:
        for it in out:
            if not it.partial and it.table in partial_tables:
                whole.add(it.table, it.values, it)
    merged: list[Recovered] = [it for it in out if not it.partial]

    def size(r: Recovered) -> int:
        return sum(len(v) for v in r.values if isinstance(v, (str, bytes)))

    for it in sorted((it for it in out if it.partial), key=size, reverse=True):
        full = whole.find(it.table, it.values,
                          lambda w: it.rowid is None or w.rowid is None or it.rowid == w.rowid)
        if full is not None:
            full.also_found_in.append(it.where())
            continue
        whole.add(it.table, it.values, it)
        merged.append(it)
    merged.sort(key=lambda r: (r.table, r.rowid if r.rowid is not None else 1 << 62, r.source, r.page, r.offset))
    return merged


def test_deduplicate_matches_grouping_every_key() -> None:
    import copy

    from bakestore.forensics.carve import deduplicate

    rng = random.Random(21)
    for _ in range(30):
        items = []
        for k in range(rng.randint(0, 400)):
            vals = [rng.choice([None, 1, 2]), rng.choice(["a", "ab", "abc", "b", None]), rng.choice(["x", "xy", None])]
            items.append(Recovered(rng.choice(["t", "u"]), rng.choice(["freelist", "freeblock", "wal", "journal"]),
                                   rng.randint(1, 30), rng.randint(0, 4000), rng.choice([None, 1, 2, 3, 4]), vals,
                                   rng.choice([0.6, 0.8, 0.95]), "cell", partial=rng.random() < 0.3,
                                   key=rng.randint(0, 60)))
        expected = _old_deduplicate(copy.deepcopy(items))
        got = deduplicate(copy.deepcopy(items))
        assert got == expected
        assert [r.also_found_in for r in got] == [r.also_found_in for r in expected]


def test_loose_candidates_column_path_matches_the_row_test() -> None:
    from bakestore.forensics.carve import _loose_candidates

    rng = random.Random(2)
    words = ["", "a", "ab", "abc", "b", "ba", "é", "éa"]
    for kind in (str, bytes):
        def val(w: str) -> Any:
            return w if kind is str else w.encode()

        rows = [((val(rng.choice(words)), val(rng.choice(words))), i) for i in range(300)]
        mixed = rows + [((val("ab"), 7), 300), ((val("ab"),), 301)]
        for probe_word in words:
            for j in (0, 1):
                values: list[Any] = [None, None]
                values[j] = val(probe_word)
                for table in (rows, mixed):
                    expected = [e for e in table if len(e[0]) == 2 and (e[0][j] == values[j] or (
                        type(e[0][j]) is kind and e[0][j].startswith(values[j])))]
                    assert _loose_candidates(values, [j], table) == expected


def test_copy_with_read_ahead_hashes_and_copies_every_byte(tmp_path: Path) -> None:
    import hashlib
    import threading

    from bakestore.forensics.evidence import _copy_hashing

    data = random.Random(1).randbytes((8 << 20) * 2 + 12345)  # several read-ahead chunks and a tail
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    before = threading.active_count()
    digest, size = _copy_hashing(src, tmp_path / "dst.bin")
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert (tmp_path / "dst.bin").read_bytes() == data
    assert threading.active_count() == before  # the reader is gone (a later fork needs that)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert _copy_hashing(empty, tmp_path / "empty-copy.bin") == (hashlib.sha256(b"").hexdigest(), 0)


def test_column_rule_is_the_rule_check_applies() -> None:
    from bakestore.forensics.carve import TableMatcher
    from bakestore.forensics.fileformat import parse_create_table

    schema = parse_create_table("t", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, c INTEGER, "
                                     "d REAL NOT NULL, e, f BLOB NOT NULL)", 2)
    strict = parse_create_table("s", "CREATE TABLE s (x INTEGER, y TEXT NOT NULL, z ANY) STRICT", 3)
    for m in (TableMatcher(schema), TableMatcher(strict)):
        for i in range(m.n):
            for st in [-1, *range(0, 40), 200, 201]:
                sts = [0 if k == m.schema.rowid_alias else (13 if m.kinds[k].startswith("text") else 1)
                       for k in range(m.n)]
                sts[i] = st
                assert m.column_accepts(i, st) == m.check(sts), (m.name, i, st)


def test_inline_cells_in_carving_match_the_cell_reader(tmp_path: Path) -> None:
    from bakestore.forensics.analysis import parse_database
    from bakestore.forensics.btree import parse_page_header, read_table_leaf_cell
    from bakestore.forensics.carve import Carver
    from bakestore.forensics.fileformat import PARSE_ERRORS, SQLITE_MASTER
    from tests.forensics_corpus import build_rollback

    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=300, n_big=4)
    data = db.path.read_bytes()
    parsed = parse_database(data)
    carver = Carver([SQLITE_MASTER, *[t.schema for t in parsed.tables.values()]], encoding="utf-8", usable=4096,
                    live_keys=set(), live_rowids={}, templates=parsed.templates, overflow_view=parsed.view_current)
    leaves = [data[i:i + 4096] for i in range(4096, len(data), 4096) if data[i] == 0x0D]
    assert leaves

    def fields(h: Any) -> tuple[Any, ...]:
        return (h.sts, h.body, h.values, h.tables, h.start, h.end, h.rowid, h.confidence, h.region, h.detail, h.key)

    rng = random.Random(13)
    compared = 0
    for n in range(1500):
        page = bytearray(rng.choice(leaves))
        for _ in range(rng.choice([0, 1, 3, 10])):
            page[rng.randrange(8, len(page)) if rng.random() < 0.7 else rng.randrange(8, 80)] = rng.randrange(256)
        image = bytes(page)
        try:
            header = parse_page_header(image, 2, 4096)
        except PARSE_ERRORS:
            continue
        expected = []
        for off in header.pointers:  # the cell loop as it was
            try:
                hit = carver._from_cell(image, read_table_leaf_cell(image, off, 4096))
            except PARSE_ERRORS:
                continue
            if hit is not None:
                expected.append(fields(hit))
        got, _ = carver.carve_image(image, 2, cells=True)
        cell_hits = [fields(h) for h in got if h.region == "cell" and h.start in header.pointers]
        assert cell_hits == expected[:len(cell_hits)] and len(cell_hits) == len(expected)
        compared += len(expected)
    assert compared > 1000


def test_grouped_scan_regex_carves_what_one_pattern_per_table_carves(tmp_path: Path) -> None:
    """The scan regex groups tables (merged column patterns, one header-byte check per group): it
    may match a few more offsets than one pattern per table, and scanning must give the same hits."""
    import re

    from bakestore.forensics.analysis import parse_database
    from bakestore.forensics.carve import Carver, _byte_class
    from bakestore.forensics.fileformat import SQLITE_MASTER, parse_create_table
    from bakestore.registry import REGISTRY
    from bakestore.schema import table_sql
    from tests.forensics_corpus import build_rollback

    schemas = [SQLITE_MASTER] + [parse_create_table(spec.name, table_sql(spec), 2 + i)
                                 for i, spec in enumerate(REGISTRY.tables)]
    schemas += [parse_create_table("legacy", "CREATE TABLE legacy (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                             "qty REAL, note TEXT, blob BLOB, x)", 900),
                parse_create_table("pair", "CREATE TABLE pair (k TEXT NOT NULL, v INTEGER NOT NULL)", 901)]
    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=200, n_big=2)
    parsed = parse_database(db.path.read_bytes())
    schemas += [t.schema for t in parsed.tables.values()]

    def carver() -> Carver:
        return Carver(schemas, encoding="utf-8", usable=4096, live_keys=set(), live_rowids={})

    grouped, per_table = carver(), carver()
    scannable = [m for m in per_table.matchers if m.header_pattern is not None and not m.weak]
    assert len(scannable) > 50
    per_table.scan_re = re.compile(_byte_class(b for m in scannable for b in m.first_bytes) + b"(?:" + b"|".join(
        b"(?<=%s)(?=%s)" % (_byte_class(m.first_bytes), m.rest_pattern) for m in scannable) + b")", re.S)

    rng = random.Random(21)
    data = db.path.read_bytes()
    samples = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    samples.append(bytes(rng.randrange(256) for _ in range(4000)))
    for _ in range(60):  # record-like bytes: header lengths, odd text types, small ints, UUID-ish text
        parts = []
        for _ in range(300):
            kind = rng.random()
            if kind < 0.3:
                parts.append(bytes([rng.randrange(2, 40)]))
            elif kind < 0.6:
                parts.append(bytes([rng.randrange(13, 128) | 1]))
            elif kind < 0.8:
                parts.append(bytes([rng.randrange(0, 10)]))
            else:
                parts.append(bytes([rng.randrange(32, 127)]) * rng.randrange(1, 3) + b"0a-9f-")
        samples.append(b"".join(parts))
    extra = hits = 0

    def fields(h: Any) -> tuple[Any, ...]:
        return (h.sts, h.body, h.values, h.tables, h.start, h.end, h.rowid, h.confidence, h.region, h.detail, h.key)

    for sample in samples:
        offsets = {m.start() for m in grouped.scan_re.finditer(sample)}
        expected_offsets = {m.start() for m in per_table.scan_re.finditer(sample)}
        assert expected_offsets <= offsets
        extra += len(offsets - expected_offsets)
        got = [fields(h) for h in grouped.scan(sample, 0, len(sample), "gap")]
        assert got == [fields(h) for h in per_table.scan(sample, 0, len(sample), "gap")]
        hits += len(got)
    assert hits > 100 and extra > 0  # both paths found records; the grouped regex did match more offsets
