"""The analysis pipeline: evidence copies → own byte parser → carving → timeline → findings.

:func:`analyze` is the one entry point; the CLI and the UI call it and render the
:class:`~bakestore.forensics.report.Report` it returns. SQLite is used only on the second copy
(``work/``), in a thread, for ``integrity_check`` and row counts that cross-check our reader.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import operator
import os
import pickle
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .btree import PageView, WalkResult, walk_btree
from .carve import (Carver, Recovered, _hashable, _loose_candidates, deduplicate, prefix_of,
                    serial_templates)
from .children import die_with_parent, kill_child, parent_alive
from .evidence import Evidence, collect, make_work_copy, verify_originals
from .fileformat import (PARSE_ERRORS, SQLITE_MASTER, Header, TableSchema, decode_record, parse_create_table,
                         parse_header)
from .freelist import FreelistInfo, lock_byte_page, pointer_map_pages, walk_freelist
from .journal import JournalInfo, parse_journal, record_image
from .jsontext import values_json
from .wal import WalInfo, committed_overlay, frame_image, parse_shm, parse_wal

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .report import Report

TOOL_VERSION = "bakestore-forensics 1"


@dataclass
class SchemaEntry:
    """One row of sqlite_master as our reader decoded it."""

    type: str
    name: str
    tbl_name: str
    rootpage: int
    sql: str | None


@dataclass
class LiveTable:
    """A table of the current (WAL-applied) database state as walked by our reader."""

    schema: TableSchema
    rows: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    pages: int = 0
    errors: int = 0


@dataclass
class ParsedDatabase:
    """Everything the raw reader learned about one database (used by analyze and compare)."""

    header: Header
    header_current: Header | None
    page_size: int
    usable: int
    main_pages: int
    current_pages: int
    view_main: PageView
    view_current: PageView
    wal: WalInfo | None
    wal_data: bytes
    journal: JournalInfo | None
    journal_data: bytes
    schema: list[SchemaEntry]
    tables: dict[str, LiveTable]
    index_pages: dict[str, int]
    page_kind: dict[int, str]
    page_owner: dict[int, str]
    freelist: FreelistInfo
    errors: list[dict[str, Any]]
    live_keys: set[int]
    live_rowids: dict[str, dict[int, int]]
    templates: dict[str, dict[int, int]]
    sequence: dict[str, int]
    #: Live rows walked but not decoded yet: (table, error slot, (rowid, payload)s, index payloads).
    pending_rows: list[tuple[str, int, list[tuple[int, bytes]], list[bytes]]] = field(default_factory=list)

    def decode_live_rows(self) -> None:
        """Decode the walked live rows into ``tables[...].rows`` and fill ``sequence``.

        parse_database(decode_rows=False) leaves this for later (analyze runs it while a worker
        process carves). Rows that do not decode become errors, placed in ``errors`` exactly where
        decoding during the walk would have put them, so the report is the same either way.
        """
        if not self.pending_rows:
            return
        encoding = (self.header_current or self.header).encoding
        inserts: list[tuple[int, list[dict[str, Any]]]] = []
        for name, slot, walked, index_payloads in self.pending_rows:
            lt = self.tables[name]
            ts = lt.schema
            errs: list[dict[str, Any]] = []
            rows = lt.rows = []
            alias = ts.rowid_alias
            for rowid, payload in walked:
                try:
                    vals = decode_record(payload, encoding)
                except PARSE_ERRORS as exc:
                    errs.append({"page": None, "owner": name, "error": f"row {rowid}: {exc}"})
                    continue
                if alias is not None and alias < len(vals):
                    vals = vals[:alias] + (rowid,) + vals[alias + 1:]
                rows.append((rowid, vals))
            for payload in index_payloads:
                try:
                    rows.append((0, decode_record(payload, encoding)))
                except PARSE_ERRORS as exc:
                    errs.append({"page": None, "owner": name, "error": f"row: {exc}"})
            if errs:
                inserts.append((slot, errs))
        for slot, errs in reversed(inserts):
            self.errors[slot:slot] = errs
        self.pending_rows = []
        if "sqlite_sequence" in self.tables:
            for _, vals in self.tables["sqlite_sequence"].rows:
                if len(vals) >= 2 and isinstance(vals[1], int):
                    self.sequence[str(vals[0])] = vals[1]


def _integrity_worker(evidence: Evidence, mode: str, out: dict[str, Any]) -> None:
    """Runs in a thread: makes the second copy and checks it; SQLite releases the GIL while it checks."""
    from ..sqlite import sqlite3

    t0 = time.perf_counter()
    out.update({"mode": mode, "ok": None, "messages": [], "sqlite_version": sqlite3.sqlite_version,
                "row_counts": {}, "error": None})
    try:
        work_db = make_work_copy(evidence)
    except OSError as exc:
        out["error"] = f"cannot make the work copy: {exc}"
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return
    try:
        conn = sqlite3.connect(str(work_db))
    except sqlite3.Error as exc:
        out["error"] = f"SQLite cannot open the work copy: {exc}"
        return
    try:
        pragma = "integrity_check" if mode == "full" else "quick_check"
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(100)").fetchall()]
        out["messages"] = rows
        out["ok"] = rows == ["ok"]
        out["page_count"] = conn.execute("PRAGMA page_count").fetchone()[0]
        out["freelist_count"] = conn.execute("PRAGMA freelist_count").fetchone()[0]
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")]
        for name in names:
            try:
                out["row_counts"][name] = conn.execute(
                    'SELECT count(*) FROM "' + name.replace('"', '""') + '"').fetchone()[0]
            except sqlite3.Error as exc:
                out["row_counts"][name] = f"error: {exc}"
    except sqlite3.Error as exc:
        out["ok"] = False
        out["error"] = f"SQLite reported: {exc}"
    finally:
        conn.close()
        out["seconds"] = round(time.perf_counter() - t0, 3)


def parse_database(data: bytes, wal_data: bytes = b"", journal_data: bytes = b"", shm_data: bytes = b"",
                   *, decode_rows: bool = True) -> ParsedDatabase:
    """Read a database (and its WAL/journal) from bytes into the live state and page census."""
    errors: list[dict[str, Any]] = []
    header = parse_header(data, len(data))
    page_size = header.page_size
    wal: WalInfo | None = None
    if wal_data:
        wal = parse_wal(wal_data, page_size)
        if shm_data:
            wal.shm = parse_shm(shm_data)
        if not header.magic_ok and wal.magic_ok and wal.page_size != page_size:
            page_size = wal.page_size
    usable = page_size - header.reserved_bytes
    main_pages = -(-len(data) // page_size) if data else 0
    overlay = committed_overlay(wal, wal_data) if wal else {}
    current_pages = wal.db_size_after_commit if wal and wal.db_size_after_commit else main_pages
    present = max(main_pages, max(overlay, default=0))
    if current_pages > present:
        # A commit frame's size field is 32 bits of the evidence: a damaged or hostile WAL may
        # claim billions of pages. Only pages that exist (in the main file or the WAL) are read.
        assert wal is not None
        message = (f"the last WAL commit says the database has {current_pages:,} pages, but only {present:,} "
                   f"exist (main file and WAL together); the pages after {present:,} are not there to read")
        wal.errors.append(message)
        errors.append({"page": None, "owner": "wal", "error": message})
        current_pages = present
    view_main = PageView(data, page_size, main_pages)
    view_current = PageView(data, page_size, max(current_pages, max(overlay, default=0)), overlay)
    header_current = None
    if 1 in overlay:
        header_current = parse_header(overlay[1], current_pages * page_size)
    effective = header_current or header
    encoding = effective.encoding

    claimed: dict[int, Any] = {}
    page_kind: dict[int, str] = {}
    page_owner: dict[int, str] = {}

    def note(walk: WalkResult, owner: str) -> None:
        for pg, kind in walk.pages.items():
            page_kind[pg] = kind
            page_owner[pg] = owner
        for pg in walk.overflow_pages:
            page_kind[pg] = "overflow"
            page_owner[pg] = owner
        for err in walk.errors:
            errors.append({**err, "owner": owner})

    master = walk_btree(view_current, 1, usable, claimed=claimed)
    note(master, "sqlite_master")
    schema: list[SchemaEntry] = []
    master_keys: set[int] = set()
    for rowid, payload in master.rows:
        master_keys.add(hash(payload))
        try:
            vals = decode_record(payload, encoding)
        except PARSE_ERRORS as exc:
            errors.append({"page": None, "owner": "sqlite_master", "error": f"schema row {rowid}: {exc}"})
            continue
        if len(vals) < 5:
            errors.append({"page": None, "owner": "sqlite_master", "error": f"schema row {rowid} has {len(vals)} columns"})
            continue
        t, name, tbl, root, sql = vals[:5]
        schema.append(SchemaEntry(str(t), str(name), str(tbl), root if isinstance(root, int) else 0,
                                  sql if isinstance(sql, str) else None))

    tables: dict[str, LiveTable] = {}
    index_pages: dict[str, int] = {}
    live_keys: set[int] = set(master_keys)
    live_rowids: dict[str, dict[int, int]] = {"sqlite_master": {rowid: hash(p) for rowid, p in master.rows}}
    templates: dict[str, dict[int, int]] = {"sqlite_master": serial_templates(SQLITE_MASTER,
                                                                              [p for _, p in master.rows])}
    payloads_by_table: dict[str, list[bytes]] = {}
    pending: list[tuple[str, int, list[tuple[int, bytes]], list[bytes]]] = []
    for entry in schema:
        if entry.type == "table" and entry.sql and entry.rootpage > 0:
            ts = parse_create_table(entry.name, entry.sql, entry.rootpage)
            walk = walk_btree(view_current, entry.rootpage, usable, claimed=claimed,
                              want_index_payloads=ts.without_rowid)
            note(walk, entry.name)
            lt = LiveTable(ts, pages=len(walk.pages) + len(walk.overflow_pages), errors=len(walk.errors))
            keys = live_rowids.setdefault(entry.name, {})
            hashes = [hash(payload) for _, payload in walk.rows]
            live_keys.update(hashes)
            keys.update(zip([rowid for rowid, _ in walk.rows], hashes))
            # Decoded later (decode_live_rows); its errors go where decoding here would have put them.
            pending.append((entry.name, len(errors), walk.rows, walk.index_payloads))
            payloads_by_table[entry.name] = [p for _, p in walk.rows[:2000]]
            templates[entry.name] = serial_templates(ts, payloads_by_table[entry.name])
            tables[entry.name] = lt
        elif entry.rootpage > 0:
            walk = walk_btree(view_current, entry.rootpage, usable, claimed=claimed)
            note(walk, entry.name)
            index_pages[entry.name] = len(walk.pages) + len(walk.overflow_pages)

    n_current = view_current.page_count
    freelist = walk_freelist(view_current, effective.freelist_trunk, effective.freelist_count, usable)
    for err in freelist.errors:
        errors.append({**err, "owner": "freelist"})
    for pg in freelist.trunks:
        page_kind.setdefault(pg, "freelist_trunk")
    for pg in freelist.leaves:
        page_kind.setdefault(pg, "freelist_leaf")
    for pg in pointer_map_pages(n_current, usable, bool(effective.largest_root_page)):
        page_kind.setdefault(pg, "ptrmap")
    lock = lock_byte_page(page_size, n_current)
    if lock:
        page_kind.setdefault(lock, "lock_byte")

    db = ParsedDatabase(header, header_current, page_size, usable, main_pages, n_current, view_main,
                        view_current, wal, wal_data, None, journal_data, schema, tables, index_pages,
                        page_kind, page_owner, freelist, errors, live_keys, live_rowids, templates, {}, pending)
    if decode_rows:
        db.decode_live_rows()
    return db


def dropped_schemas(carver_hits: list[Recovered], live: dict[str, LiveTable]) -> list[TableSchema]:
    """CREATE TABLE statements recovered from free space whose table no longer exists (or differs)."""
    out: list[TableSchema] = []
    seen: set[str] = set()
    for item in carver_hits:
        if item.table != "sqlite_master" or len(item.values) < 5:
            continue
        t, name, _tbl, root, sql = item.values[:5]
        if t != "table" or not isinstance(sql, str) or not isinstance(name, str) or sql in seen:
            continue
        seen.add(sql)
        if name in live and live[name].schema.sql.startswith(sql):
            # The same statement, or the start of it: a stale copy of the live schema row (page 1
            # is rewritten whenever the schema changes), cut short where newer bytes overwrote it.
            # Not evidence of an earlier table.
            continue
        label = name if name not in live else f"{name} (earlier schema)"
        ts = parse_create_table(name, sql, root if isinstance(root, int) else 0)
        ts.name, ts.dropped = label, True
        if ts.columns:
            out.append(ts)
    return out


def carve_all(db: ParsedDatabase, schemas: list[TableSchema], *, schema_pass: bool = False,
              workers: int | None = None, while_carving: Callable[[], None] | None = None
              ) -> tuple[list[Recovered], dict[int, dict[str, Any]]]:
    """Carve every place deleted records can be: pages, freelist, WAL frames, journal, superseded pages.

    ``schema_pass`` carves only sqlite_master-shaped records from schema pages (to learn dropped
    tables before the main pass). ``workers``: processes for the page pass (None: automatic, see
    :func:`_carve_pages_parallel`; 1: this process only). The result is the same either way.
    ``while_carving``: work of the caller's that needs no carving result, run while a worker
    process carves (or first, without one).
    """
    effective = db.header_current or db.header
    carver = Carver(schemas, encoding=effective.encoding, usable=db.usable, live_keys=db.live_keys,
                    live_rowids=db.live_rowids, templates=db.templates, overflow_view=db.view_current)
    items: list[Recovered] = []
    facts: dict[int, dict[str, Any]] = {}
    overlay = db.view_current.overlay
    wal_current_frame: dict[int, int] = {}
    if db.wal:
        for f in db.wal.frames:
            if f.state == "committed":
                wal_current_frame[f.pgno] = f.index
    schema_pages = {pg for pg, owner in db.page_owner.items() if owner == "sqlite_master"} | {1}

    pages = [pgno for pgno in range(1, db.current_pages + 1) if not schema_pass or pgno in schema_pages]
    per_page = _carve_pages_parallel(db, carver, pages, wal_current_frame, workers, while_carving) \
        if not schema_pass else None
    if per_page is None:
        if while_carving is not None:
            while_carving()
        per_page = _carve_pages(db, carver, pages, wal_current_frame)
    for pgno in pages:
        got = per_page.get(pgno)
        if got is not None:
            items.extend(got[0])
            facts[pgno] = got[1]

    # Pages of the main file beyond the current database size (truncated by a WAL commit).
    if not schema_pass:
        for pgno in range(db.current_pages + 1, db.main_pages + 1):
            image = db.view_main.get(pgno)
            if image is None or image.count(0) == len(image):
                continue
            hits, _ = carver.carve_image(image, pgno, cells=True, whole_page_from=0)
            items.extend(carver.resolve(hits, source="unallocated", page=pgno,
                                        detail="beyond the end of the current database"))

    # Main-file images superseded by a committed WAL frame: older versions of those pages.
    for pgno in overlay:
        if schema_pass and pgno not in schema_pages:
            continue
        image = db.view_main.get(pgno) if pgno <= db.main_pages else None
        if image is None or image == overlay[pgno]:
            continue
        hits, _ = carver.carve_image(image, pgno, cells=True, whole_page_from=None, owner=db.page_owner.get(pgno))
        items.extend(carver.resolve(hits, source="superseded", page=pgno, owner=db.page_owner.get(pgno),
                                    detail="main-file page replaced by a newer WAL frame"))

    if db.wal:
        for f in db.wal.frames:
            if f.state == "committed" and wal_current_frame.get(f.pgno) == f.index:
                continue  # the current image, carved above
            if schema_pass and f.pgno not in schema_pages:
                continue
            image = frame_image(db.wal, db.wal_data, f)
            if image.count(0) == len(image):
                continue
            hits, _ = carver.carve_image(image, f.pgno, cells=True, whole_page_from=0,
                                         owner=db.page_owner.get(f.pgno))
            penalty = 0.0 if f.state == "committed" else 0.05
            detail = {"committed": "older committed WAL frame", "stale": "stale frame of an older WAL generation",
                      "uncommitted": "WAL frame of a transaction that never committed",
                      "invalid": "WAL frame after a checksum break"}[f.state]
            items.extend(carver.resolve(hits, source="wal", page=f.pgno, frame=f.index,
                                        owner=db.page_owner.get(f.pgno), penalty=penalty, detail=detail))

    if db.journal:
        for i, rec in enumerate(db.journal.records, 1):
            if schema_pass and rec.pgno not in schema_pages:
                continue
            image = record_image(db.journal, db.journal_data, rec)
            if len(image) < db.page_size or image.count(0) == len(image):
                continue
            hits, _ = carver.carve_image(image, rec.pgno, cells=True, whole_page_from=0,
                                         owner=db.page_owner.get(rec.pgno))
            items.extend(carver.resolve(hits, source="journal", page=rec.pgno, frame=i,
                                        owner=db.page_owner.get(rec.pgno),
                                        penalty=0.0 if rec.checksum_ok is not False else 0.1,
                                        detail="rollback journal pre-image"))
    return items, facts


def _carve_pages(db: ParsedDatabase, carver: Carver, pages: Iterable[int], wal_current_frame: dict[int, int]
                 ) -> dict[int, tuple[list[Recovered], dict[str, Any]]]:
    """Carve the current image of each page in ``pages``: ``{pgno: (items, page facts)}``."""
    out: dict[int, tuple[list[Recovered], dict[str, Any]]] = {}
    overlay = db.view_current.overlay
    for pgno in pages:
        kind = db.page_kind.get(pgno)
        image = db.view_current.get(pgno)
        if image is None:
            continue
        in_wal = pgno in overlay
        frame = wal_current_frame.get(pgno) if in_wal else None
        items: list[Recovered] = []
        if kind in ("table_leaf", "table_interior", "index_leaf", "index_interior"):
            owner = db.page_owner.get(pgno)
            hits, f = carver.carve_image(image, pgno, cells=False, owner=owner)
            for it in carver.resolve(hits, source="wal" if in_wal else "freeblock", page=pgno, frame=frame,
                                     owner=owner, detail="current WAL image" if in_wal else ""):
                if not in_wal and it.region == "gap":
                    it.source = "unallocated"
                items.append(it)
            out[pgno] = (items, f)
        elif kind in ("freelist_leaf", "freelist_trunk") or kind is None:
            start = db.freelist.trunk_used.get(pgno, 0) if kind == "freelist_trunk" else 0
            if kind == "freelist_leaf":
                f = {"zeroed": image.count(0) == len(image)}
            elif kind == "freelist_trunk":
                f = {"zeroed": image.count(0, start) == len(image) - start}
            else:
                f = {"zeroed": image.count(0) == len(image)}
            if not f["zeroed"]:
                # The trunk array overwrote the page start; a former leaf's cells survive after it.
                hits, more = carver.carve_image(image, pgno, cells=True, whole_page_from=start) if start == 0 \
                    else (carver.scan(image, start, db.usable, "page_scan"), {})
                f.update({k: v for k, v in more.items() if k != "zeroed"})
                source = "freelist" if kind else "unallocated"
                items.extend(carver.resolve(hits, source=source, page=pgno, frame=frame if in_wal else None,
                                            detail="orphan page (not reachable from any b-tree or the freelist)"
                                            if kind is None else ""))
            out[pgno] = (items, f)
        # Encoded here, in whichever process carves the page, rather than twice (report.json and
        # case.db) after the carving; values do not change after this point.
        for it in items:
            it.values_json = values_json(it.values)
    return out


#: Below this many pages a second process costs more than it saves.
PARALLEL_MIN_PAGES = 2000
_CHUNK = 64  # pages per work item; both processes take items from a shared queue until it is empty
_MAX_ITEMS = 4096  # work items in the queue (4 bytes each: the queue pipe is filled before the fork)


def _worker_count(workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    if not sys.platform.startswith("linux") or not hasattr(os, "fork") or not hasattr(os, "memfd_create"):
        return 1
    try:
        return min(2, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return 1


def _carve_pages_parallel(db: ParsedDatabase, carver: Carver, pages: list[int], wal_current_frame: dict[int, int],
                          workers: int | None, while_carving: Callable[[], None] | None = None
                          ) -> dict[int, tuple[list[Recovered], dict[str, Any]]] | None:
    """Carve the pages in a forked child and this process at once (carving is CPU-bound Python).

    The pages are cut into work items, put in a pipe before the fork; each process takes the
    next item when it is free (so the split follows the actual speed of each process, e.g. on a
    machine that is busy with other work). The child inherits the parsed database and the page
    images (copy-on-write: nothing is re-read, nothing opened) and appends its results per item
    to an anonymous memory file. This process first runs ``while_carving`` (work that does not
    need the carving results), then carves. Any item whose result does not come back from the
    child is carved here, so the result never depends on the child. ``None`` when one process is
    all there is to use or the file is small.
    """
    n = _worker_count(workers)
    if n < 2 or (workers is None and len(pages) < PARALLEL_MIN_PAGES) or not hasattr(os, "memfd_create"):
        return None
    # fork() copies only this thread: any lock another thread holds stays locked in the child.
    # Fork only when the sole other thread is our own integrity check (which the child never
    # touches); inside an application with threads of its own, carve in this process.
    ours = {t for t in threading.enumerate() if t.name == "forensics-integrity"}
    if len(set(threading.enumerate()) - ours) > 1:
        return None
    size = max(_CHUNK, -(-len(pages) // _MAX_ITEMS))
    chunks = [pages[i:i + size] for i in range(0, len(pages), size)]
    fds: list[int] = []
    try:
        queue_r, queue_w = os.pipe()
        fds += [queue_r, queue_w]
        out_fd = os.memfd_create("bakestore-carve", os.MFD_CLOEXEC)
        fds.append(out_fd)
        tokens = b"".join(i.to_bytes(4, "little") for i in range(len(chunks)))
        os.set_blocking(queue_w, False)  # a pipe smaller than the queue must fail here, not hang
        if os.write(queue_w, tokens) != len(tokens):
            raise OSError("work queue did not fit in the pipe")
        os.close(queue_w)
        fds.remove(queue_w)
    except OSError:
        for fd in fds:
            os.close(fd)
        return None

    def take() -> int | None:
        token = os.read(queue_r, 4)  # reads of 4 bytes from a pipe are atomic between readers
        return int.from_bytes(token, "little") if len(token) == 4 else None

    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with the integrity thread running
        try:
            pid = os.fork()
        except OSError:
            pid = -1
    if pid == 0:  # the child: carve, send, leave without running any of the parent's cleanup
        code = 1
        try:
            die_with_parent(parent)  # nobody would read its results: it must not go on alone
            with os.fdopen(out_fd, "wb", closefd=False) as out:
                while parent_alive(parent) and (i := take()) is not None:
                    got = _carve_pages(db, carver, chunks[i], wal_current_frame)
                    packed = {pg: ([_pack(it) for it in its], f) for pg, (its, f) in got.items()}
                    pickle.dump((i, packed), out, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)
    result: dict[int, tuple[list[Recovered], dict[str, Any]]] = {}
    done: set[int] = set()
    try:
        if while_carving is not None:
            while_carving()
        if pid > 0:
            while (i := take()) is not None:
                result.update(_carve_pages(db, carver, chunks[i], wal_current_frame))
                done.add(i)
    except BaseException:
        os.close(out_fd)
        if pid > 0:
            kill_child(pid)  # its results are not wanted any more: do not wait for it to carve all
        raise
    finally:
        os.close(queue_r)
        if pid > 0:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    with open(out_fd, "rb") as src:  # takes the descriptor: closed on leaving
        try:
            src.seek(0)
            while True:
                try:
                    i, packed = pickle.load(src)
                except EOFError:
                    break
                if i in done or not 0 <= i < len(chunks):
                    continue
                for pg, (its, f) in packed.items():
                    result[pg] = ([Recovered(*t) for t in its], f)
                done.add(i)
        except Exception as exc:  # noqa: BLE001 - a damaged tail from a failed child: its items are carved below
            log.warning("the carving worker's results end early (%s); carving the rest in this process", exc)
    for i, chunk in enumerate(chunks):
        if i not in done:
            result.update(_carve_pages(db, carver, chunk, wal_current_frame))
    return result


def _pack(item: Recovered) -> tuple[Any, ...]:
    """A Recovered as a plain tuple in field order (pickles and loads much faster than the object)."""
    return _FIELDS(item)


_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(Recovered)))


def drop_live_prefixes(items: list[Recovered], db: ParsedDatabase) -> list[Recovered]:
    """A truncated record cannot be compared by its bytes; drop it if it may be a live row's start."""
    probes: dict[str, list[Recovered]] = {}
    for it in items:
        if it.partial and it.table in db.tables:
            probes.setdefault(it.table, []).append(it)
    dead: set[int] = set()
    for name, its in probes.items():
        rows: list[tuple[Sequence[Any], bool]] = [(vals, True) for _, vals in db.tables[name].rows]
        if not rows:
            continue
        # The candidates PrefixLookup.find would test: rows sharing the probe's first present
        # value (its anchor), or every row for a probe without one. Indexed here only for the
        # anchor values the probes carry (a few hundred probes against a large table).
        anchors: dict[int, set[Any]] = {}
        for it in its:
            present = [i for i, v in enumerate(it.values) if v is not None]
            if len(present) > 1:
                anchors.setdefault(present[0], set()).add(_hashable(it.values[present[0]]))
        index: dict[tuple[int, Any], list[tuple[Sequence[Any], bool]]] = {}
        for i, wanted in anchors.items():
            for entry in rows:
                if i < len(entry[0]):
                    key = _hashable(entry[0][i])
                    if key in wanted:
                        index.setdefault((i, key), []).append(entry)
        for it in its:
            present = [i for i, v in enumerate(it.values) if v is not None]
            candidates: Sequence[tuple[Sequence[Any], bool]]
            if len(present) > 1:
                candidates = index.get((present[0], _hashable(it.values[present[0]])), [])
            else:
                candidates = _loose_candidates(it.values, present, rows)
            if any(prefix_of(it.values, vals) for vals, _ in candidates):
                dead.add(id(it))
    return [it for it in items if id(it) not in dead]


