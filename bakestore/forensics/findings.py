"""Findings: what the numbers mean, stated in plain words with the numbers that support them.

Each finding is a dict with stable keys (``kind``, ``severity``, ``title``, ``detail``,
``tables``, ``data``) so the UI can show or filter them. Severity: ``info`` (a fact),
``warning`` (worth a look), ``alert`` (a data-loss fingerprint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .timeline import GAP_SECONDS, iso_text

if TYPE_CHECKING:
    from .analysis import ParsedDatabase
    from .report import Report


def _finding(kind: str, severity: str, title: str, detail: str, tables: list[str] | None = None,
             **data: Any) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "title": title, "detail": detail, "tables": tables or [],
            "data": data}


def _hours(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def _related(db: "ParsedDatabase") -> dict[str, set[str]]:
    """Tables linked by foreign keys, in both directions."""
    rel: dict[str, set[str]] = {name: set() for name in db.tables}
    for name, lt in db.tables.items():
        for other in lt.schema.related:
            if other in rel and other != name:
                rel[name].add(other)
                rel[other].add(name)
    return rel


def build_findings(report: "Report", db: "ParsedDatabase") -> list[dict[str, Any]]:
    """Derive the findings from a built report."""
    out: list[dict[str, Any]] = []
    pages = report.pages
    total = pages["page_count"]
    free = pages["free_pages"]
    user_tables = {t["name"]: t for t in report.tables if not t["name"].startswith("sqlite_") and not t["dropped"]}

    if free:
        out.append(_finding(
            "free_pages", "warning" if pages["free_ratio"] >= 0.05 else "info",
            f"{free} of {total} pages are free ({pages['free_ratio']:.1%})",
            f"The freelist holds {free} pages. A database that has only ever grown has 0 free pages, so rows or "
            f"tables were deleted (or an index dropped) since the file last shrank (VACUUM).",
            free_pages=free, page_count=total, free_ratio=pages["free_ratio"]))
    sd = pages["secure_delete"]
    out.append(_finding("secure_delete", "info", f"Secure delete: {sd['verdict']}", sd["explanation"],
                        setting=sd["setting"]))

    rec = report.recovered
    if rec:
        by_table = report.recovered_by_table()
        by_source: dict[str, int] = {}
        for r in rec:
            by_source[r.source] = by_source.get(r.source, 0) + 1
        top = ", ".join(f"{t} {n}" for t, n in sorted(by_table.items(), key=lambda kv: -kv[1])[:8])
        srcs = ", ".join(f"{s} {n}" for s, n in sorted(by_source.items(), key=lambda kv: -kv[1]))
        out.append(_finding("recovered_rows", "warning",
                            f"{len(rec)} deleted rows recovered from {len(by_table)} tables",
                            f"Recovered per table: {top}. By source: {srcs}.", sorted(by_table),
                            by_table=by_table, by_source=by_source))

    # The incident fingerprint: tables empty while the tables they belong with are full. A fresh
    # database also has empty tables, so this needs evidence that rows existed: recovered rows,
    # an AUTOINCREMENT high-water mark, or free pages.
    rel = _related(db)
    empty = [n for n, t in user_tables.items() if t["rows"] == 0]
    full = [n for n, t in user_tables.items() if t["rows"] > 0]
    with_evidence: list[str] = []
    for name in empty:
        t = user_tables[name]
        evidence_bits = []
        if t["sqlite_sequence"]:
            evidence_bits.append(f"sqlite_sequence says it once reached id {t['sqlite_sequence']}")
        if t["recovered"]:
            evidence_bits.append(f"{t['recovered']} of its deleted rows were recovered")
        if not evidence_bits:
            continue
        with_evidence.append(name)
        full_neighbours = sorted(o for o in rel.get(name, ()) if o in user_tables and user_tables[o]["rows"] > 0)
        why = []
        if full_neighbours:
            why.append("related tables still have rows: " + ", ".join(
                f"{o} ({user_tables[o]['rows']})" for o in full_neighbours[:6]))
        out.append(_finding(
            "empty_table", "alert", f"{name} is empty but held rows",
            f"{name} has 0 rows, yet " + "; ".join(evidence_bits + why) + ".", [name],
            related_full=full_neighbours, sqlite_sequence=t["sqlite_sequence"], recovered=t["recovered"]))
    if len(empty) >= 3 and full and (with_evidence or free):
        out.append(_finding(
            "wipe_fingerprint", "alert" if with_evidence else "warning",
            f"{len(empty)} tables empty while {len(full)} hold data",
            f"Empty: {', '.join(sorted(empty)[:15])}{'…' if len(empty) > 15 else ''}. With data: "
            + ", ".join(f"{n} ({user_tables[n]['rows']})" for n in sorted(full)[:15])
            + f". {len(with_evidence)} of the empty tables demonstrably held rows and {free} pages are free. "
              "A partial wipe (a bulk DELETE over a hand-kept list of tables) leaves exactly this pattern.",
            sorted(empty), empty=sorted(empty), full=sorted(full), with_evidence=sorted(with_evidence)))

    # Re-seeded after a wipe: every row of a table is in a later time cluster than related tables.
    tl = report.timeline
    prim: dict[str, dict[str, Any]] = {c["table"]: c for c in tl.get("columns", []) if c.get("primary")}
    main_end = max(tl["clusters"], key=lambda c: c["count"])["end_ts"] if tl.get("clusters") else None
    for name, col in prim.items():
        live = col["live"]
        if not live["count"] or name not in user_tables:
            continue
        others = [o for o in (rel.get(name) or ()) if o in prim and prim[o]["live"]["count"]]
        if not others:
            # No related table: compare with the tables active by the end of the main burst of
            # activity (the global cluster holding most rows), not with every table. Otherwise two
            # unrelated tables re-seeded together hide each other (the seed incident re-seeded both
            # category tables; the one compared with the other was never flagged).
            others = [o for o in prim if o != name and prim[o]["live"]["count"]
                      and (main_end is None or prim[o]["live"]["min_ts"] <= main_end)]
        if not others:
            continue
        earlier_max = max(prim[o]["live"]["max_ts"] for o in others)
        gap = live["min_ts"] - earlier_max
        if gap > GAP_SECONDS and len(live["clusters"]) == 1:
            earlier_tables = sorted(o for o in others if prim[o]["live"]["max_ts"] < live["min_ts"])
            support = []
            t = user_tables[name]
            if t["recovered"]:
                support.append(f"{t['recovered']} older rows of {name} were recovered from deleted space")
            if t["sqlite_sequence"] and t["max_rowid"] and t["sqlite_sequence"] > t["max_rowid"]:
                support.append(f"sqlite_sequence is {t['sqlite_sequence']} but the highest id is {t['max_rowid']}")
            out.append(_finding(
                "reseeded", "alert" if support else "warning", f"{name} looks re-seeded after a wipe",
                f"All {live['count']} rows of {name} have {col['column']} between {live['min']} and {live['max']}, "
                f"{_hours(gap)} after the newest row of {', '.join(earlier_tables[:6])} ({iso_text(earlier_max)}). "
                "Rows created together but appearing later is the pattern of a table emptied and re-seeded"
                + (": " + "; ".join(support) if support else "") + ".", [name],
                gap_seconds=gap, first=live["min"], others_latest=iso_text(earlier_max), compared_with=earlier_tables))

    # AUTOINCREMENT high-water marks above the live maximum: rows at the end were deleted.
    for name, t in user_tables.items():
        seq, mx = t["sqlite_sequence"], t["max_rowid"]
        if seq and t["rows"] and mx is not None and seq > mx:
            out.append(_finding("sequence_gap", "info", f"{name}: ids above {mx} were used and are gone",
                                f"sqlite_sequence for {name} is {seq} but the highest live id is {mx} "
                                f"({t['rows']} rows): at least {seq - mx} rows at the end were deleted.", [name],
                                sqlite_sequence=seq, max_rowid=mx))

    w = report.wal
    if w.get("present") and w.get("frames"):
        if w["committed_frames"]:
            out.append(_finding(
                "wal_uncheckpointed", "info", f"WAL holds {w['commits']} committed transactions",
                f"{w['committed_frames']} committed frames over {w['pages_in_committed_frames']} pages are in the WAL; "
                "the main file still holds the older versions of those pages until a checkpoint.",
                frames=w["committed_frames"], commits=w["commits"]))
        if w["stale_frames"]:
            out.append(_finding("wal_stale", "info", f"{w['stale_frames']} stale WAL frames",
                                "Frames from an older WAL generation (old salts) keep older page images that "
                                "secure_delete never touched.", frames=w["stale_frames"]))
        if w["uncommitted_frames"] or w["invalid_frames"]:
            out.append(_finding("wal_uncommitted", "warning", "WAL has frames past the last commit",
                                f"{w['uncommitted_frames']} uncommitted and {w['invalid_frames']} invalid frames: a "
                                "transaction was interrupted (crash or torn write).",
                                uncommitted=w["uncommitted_frames"], invalid=w["invalid_frames"]))
    j = report.journal
    if j.get("present") and j.get("records"):
        out.append(_finding("journal", "warning" if j.get("hot") else "info",
                            f"Rollback journal with {j['records']} page pre-images",
                            "The journal keeps the pages as they were before the last transaction"
                            + (" and is HOT: the next program that opens the database will roll it back."
                               if j.get("hot") else "."), records=j["records"], hot=j.get("hot")))
    for h in report.schema_history:
        out.append(_finding("dropped_table", "warning", f"Table {h['table']} was dropped or replaced",
                            f"Its CREATE statement survives in free space: {h['sql'][:200]}", [h["table"]]))
    if report.header.get("problems"):
        out.append(_finding("header", "warning", "Header inconsistencies", "; ".join(report.header["problems"])))
    integ = report.integrity
    if integ.get("ok") is False:
        out.append(_finding("integrity", "alert", "SQLite's integrity check failed",
                            "; ".join(integ.get("messages", [])[:5]) or integ.get("error") or ""))
    if integ.get("reader_vs_sqlite_row_mismatches"):
        out.append(_finding("reader_mismatch", "warning", "Row counts differ between this reader and SQLite",
                            str(integ["reader_vs_sqlite_row_mismatches"])))
    if report.errors:
        out.append(_finding("page_errors", "warning", f"{len(report.errors)} read errors in damaged pages",
                            "Each is listed with its page; the rest of the file was still analysed. First: "
                            + report.errors[0]["error"], errors=len(report.errors)))
    changed = report.file.get("originals_changed")
    if changed:
        out.append(_finding("evidence_changed", "alert", "The original files changed during the analysis",
                            "; ".join(changed)))
    return out
