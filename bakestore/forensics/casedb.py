"""case.db: the report as SQLite tables, built with sqlite-utils so Datasette can browse it.

Tables: ``evidence``, ``file_info`` (key/value: header, WAL, journal, integrity, page summary),
``tables``, ``pages``, ``freelist``, ``wal_frames``, ``journal_records``, ``recovered_rows``,
``timeline`` (per time column and cluster), ``timeline_histogram``, ``findings``, ``errors``.
Values of recovered rows are stored as JSON (bytes as {"$base64": ...}) plus one column per
position (``c0``, ``c1``, ...) for easy filtering; the recovered rowid is ``row_id`` because
``rowid`` is SQLite's own name for every table's key.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import sqlite_utils
from sqlite_utils.utils import suggest_column_types

from .jsontext import encode_json, jsonable, plain_values

if TYPE_CHECKING:
    from .carve import Recovered
    from .report import Report


def _flat(prefix: str, value: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        out.append({"key": prefix, "value": json.dumps(jsonable(value), ensure_ascii=False)})
    else:
        out.append({"key": prefix, "value": value if not isinstance(value, bytes) else value.hex()})


def _bulk(db: sqlite_utils.Database, name: str, rows: list[dict[str, Any]], pk: str | None = None,
          columns: dict[str, type] | None = None) -> None:
    """Create ``name`` with sqlite-utils (types from the rows) and fill it in one executemany.

    sqlite-utils' own insert builds SQL per chunk in Python, which dominates for the tens of
    thousands of pages and recovered rows of a large case; the table it creates is the same.
    """
    if columns is None:
        columns = suggest_column_types(rows) if rows else {}
    if not columns:
        return
    db.table(name).create(columns, pk=pk, if_not_exists=True)
    names = list(columns)
    sql = "INSERT INTO [{}] ({}) VALUES ({})".format(name, ", ".join(f"[{c}]" for c in names),
                                                    ", ".join("?" for _ in names))
    with db.conn:
        db.conn.executemany(sql, ([r.get(c) for c in names] for r in rows))


def _recovered_rows(recovered: list["Recovered"], width: int, col_json: dict[str, str]
                    ) -> Iterator[tuple[Any, ...]]:
    """recovered_rows tuples in column order; c0..cN hold the values as stored (JSON for the rest).

    A tuple ends after the row's last value (at most ``width`` of them): the columns after it are
    left out of the INSERT and so are NULL (see write_recovered_rows).
    """
    dumps = encode_json
    for i, r in enumerate(recovered, 1):
        values = r.values
        plain = plain_values(values)
        cells: Sequence[Any] = values[:width]
        if plain is not values:  # some value is bytes or a non-finite float
            cells = [v if v is None or type(v) in (int, float, str) else dumps(jsonable(v)) for v in cells]
        yield (i, r.table, r.source, r.page, r.offset, r.rowid, round(r.confidence, 3), r.region, r.frame,
               r.detail, int(r.rowid_live), int(r.partial), dumps(r.candidates) if r.candidates else "[]",
               dumps(r.also_found_in) if r.also_found_in else "[]", col_json.get(r.table, "null"),
               r.values_json if r.values_json is not None else dumps(plain), *cells)


def _open_output(path: Path, *, new: bool) -> sqlite_utils.Database:
    if new and path.exists():
        path.unlink()
    db = sqlite_utils.Database(path)
    if new:
        # Larger pages: fewer page writes for the ~1 KB rows of recovered_rows (about 10% faster).
        db.conn.execute("PRAGMA page_size = 16384")
    # An output file, deleted and rewritten whole when anything fails: no journal, no fsyncs.
    db.conn.execute("PRAGMA journal_mode = OFF")
    db.conn.execute("PRAGMA synchronous = OFF")
    return db


def write_recovered_rows(path: Path, recovered: list["Recovered"], columns: dict[str, list[str]]) -> None:
    """Create ``path`` (replacing it) with the ``recovered_rows`` table and its indexes.

    The biggest table by far; :func:`write_case_tables` adds the rest. They are separate so a
    worker process can write this one while the report is still being assembled.
    """
    db = _open_output(Path(path), new=True)
    try:
        width = min(max((len(r.values) for r in recovered), default=0), 32)
        cols: dict[str, type] = {"id": int, "table_name": str, "source": str, "page": int, "offset": int,
                                 "row_id": int, "confidence": float, "region": str, "frame": int, "detail": str,
                                 "rowid_live": int, "partial": int, "candidates": str, "also_found_in": str,
                                 "columns": str, "values_json": str}
        for j in range(width):
            cols[f"c{j}"] = str  # declared TEXT but holds each value as it was (SQLite keeps types)
        col_json = {t: json.dumps(c) for t, c in columns.items()}
        db.table("recovered_rows").create(cols, pk="id")
        names = [f"[{c}]" for c in cols]
        # Rows of one table come one after another and have the same number of values: each run
        # is one executemany naming only the columns it fills (binding ~20 NULLs per row of a
        # narrow table would cost more than the row itself).
        with db.conn:
            for n, run in itertools.groupby(_recovered_rows(recovered, width, col_json), key=len):
                db.conn.executemany("INSERT INTO [recovered_rows] ({}) VALUES ({})".format(
                    ", ".join(names[:n]), ", ".join("?" * n)), run)
        if recovered:
            for index_columns in (["table_name"], ["source"]):
                db.table("recovered_rows").create_index(index_columns, if_not_exists=True)
    finally:
        db.close()


def write_case_db(report: "Report", path: Path) -> None:
    """Write (replace) ``path`` with the report's tables."""
    write_recovered_rows(path, report.recovered, report.columns)
    write_case_tables(report, path)