def load(evidence: Evidence, *, decode_rows: bool = True) -> ParsedDatabase:
    """Parse the evidence copies (never the originals); copies not hashed yet are hashed meanwhile."""
    data = evidence.read_all()
    try:
        db = parse_database(data["db"], data["wal"], b"", data["shm"], decode_rows=decode_rows)
        jdata = data["journal"]
        if jdata:
            db.journal = parse_journal(jdata, db.page_size, db.current_pages)
            db.journal_data = jdata
    finally:
        evidence.finish_hashing()
    return db


def analyze(path: str | Path, case_dir: str | Path, *, integrity: str = "full", write: bool = True,
            workers: int | None = None) -> "Report":
    """Run the full forensic analysis of ``path`` into ``case_dir`` and return the report.

    ``integrity``: ``"full"`` (PRAGMA integrity_check), ``"quick"`` (quick_check) or ``"none"``.
    With ``write`` the case folder receives report.md, report.json and case.db.
    ``workers``: processes used for carving and writing (None: up to 2 on Linux for large files;
    1: this process only). The report is the same for any value.
    """
    # The analysis builds millions of small objects (rows, records, report items) and frees none
    # of them until the end, so the cyclic garbage collector would only re-traverse them over and
    # over (a third of the run time on a large file, and every traversal dirties the pages a forked
    # carving worker shares with this process). It is paused for the call and restored after.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _analyze(path, case_dir, integrity=integrity, write=write, workers=workers)
    finally:
        if paused:
            # What the analysis made and returns (the report) is long-lived: put it in the oldest
            # generation at once, or the first collection after re-enabling would traverse a
            # million objects as if they were young (a tenth of a second on a large case).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _analyze(path: str | Path, case_dir: str | Path, *, integrity: str, write: bool, workers: int | None
             ) -> "Report":
    from .findings import build_findings
    from .report import Report, RecoveredRowsWriter, attach_integrity, build_report, report_columns, write_outputs
    from .timeline import LiveTimeline, build_timeline, live_timeline

    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: list[float] = [t0]) -> None:
        now = time.perf_counter()
        timings[name] = round(now - since[0], 3)
        since[0] = now

    evidence = collect(Path(path), Path(case_dir), hash_copies=False)  # load() hashes the copies it reads
    integrity_out: dict[str, Any] = {}
    thread: threading.Thread | None = None
    if integrity != "none":
        # The second copy is made in the thread too (file copies release the GIL).
        thread = threading.Thread(target=_integrity_worker, args=(evidence, integrity, integrity_out),
                                  name="forensics-integrity", daemon=True)
        thread.start()
    else:
        integrity_out.update({"mode": "none", "ok": None, "messages": [], "row_counts": {}})
    lap("copy_and_hash")
    db = load(evidence, decode_rows=False)
    lap("parse")
    live = db.tables
    live_schemas = [lt.schema for lt in live.values()]
    master_items, _ = carve_all(db, [SQLITE_MASTER], schema_pass=True)
    dropped = dropped_schemas(master_items, live)
    live_part: list[LiveTimeline] = []

    def while_carving(db: ParsedDatabase = db, out: list[LiveTimeline] = live_part) -> None:
        db.decode_live_rows()  # what needs the live rows but no carving result
        out.append(live_timeline(db))

    items, facts = carve_all(db, [SQLITE_MASTER, *live_schemas, *dropped], workers=workers,
                             while_carving=while_carving)
    lap("carve")
    # Every byte of evidence has been read and carved: the originals are hashed again now, in a
    # thread (hashlib releases the GIL) beside the deduplication, which uses one core only.
    verified: list[Any] = []
    verify = threading.Thread(target=_verify_worker, args=(evidence, verified), name="forensics-verify",
                              daemon=True)
    verify.start()
    try:
        recovered = deduplicate(drop_live_prefixes(items, db))
    finally:
        verify.join()
    lap("deduplicate")
    if thread is not None:
        thread.join()  # before a fork: the case.db writer uses SQLite, so no other thread may be in it
    lap("wait_for_integrity_check")
    writer = RecoveredRowsWriter.start(recovered, report_columns(db, dropped), db.current_pages, Path(case_dir),
                                       workers) if write else None
    finished = False
    try:
        timeline = build_timeline(db, recovered, live=live_part[0])
        report: Report = build_report(evidence, db, facts, recovered, dropped, integrity_out, timeline)
        lap("timeline_and_report")
        attach_integrity(report, integrity_out)
        if not verified or isinstance(verified[0], BaseException):
            raise verified[0] if verified else RuntimeError("verifying the originals failed")
        report.file["originals_changed"] = verified[0]
        report.file["evidence"] = [f.to_dict() for f in evidence.files.values()]
        report.findings = build_findings(report, db)
        lap("verify_and_findings")
        report.meta["seconds"] = round(time.perf_counter() - t0, 3)
        report.meta["timings"] = timings
        # The parsed database, the live rows and the carving results are not needed any more:
        # freeing millions of objects takes a tenth of a second, better spent now, while the
        # worker writes case.db, than when this function returns.
        del db, live, items, facts, master_items, live_part, while_carving
        if write:
            write_outputs(report, Path(case_dir), workers=workers, recovered_rows=writer)
            lap("write_outputs")  # after the files are written, so only in the returned report
            report.meta["seconds"] = round(time.perf_counter() - t0, 3)
        finished = True
    finally:
        if writer is not None:
            if finished:
                writer.wait()
            else:  # its partial case.db (recovered_rows only), beside no report: stopped and deleted
                writer.cancel()
    return report


