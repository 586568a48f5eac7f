"""The report: one object with stable keys, rendered as text, Markdown, JSON and case.db.

The UI renders the same :class:`Report` (``to_dict()`` is the contract, documented in
docs/forensics.md), so every section is plain dicts and lists; recovered rows are
:class:`~bakestore.forensics.carve.Recovered` objects until serialised.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .carve import Recovered
from .children import die_with_parent, kill_child
from .jsontext import (_json_default, encode_json, encode_json_string, jsonable, plain_values,
                       values_json)
from .wal import wal_to_dict

if TYPE_CHECKING:
    from .analysis import ParsedDatabase
    from .evidence import Evidence
    from .fileformat import TableSchema

SCHEMA_VERSION = 1


@dataclass
class Report:
    """Everything the analysis found. ``to_dict()`` gives the report.json structure."""

    file: dict[str, Any]
    header: dict[str, Any]
    pages: dict[str, Any]
    integrity: dict[str, Any]
    wal: dict[str, Any]
    journal: dict[str, Any]
    tables: list[dict[str, Any]]
    timeline: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    recovered: list[Recovered] = field(default_factory=list)
    schema_history: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    page_list: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def recovered_by_table(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.recovered:
            out[r.table] = out.get(r.table, 0) + 1
        return out

    def to_dict(self, *, recovered: bool = True) -> dict[str, Any]:
        """The report.json document (JSON-safe: bytes as {"$base64": ...}, NaN as {"$float": ...}).

        ``recovered=False`` leaves that list empty (for writers that stream the items themselves).
        """
        doc = {
            "format": {"name": "bakestore-forensics-report", "version": SCHEMA_VERSION},
            "meta": self.meta, "file": self.file, "header": self.header, "pages": self.pages,
            "integrity": self.integrity, "wal": self.wal, "journal": self.journal, "tables": self.tables,
            "timeline": self.timeline, "findings": self.findings,
            "recovered": [_item_dict(r, self.columns.get(r.table)) for r in self.recovered] if recovered else [],
            "schema_history": self.schema_history, "errors": self.errors, "page_list": self.page_list,
        }
        # Only row values can hold bytes or non-finite floats; everything else is plain already,
        # so the C JSON encoder handles it without a slow recursive walk.
        doc["findings"] = jsonable(self.findings)
        return doc

    def to_json(self, indent: int | None = None) -> str:
        """report.json text. Indented for small reports; compact (fast) for large ones."""
        if indent is None and not self._large():
            indent = 1
        if indent is None:
            buf = io.StringIO()
            self.write_json(buf)
            return buf.getvalue()
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=_json_default)

    def _large(self) -> bool:
        return len(self.recovered) + len(self.page_list) >= 20000

    def write_json(self, out: Any) -> None:
        """Write report.json (the same text as :meth:`to_json`) to a text file.

        A large report is written in pieces: every section but ``recovered`` through the C
        encoder, the recovered items through :func:`_recovered_json` (the same text, several
        times faster than building a dict per item), so the whole document never sits in memory.
        """
        if not self._large():
            out.write(self.to_json())
            return
        doc = self.to_dict(recovered=False)
        out.write("{")
        first = True
        for key, value in doc.items():
            out.write(("" if first else ", ") + encode_json_string(key) + ": ")
            first = False
            if key == "recovered":
                out.write("[")
                items = self.recovered
                for start in range(0, len(items), 4096):
                    chunk = _recovered_json(items[start:start + 4096], self.columns)
                    out.write(chunk if start == 0 else ", " + chunk)
                out.write("]")
            else:
                out.write(encode_json(value))
        out.write("}")


def _item_dict(r: Recovered, columns: list[str] | None) -> dict[str, Any]:
    d = r.to_dict(columns)
    d["values"] = plain_values(d["values"])
    return d


def _recovered_json(items: list[Recovered], columns: dict[str, list[str]]) -> str:
    """The JSON text of ``[_item_dict(r, columns.get(r.table)) for r in items]`` without brackets.

    Exactly the text json.dumps writes for those dicts (a test compares them): the parts that
    repeat (table, source, columns, region, detail, ...) are encoded once and reused, only the
    values go through the C encoder per item. Anything unusual takes json.dumps itself.
    """
    enc = encode_json
    heads: dict[tuple[str, str], str] = {}
    mids: dict[str, str] = {}
    confs: dict[float, str] = {}
    tails: dict[tuple[str, str, bool, bool], str] = {}
    out: list[str] = []
    append = out.append
    for r in items:
        page, offset, rowid, table, conf = r.page, r.offset, r.rowid, r.table, r.confidence
        rowid_live, partial = r.rowid_live, r.partial
        if not (type(page) is int and type(offset) is int and (rowid is None or type(rowid) is int)
                and type(table) is str and type(r.source) is str and type(conf) is float
                and type(rowid_live) is bool and type(partial) is bool and math.isfinite(conf)):
            append(enc(_item_dict(r, columns.get(table))))
            continue
        head = heads.get((table, r.source))
        if head is None:
            head = heads[(table, r.source)] = \
                f'{{"table": {enc(table)}, "source": {enc(r.source)}, "page": '
        mid = mids.get(table)
        if mid is None:
            mid = mids[table] = f', "columns": {enc(columns.get(table))}, "confidence": '
        c = confs.get(conf)
        if c is None:
            c = confs[conf] = enc(round(conf, 3))
        if r.frame is None and not r.candidates and not r.also_found_in:
            key = (r.region, r.detail, rowid_live, partial)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = (f', "region": {enc(r.region)}, "frame": null, "detail": {enc(r.detail)}, '
                                     f'"candidates": [], "rowid_live": {enc(rowid_live)}, '
                                     f'"partial": {enc(partial)}, "also_found_in": []}}')
        else:
            tail = (f', "region": {enc(r.region)}, "frame": {enc(r.frame)}, "detail": {enc(r.detail)}, '
                    f'"candidates": {enc(r.candidates)}, "rowid_live": {enc(rowid_live)}, '
                    f'"partial": {enc(partial)}, "also_found_in": {enc(r.also_found_in)}}}')
        values = r.values_json
        if values is None:
            values = values_json(r.values)
        append(f'{head}{page}, "offset": {offset}, "rowid": {"null" if rowid is None else rowid}, '
               f'"values": {values}{mid}{c}{tail}')
    return ", ".join(out)


def _secure_delete_verdict(free_zero: int, free_residue: int, fb_zero: int, fb_residue: int) -> dict[str, Any]:
    """Judge from bytes whether the deleting connection wiped deleted content (sqlite-facts E5)."""
    facts = {"free_pages_zeroed": free_zero, "free_pages_with_residue": free_residue,
             "freeblock_pages_zeroed": fb_zero, "freeblock_pages_with_residue": fb_residue}
    free_total, fb_total = free_zero + free_residue, fb_zero + fb_residue
    if free_total + fb_total == 0:
        return {"verdict": "no deleted space", "setting": "unknown",
                "explanation": "The main file has no free pages and no freeblocks, so there is nothing to judge.",
                **facts}
    # Shares, not absolutes: SQLite itself leaves a few all-zero freeblocks (e.g. the placeholder
    # schema row of CREATE TABLE), so one zeroed block must not flip the verdict.
    free_wiped = free_zero / free_total if free_total else None
    fb_wiped = fb_zero / fb_total if fb_total else None
    shares = [x for x in (free_wiped, fb_wiped) if x is not None]
    if all(x >= 0.95 for x in shares):
        return {"verdict": "deleted content was wiped", "setting": "ON",
                "explanation": f"{free_zero} of {free_total} free pages and {fb_zero} of {fb_total} pages with "
                               "freeblocks are zero-filled: secure_delete was ON. Only the WAL, a journal or "
                               "backups can still hold deleted rows.", **facts}
    if fb_wiped is not None and fb_wiped >= 0.95 and free_wiped is not None and free_wiped < 0.5:
        return {"verdict": "deleted content may be recoverable", "setting": "FAST",
                "explanation": f"Freeblocks are zeroed on {fb_zero} of {fb_total} pages but {free_residue} free pages "
                               "keep their old bytes: secure_delete=FAST (freed whole pages are not wiped).", **facts}
    if all(x <= 0.5 for x in shares):
        return {"verdict": "deleted content may be recoverable", "setting": "OFF",
                "explanation": f"{free_residue} of {free_total} free pages and {fb_residue} of {fb_total} pages with "
                               "freeblocks still hold old bytes: secure_delete was OFF when rows were deleted.",
                **facts}
    return {"verdict": "deleted content may be recoverable", "setting": "mixed",
            "explanation": f"Some free space is wiped ({free_zero} free pages, {fb_zero} freeblock pages) and some "
                           f"is not ({free_residue} free pages, {fb_residue} freeblock pages): deletions were made "
                           "with different secure_delete settings.", **facts}


def build_report(evidence: "Evidence", db: "ParsedDatabase", facts: dict[int, dict[str, Any]],
                 recovered: list[Recovered], dropped: list["TableSchema"], integrity: dict[str, Any],
                 timeline: dict[str, Any]) -> Report:
    """Assemble the report sections from the parsed database and the carving results."""
    from .analysis import TOOL_VERSION

    rec_by_page: dict[int, int] = {}
    rec_counts: dict[str, int] = {}
    for r in recovered:
        rec_counts[r.table] = rec_counts.get(r.table, 0) + 1
        if r.source not in ("wal", "journal", "superseded"):
            rec_by_page[r.page] = rec_by_page.get(r.page, 0) + 1
    errors_by_page: dict[int, str] = {}
    for e in db.errors:
        if e.get("page"):
            errors_by_page.setdefault(e["page"], e["error"])
    by_kind: dict[str, int] = {}
    page_list: list[dict[str, Any]] = []
    free_zero = free_residue = fb_zero = fb_residue = 0
    freeblocks = freeblock_bytes = 0
    overlay = db.view_current.overlay
    for pgno in range(1, db.current_pages + 1):
        kind = db.page_kind.get(pgno, "orphan")
        if db.view_current.get(pgno) is None:
            kind = "missing"
        by_kind[kind] = by_kind.get(kind, 0) + 1
        f = facts.get(pgno, {})
        if kind == "freelist_leaf":
            if f.get("zeroed"):
                free_zero += 1
            else:
                free_residue += 1
        if f.get("freeblocks"):
            freeblocks += f["freeblocks"]
            freeblock_bytes += f.get("freeblock_bytes", 0)
            if f.get("zeroed"):
                fb_zero += 1
            else:
                fb_residue += 1
        page_list.append({"page": pgno, "kind": kind, "owner": db.page_owner.get(pgno),
                          "free_bytes": f.get("free_bytes"), "freeblocks": f.get("freeblocks", 0),
                          "zeroed": f.get("zeroed"), "recovered": rec_by_page.get(pgno, 0),
                          "in_wal": pgno in overlay, "error": errors_by_page.get(pgno) or f.get("error")})
    free_pages = by_kind.get("freelist_leaf", 0) + by_kind.get("freelist_trunk", 0)
    pages = {
        "page_size": db.page_size, "usable_size": db.usable, "page_count": db.current_pages,
        "main_file_pages": db.main_pages, "by_kind": by_kind, "free_pages": free_pages,
        "free_ratio": round(free_pages / db.current_pages, 4) if db.current_pages else 0.0,
        "freelist": db.freelist.to_dict(), "freeblocks": freeblocks, "freeblock_bytes": freeblock_bytes,
        "secure_delete": _secure_delete_verdict(free_zero, free_residue, fb_zero, fb_residue),
        "page_errors": sum(1 for p in page_list if p["error"]),
    }
    columns = report_columns(db, dropped)
    time_cols: dict[str, list[str]] = {}
    for c in timeline.get("columns", []):
        time_cols.setdefault(c["table"], []).append(c["column"])
    sqlite_counts = integrity.get("row_counts", {})
    tables: list[dict[str, Any]] = []
    for name, lt in db.tables.items():
        rowids = [r for r, _ in lt.rows] if not lt.schema.without_rowid else []
        tables.append({
            "name": name, "rows": len(lt.rows), "rows_sqlite": sqlite_counts.get(name), "pages": lt.pages,
            "columns": lt.schema.column_names, "rowid_alias": lt.schema.column_names[lt.schema.rowid_alias]
            if lt.schema.rowid_alias is not None else None, "without_rowid": lt.schema.without_rowid,
            "min_rowid": min(rowids) if rowids else None, "max_rowid": max(rowids) if rowids else None,
            "sqlite_sequence": db.sequence.get(name), "recovered": rec_counts.get(name, 0),
            "time_columns": time_cols.get(name, []), "references": sorted(lt.schema.related),
            "dropped": False, "errors": lt.errors, "sql": lt.schema.sql})
    known = _registry_groups()
    for t in tables:
        t["bakestore_group"] = known.get(t["name"])
    for ts in dropped:
        tables.append({"name": ts.name, "bakestore_group": known.get(ts.name), "rows": 0, "rows_sqlite": None, "pages": 0, "columns": ts.column_names,
                       "rowid_alias": ts.column_names[ts.rowid_alias] if ts.rowid_alias is not None else None,
                       "without_rowid": ts.without_rowid, "min_rowid": None, "max_rowid": None,
                       "sqlite_sequence": None, "recovered": rec_counts.get(ts.name, 0), "time_columns": [],
                       "references": sorted(ts.related), "dropped": True, "errors": 0, "sql": ts.sql})
    schema_history = [{"table": ts.name, "sql": ts.sql, "state": "dropped" if " (earlier schema)" not in ts.name
                       else "replaced"} for ts in dropped]
    header = db.header.to_dict()
    if db.header_current is not None:
        header["current_in_wal"] = db.header_current.to_dict()
    wal = wal_to_dict(db.wal) if db.wal else {"present": False}
    journal: dict[str, Any] = db.journal.summary() if db.journal else {"present": False}
    if db.journal:
        journal["record_list"] = [r.to_dict() for r in db.journal.records]
    file_info = {"path": evidence.db.original, "name": Path(evidence.db.original).name,
                 "size": evidence.db.size, "sha256": evidence.db.sha256_original,
                 "case_dir": str(evidence.case_dir), "collected_at": evidence.collected_at}
    meta = {"tool": TOOL_VERSION, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return Report(file=file_info, header=header, pages=pages, integrity=integrity, wal=wal, journal=journal,
                  tables=tables, timeline=timeline, recovered=recovered, schema_history=schema_history,
                  errors=db.errors, page_list=page_list, columns=columns, meta=meta)


def report_columns(db: "ParsedDatabase", dropped: list["TableSchema"]) -> dict[str, list[str]]:
    """Column names per table a recovered row can belong to (live, sqlite_master, dropped)."""
    columns = {name: lt.schema.column_names for name, lt in db.tables.items()}
    columns["sqlite_master"] = ["type", "name", "tbl_name", "rootpage", "sql"]
    for ts in dropped:
        columns[ts.name] = ts.column_names
    return columns


def _registry_groups() -> dict[str, str]:
    """bakestore's own table names and groups, when the registry is importable.

    Purely a label for the report: attribution never depends on it (the file's own schema
    decides), so any other SQLite file, or a build without the registry, loses nothing.
    """
    try:
        from ..registry import REGISTRY
    except (ImportError, AttributeError):
        return {}
    try:
        return {spec.name: spec.group for spec in REGISTRY}
    except (AttributeError, TypeError):
        return {}


def attach_integrity(report: Report, integrity: dict[str, Any]) -> None:
    """Add SQLite's check of the second copy, and compare its row counts with our reader's."""
    report.integrity = dict(integrity)
    counts = integrity.get("row_counts", {})
    for t in report.tables:
        if not t["dropped"]:
            t["rows_sqlite"] = counts.get(t["name"])
    report.integrity["reader_vs_sqlite_row_mismatches"] = {
        t["name"]: [t["rows"], t["rows_sqlite"]] for t in report.tables
        if isinstance(t["rows_sqlite"], int) and t["rows_sqlite"] != t["rows"]}


# --------------------------------------------------------------------------- rendering

def _fmt_value(v: Any, limit: int = 40) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= limit else s[:limit - 1] + "…"


def render_text(report: Report, *, max_rows: int = 10) -> str:
    """The readable report the CLI prints (also the body of report.md)."""
    d = report
    h = d.header
    lines: list[str] = []
    add = lines.append
    add(f"# Forensic report: {d.file['name']}")
    add("")
    add(f"File: {d.file['path']} ({d.file['size']:,} bytes), sha256 {d.file['sha256'][:16]}…")
    add(f"Case folder: {d.file['case_dir']}")
    for ev in d.file.get("evidence", []):
        state = "unchanged" if ev.get("unchanged_after_analysis") else "CHANGED"
        add(f"- {ev['role']}: {Path(ev['original']).name}, {ev['size']:,} bytes, mtime {ev['mtime']}, original {state}")
    add("")
    add("## Header")
    add(f"page size {h['page_size']} (reserved {h['reserved_bytes']}), page count in header {h['page_count']} vs "
        f"{h['page_count_from_file']} in file, change counter {h['file_change_counter']}, version-valid-for "
        f"{h['version_valid_for']}, schema cookie {h['schema_cookie']}, freelist trunk {h['freelist_trunk']} / "
        f"count {h['freelist_count']}, encoding {h['encoding']}, user_version {h['user_version']}, "
        f"application_id {h['application_id']}, auto_vacuum {h['auto_vacuum']}, last writer "
        f"SQLite {h['sqlite_version_number']}, journal mode at last write: {h['journal_mode_hint']}")
    for p in h["problems"]:
        add(f"- problem: {p}")
    p = d.pages
    add("")
    add("## Pages")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(p["by_kind"].items()))
    add(f"{p['page_count']} pages: {kinds}")
    add(f"free pages {p['free_pages']} ({p['free_ratio']:.1%}); {p['freeblocks']} freeblocks "
        f"({p['freeblock_bytes']:,} bytes); page errors {p['page_errors']}")
    sd = p["secure_delete"]
    add(f"Secure delete: {sd['verdict']} (setting {sd['setting']}). {sd['explanation']}")
    i = d.integrity
    add("")
    add("## Integrity (on a second copy)")
    if i.get("mode") == "none":
        add("not checked")
    else:
        msg = "ok" if i.get("ok") else "; ".join(i.get("messages", [])[:5]) or i.get("error") or "failed"
        add(f"PRAGMA {'integrity_check' if i.get('mode') == 'full' else 'quick_check'}: {msg}")
        if i.get("reader_vs_sqlite_row_mismatches"):
            add(f"row counts differ between our reader and SQLite: {i['reader_vs_sqlite_row_mismatches']}")
    w = d.wal
    add("")
    add("## WAL")
    if not w.get("present"):
        add("no -wal file")
    else:
        add(f"{w['size']:,} bytes, {w['frames']} frames: {w['committed_frames']} committed in {w['commits']} commits, "
            f"{w['uncommitted_frames']} uncommitted, {w['invalid_frames']} invalid, {w['stale_frames']} stale "
            f"(older WAL generation); not yet checkpointed: {w['frames_not_checkpointed']}")
        for e in w["errors"]:
            add(f"- {e}")
    j = d.journal
    if j.get("present"):
        add("")
        add("## Rollback journal")
        add(f"{j['size']:,} bytes, header {'valid' if j['header_valid'] else 'zeroed' if j['header_zeroed'] else 'damaged'}"
            f", {j['records']} page records ({j['records_checksum_ok']} with a good checksum)"
            + (", HOT (would be rolled back by the next opener)" if j.get("hot") else ""))
    add("")
    add("## Tables")
    add("| table | rows | pages | recovered | max rowid | sqlite_sequence | time columns |")
    add("|---|---:|---:|---:|---:|---:|---|")
    for t in d.tables:
        name = t["name"] + (" (dropped)" if t["dropped"] else "")
        add(f"| {name} | {t['rows']} | {t['pages']} | {t['recovered']} | {t['max_rowid'] if t['max_rowid'] is not None else ''}"
            f" | {t['sqlite_sequence'] if t['sqlite_sequence'] is not None else ''} | {', '.join(t['time_columns'])} |")
    add("")
    add("## Timeline")
    for c in d.timeline.get("columns", []):
        live = c["live"]
        if not live["count"] and not c["recovered"]["count"]:
            continue
        cl = "; ".join(f"{x['start']}…{x['end']} ({x['count']})" for x in live["clusters"][:4])
        more = f" +{len(live['clusters']) - 4} more" if len(live["clusters"]) > 4 else ""
        rec = c["recovered"]
        rtext = f"; recovered {rec['count']} ({rec['min']} … {rec['max']})" if rec["count"] else ""
        add(f"- {c['table']}.{c['column']} ({c['encoding']}): {live['count']} live, {live['min']} … {live['max']}; "
            f"clusters: {cl}{more}{rtext}")
    add("")
    add("## Findings")
    if not d.findings:
        add("none")
    for f in d.findings:
        add(f"- [{f['severity']}] {f['title']}: {f['detail']}")
    add("")
    add(f"## Recovered rows ({len(d.recovered)})")
    by_table = d.recovered_by_table()
    # One pass for every table: sources counted and the first rows kept.
    table_sources: dict[str, dict[str, int]] = {}
    table_shown: dict[str, list[Recovered]] = {}
    for r in d.recovered:
        counts = table_sources.get(r.table)
        if counts is None:
            counts = table_sources[r.table] = {}
            table_shown[r.table] = []
        counts[r.source] = counts.get(r.source, 0) + 1
        if len(table_shown[r.table]) < max_rows:
            table_shown[r.table].append(r)
    for table, n in sorted(by_table.items(), key=lambda kv: -kv[1]):
        sources = table_sources[table]
        add(f"### {table}: {n} rows ({', '.join(f'{k} {v}' for k, v in sorted(sources.items()))})")
        cols = d.columns.get(table) or []
        shown = table_shown[table]
        if cols:
            add("| source | page | offset | rowid | conf | " + " | ".join(cols) + " |")
            add("|---|---:|---:|---:|---:|" + "---|" * len(cols))
        for r in shown:
            vals = " | ".join(_fmt_value(v).replace("|", "\\|").replace("\n", " ") for v in r.values)
            add(f"| {r.source} | {r.page} | {r.offset} | {r.rowid if r.rowid is not None else '?'} | "
                f"{r.confidence:.2f} | {vals} |")
        if n > len(shown):
            add(f"… and {n - len(shown)} more (report.json, case.db)")
    if d.errors:
        add("")
        add(f"## Damaged pages and read errors ({len(d.errors)})")
        for e in d.errors[:20]:
            add(f"- page {e.get('page')}: {e['error']}")
        if len(d.errors) > 20:
            add(f"… and {len(d.errors) - 20} more (report.json)")
    return "\n".join(lines) + "\n"


#: Reports with at least this many recovered rows + pages write case.db in a forked process.
PARALLEL_MIN_ITEMS = 20000


def _fork_allowed(workers: int | None, big: bool) -> bool:
    """Whether a forked child may write SQLite files now.

    The child uses SQLite: fork only when this is the process's only thread (a lock held by
    another thread at fork time would stay locked in the child forever).
    """
    return ((workers is None and big) or (workers or 1) > 1) and threading.active_count() == 1 \
        and sys.platform.startswith("linux") and hasattr(os, "fork")


def _fork_run(task: Any, *args: Any) -> int:
    """Run ``task(*args)`` in a forked child; its pid (> 0), or -1 if fork failed (nothing ran)."""
    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            pid = os.fork()
        except OSError:
            return -1
    if pid == 0:  # the child: do the task and leave without the parent's cleanup
        code = 1
        try:
            die_with_parent(parent)  # no case.db without the report its parent was to write
            task(*args)
            code = 0
        finally:
            os._exit(code)
    return pid


def _child_ok(pid: int) -> bool:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    return status == 0


#: case.db is built under this name in the case folder and renamed to case.db when whole, so a
#: run that is killed or fails never leaves a case.db that is only part of one.
PARTIAL_CASE_DB = "case.db.partial"


class RecoveredRowsWriter:
    """case.db's ``recovered_rows`` table, written by a forked child while the report is assembled.

    :meth:`start` returns None when no child may be used (small case, ``workers=1``, other threads
    in the process, not Linux); :func:`write_outputs` then writes everything itself. If the child
    fails, write_outputs rewrites case.db whole, so the result never depends on the child. The child
    writes to :data:`PARTIAL_CASE_DB` (``part``); ``path`` is the case.db it is meant for.
    """

    def __init__(self, pid: int, recovered: list[Recovered], path: Path) -> None:
        self.pid = pid
        self.recovered = recovered
        self.path = path
        self.part = path.with_name(PARTIAL_CASE_DB)
        self.ok: bool | None = None

    @classmethod
    def start(cls, recovered: list[Recovered], columns: dict[str, list[str]], n_pages: int, case_dir: Path,
              workers: int | None = None) -> "RecoveredRowsWriter | None":
        from .casedb import write_recovered_rows

        path = Path(case_dir) / "case.db"
        if not _fork_allowed(workers, len(recovered) + n_pages >= PARALLEL_MIN_ITEMS):
            return None
        pid = _fork_run(write_recovered_rows, path.with_name(PARTIAL_CASE_DB), recovered, columns)
        return cls(pid, recovered, path) if pid > 0 else None

    def wait(self) -> bool:
        """Wait for the child; True if it wrote the table."""
        if self.ok is None:
            self.ok = _child_ok(self.pid)
        return self.ok

    def cancel(self) -> None:
        """The analysis failed: stop the child (if still writing), reap it and delete what it wrote."""
        if self.ok is None:
            kill_child(self.pid)
            _child_ok(self.pid)
            self.ok = False
        _remove_output(self.part)


def _remove_output(path: Path) -> None:
    """Delete a partial case.db or the staging file (journal_mode is OFF: there is no other file)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_outputs(report: Report, case_dir: Path, *, workers: int | None = None,
                  recovered_rows: RecoveredRowsWriter | None = None) -> dict[str, Path]:
    """Write report.md, report.json and case.db into the case folder.

    For a large report (and ``workers`` not 1, on Linux) case.db is written by a forked child while
    this process writes the JSON and Markdown; if the child fails, case.db is rewritten here.
    ``recovered_rows``: a child already writing case.db's biggest table (see
    :class:`RecoveredRowsWriter`); the other tables are added here when it is done.
    case.db is built as :data:`PARTIAL_CASE_DB` and renamed when whole; when anything fails, the
    partial file and the staging file are deleted (and the children stopped) before the error is
    raised.
    """
    from .casedb import merge_case_tables, write_case_db, write_case_tables

    case_dir = Path(case_dir)
    paths = {"md": case_dir / "report.md", "json": case_dir / "report.json", "db": case_dir / "case.db"}
    part = case_dir / PARTIAL_CASE_DB
    staged = case_dir / "case-tables.tmp.db"
    pid = 0
    try:
        if recovered_rows is None and _fork_allowed(workers, report._large()):
            pid = _fork_run(write_case_db, report, part)
        written = False
        try:
            paths["md"].write_text(render_text(report, max_rows=50), encoding="utf-8")
            with open(paths["json"], "w", encoding="utf-8") as out:
                report.write_json(out)
            if recovered_rows is not None:
                # While the worker still writes recovered_rows, the other tables go to a file of
                # their own; copied into case.db when the worker is done (a fraction of the time).
                write_case_tables(report, staged, new=True)
            written = True
        finally:
            if not written:  # failing anyway: what the children write is not wanted, stop them
                if pid > 0:
                    kill_child(pid)
                if recovered_rows is not None:
                    recovered_rows.cancel()
            whole = _child_ok(pid) if pid > 0 else False
            table = recovered_rows is not None and recovered_rows.wait() \
                and recovered_rows.recovered is report.recovered and recovered_rows.path == paths["db"]
        if table:
            merge_case_tables(staged, part)
        elif not whole:
            write_case_db(report, part)
        os.replace(part, paths["db"])
    finally:
        _remove_output(staged)
        _remove_output(part)  # gone already (renamed) unless something failed
    return paths