def write_case_tables(report: "Report", path: Path, *, new: bool = False) -> None:
    """Add every table but ``recovered_rows`` to the case.db that :func:`write_recovered_rows` made.

    ``new``: write them into a new file instead (see :func:`merge_case_tables`).
    """
    db = _open_output(Path(path), new=new)
    try:
        db.table("evidence").insert_all(report.file.get("evidence", []), pk="role")
        info: list[dict[str, Any]] = []
        for section in ("file", "header", "pages", "integrity", "meta"):
            data = getattr(report, section)
            if section == "file":
                data = {k: v for k, v in data.items() if k != "evidence"}
            _flat(section, data, info)
        _flat("wal", {k: v for k, v in report.wal.items() if k != "frame_list"}, info)
        _flat("journal", {k: v for k, v in report.journal.items() if k != "record_list"}, info)
        db.table("file_info").insert_all(info, pk="key", replace=True)
        db.table("tables").insert_all(
            [{**t, "columns": json.dumps(t["columns"]), "time_columns": json.dumps(t["time_columns"]),
              "references": json.dumps(t["references"])} for t in report.tables], pk="name", replace=True)
        _bulk(db, "pages", report.page_list, "page",
              {"page": int, "kind": str, "owner": str, "free_bytes": int, "freeblocks": int, "zeroed": int,
               "recovered": int, "in_wal": int, "error": str})
        db.table("freelist").insert_all(
            [{"page": p["page"], "kind": p["kind"], "zeroed": p["zeroed"], "recovered": p["recovered"]}
             for p in report.page_list if p["kind"] in ("freelist_trunk", "freelist_leaf")], pk="page")
        if not db["freelist"].exists():
            db.table("freelist").create({"page": int, "kind": str, "zeroed": int, "recovered": int}, pk="page")
        frames = report.wal.get("frame_list", [])
        if frames:
            db.table("wal_frames").insert_all(frames, pk="index")
        else:
            db.table("wal_frames").create({"index": int, "offset": int, "pgno": int, "commit_size": int, "salt1": int,
                                     "salt2": int, "salt_ok": int, "checksum_ok": int, "state": str,
                                     "transaction": int}, pk="index")
        records = report.journal.get("record_list", [])
        if records:
            db.table("journal_records").insert_all(records)
        tl_rows = []
        for c in report.timeline.get("columns", []):
            for state in ("live", "recovered"):
                s = c[state]
                for k, cl in enumerate(s["clusters"], 1):
                    tl_rows.append({"table_name": c["table"], "column_name": c["column"], "encoding": c["encoding"],
                                    "state": state, "cluster": k, "start": cl["start"], "end": cl["end"],
                                    "rows": cl["count"], "primary_column": c["primary"]})
        # Tens of thousands of clusters on a large case: one executemany, not sqlite-utils' chunks.
        _bulk(db, "timeline", tl_rows, None,
              {"table_name": str, "column_name": str, "encoding": str, "state": str, "cluster": int, "start": str,
               "end": str, "rows": int, "primary_column": int})
        hist = report.timeline.get("histogram", [])
        if hist:
            db.table("timeline_histogram").insert_all(hist)
        db.table("findings").insert_all(
            [{"id": i, "kind": f["kind"], "severity": f["severity"], "title": f["title"], "detail": f["detail"],
              "tables": json.dumps(f["tables"]), "data": json.dumps(jsonable(f["data"]))}
             for i, f in enumerate(report.findings, 1)], pk="id")
        if not report.findings:
            db.table("findings").create({"id": int, "kind": str, "severity": str, "title": str, "detail": str}, pk="id")
        if report.errors:
            db.table("errors").insert_all([{"page": e.get("page"), "owner": e.get("owner"), "error": e["error"]}
                                     for e in report.errors])
        if db["pages"].exists() and db["pages"].count:
            db.table("pages").create_index(["kind"], if_not_exists=True)
    finally:
        db.close()


def merge_case_tables(source: Path, path: Path) -> None:
    """Copy every table and index of ``source`` (written by ``write_case_tables(new=True)``) into
    ``path``, in their order, rowids included: the same file as writing them there directly.

    Lets this process write the small tables while a worker still writes recovered_rows.
    """
    db = _open_output(Path(path), new=False)
    conn = db.conn
    try:
        conn.execute("ATTACH DATABASE ? AS case_tables", (str(source),))
        try:
            entries = conn.execute("SELECT type, name, sql FROM case_tables.sqlite_master "
                                   "WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
            with conn:
                for kind, name, sql in entries:
                    conn.execute(sql)  # an index goes to the table of its name in main
                    if kind != "table":
                        continue
                    quoted = '"' + name.replace('"', '""') + '"'
                    columns = ", ".join('"' + str(r[1]).replace('"', '""') + '"'
                                        for r in conn.execute(f"PRAGMA case_tables.table_info({quoted})"))
                    conn.execute(f"INSERT INTO main.{quoted} (rowid, {columns}) "
                                 f"SELECT rowid, {columns} FROM case_tables.{quoted}")
        finally:
            conn.execute("DETACH DATABASE case_tables")
    finally:
        db.close()