def _verify_worker(evidence: Evidence, out: list[Any]) -> None:
    try:
        out.append(verify_originals(evidence))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
        out.append(exc)


__all__ = ["analyze", "parse_database", "carve_all", "load", "ParsedDatabase", "LiveTable", "SchemaEntry",
           "TOOL_VERSION"]


def analyze_isolated(path: str | Path, case_dir: str | Path, *, integrity: str = "full",
                     timeout: float | None = None) -> Path:
    """Run :func:`analyze` in a child process and return the case folder.

    For callers that hold SQLite connections to ``path`` (the UI server, an app embedding
    bakestore): reading and closing the evidence files with plain file I/O in *their* process would
    drop every POSIX lock their connections hold on it (sqlite.org/howtocorrupt.html, the
    posix_close_bug). A child process has no connections, so its reads cannot touch those locks.
    """
    import signal
    import subprocess
    import sys

    from ..errors import ForensicsError

    command = [sys.executable, "-m", "bakestore", "forensics", "--case", str(case_dir),
               "--integrity", integrity, "--json", "--", str(path)]
    # A session (and process group) of its own: on a timeout the child and every process it
    # forked (carving, case.db writer) are killed together, none is left running.
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or this caller interrupted: nothing may outlive it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate()  # reaps it (and closes the pipe)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise ForensicsError(f"{path}: the forensic analysis took longer than {timeout:g}s") from None
        raise
    if proc.returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        message = lines[-1].removeprefix("Error: ") if lines else f"exit status {proc.returncode}"
        raise ForensicsError(message)
    return Path(case_dir)
