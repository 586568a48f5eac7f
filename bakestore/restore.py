"""Restore, undo, reset and merge: one pipeline that never deletes in place.

::

    source ──► verify source ──► build & validate a fresh file ──► verify (integrity, FKs, counts)
           ──► diff + shrink guard ──► restore point of the live DB ──► atomic swap ──► audit

* The fresh file is built beside the live one with the live page size; every row is type-checked
  in Python and then checked by SQLite itself (STRICT tables, CHECK rules for every format and
  range, UNIQUE keys, ``foreign_key_check``), so a million rows validate at C speed. When a row
  fails, the model re-validates it to produce a message naming the source file, line and field.
* The swap is SQLite's online backup API from the closed fresh file into the live database: one
  write transaction, so readers in other processes see all-old or all-new, and a crash at any
  point leaves either (sqlite-facts A3/A4). No DELETE statement runs against the live database.
* Any failure before the swap leaves the live file as it was; every outcome, refusals included,
  is written to the audit log next to the database.

``merge`` is the exception that proves the rule: it upserts into the live database inside one
``BEGIN IMMEDIATE`` transaction (last writer wins by row version, tombstones applied), checks
foreign keys and the shrink guard before COMMIT, and takes a restore point first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import audit
from .errors import (
    BakestoreError,
    ForeignKeyError,
    LockedError,
    RestoreError,
    ShrinkRefusedError,
    SourceError,
    ValidationError,
)
from .exports import ExportFolderSource
from .registry import REGISTRY, Registry, TableSpec
from .schema import APPLICATION_ID, SCHEMA_VERSION, check_schema, schema_statements
from .seeds import seed_rows
from .sources import RowSource
from .sqlite import sqlite3
from .store import bulk_insert, translate_integrity_error, validate_row

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

#: Refuse by default when a restore would lose more than this share of all rows.
DEFAULT_MAX_LOSS = 0.25
#: How long the swap may wait for other connections to let go of the write lock.
SWAP_TIMEOUT_S = 30.0
#: Restore points kept per database (newest first); older ones are pruned after a success.
KEEP_RESTORE_POINTS = 20
FAULT_ENV = "BAKESTORE_FAULT"


def _fault(step: str) -> None:
    """Fault injection for crash tests: ``BAKESTORE_FAULT=<step>`` kills the process right here."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- results


@dataclass
class TableDiff:
    before: int
    after: int
    added: int = 0
    removed: int = 0
    changed: int = 0

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, int]:
        return {"before": self.before, "after": self.after, "added": self.added, "removed": self.removed,
                "changed": self.changed}


@dataclass
class RestoreResult:
    operation: str
    dry_run: bool
    source_label: str
    source_sha256: str | None
    diff: dict[str, TableDiff]
    restore_point: Path | None = None
    audit_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def counts_before(self) -> dict[str, int]:
        return {t: d.before for t, d in self.diff.items()}

    @property
    def counts_after(self) -> dict[str, int]:
        return {t: d.after for t, d in self.diff.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "dry_run": self.dry_run, "source": self.source_label,
                "source_sha256": self.source_sha256,
                "restore_point": str(self.restore_point) if self.restore_point else None,
                "audit_id": self.audit_id, "notes": self.notes,
                "diff": {t: d.as_dict() for t, d in self.diff.items()}}


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def store_lock(db_path: Path, timeout: float = 10.0) -> Iterator[None]:
    """An exclusive lock file *next to* the database (never a lock on the database itself)."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockedError(f"{db_path}: another bakestore operation (restore, merge, sync) "
                                      "is running; try again when it has finished") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


# --------------------------------------------------------------------------- sources


class DatabaseSource:
    """Another bakestore ``.db`` file (or a restore point) as a row source, opened read-only."""

    def __init__(self, path: str | os.PathLike[str], registry: Registry = REGISTRY) -> None:
        self.path = Path(path)
        self.registry = registry
        self.label = f"database {self.path}"
        self.db_id: str | None = None
        self._sha: str | None = None

    def _connect(self) -> Any:
        return sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True)

    def verify(self) -> None:
        if self.path.is_symlink():
            raise SourceError(f"{self.path}: is a symlink; refusing to follow it")
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such database file")
        with open(self.path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise SourceError(f"{self.path}: not an SQLite database")
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        self._sha = digest.hexdigest()
        conn = self._connect()
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                raise SourceError(f"{self.path}: not a bakestore database (application_id {app_id})")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            found = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', ["db_id"]).fetchone()
            self.db_id = found[0] if found else None
            if version != SCHEMA_VERSION:
                raise SourceError(f"{self.path}: schema version {version}, this bakestore needs {SCHEMA_VERSION}")
            result = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise SourceError(f"{self.path}: damaged: {'; '.join(result[:3])}")
            import sqlite_utils

            problems = check_schema(sqlite_utils.Database(conn), self.registry)
            if problems:
                raise SourceError(f"{self.path}: schema differs from this bakestore: {problems[0]}")
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{self.path}: cannot be read as a database: {exc}") from None
        finally:
            conn.close()

    def checksum(self) -> str | None:
        return self._sha

    def tables(self) -> list[str]:
        return [s.name for s in self.registry.exported_tables]

    def declared_counts(self) -> dict[str, int] | None:
        conn = self._connect()
        try:
            return {s.name: conn.execute(f'SELECT count(*) FROM "{s.name}"').fetchone()[0]
                    for s in self.registry.exported_tables}
        finally:
            conn.close()

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        spec = self.registry[table]
        conn = self._connect()
        try:
            columns = spec.column_names
            order = ", ".join(f'"{c}"' for c in spec.pk)
            cursor = conn.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} '
                                  f'FROM "{spec.name}" ORDER BY {order}')
            for index, values in enumerate(cursor, 1):
                yield f"{self.path.name}: {table} row {index}", dict(zip(columns, values))
        finally:
            conn.close()


def open_source(source: RowSource | str | os.PathLike[str]) -> RowSource:
    """An export folder, its manifest, or a ``.db`` file; RowSource objects pass through."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() or path.name == "manifest.json":
            return ExportFolderSource(path)
        if path.is_file():
            with open(path, "rb") as handle:
                if handle.read(16) == b"SQLite format 3\x00":
                    return DatabaseSource(path)
            raise SourceError(f"{path}: neither an export folder, its manifest.json, nor a bakestore database")
        raise SourceError(f"{path}: no such file or folder")
    return source


# --------------------------------------------------------------------------- building the fresh file

_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    "integer": frozenset({int}), "boolean": frozenset({int, bool}), "real": frozenset({float, int}),
    "uuid": frozenset({str}), "text": frozenset({str}), "date": frozenset({str}),
    "datetime": frozenset({str}), "json": frozenset({str}),
}


def _type_check(spec: TableSpec, row: dict[str, Any], where: str, label: str) -> list[Any]:
    """Exact keys and JSON types per column; returns the values in column order.

    SQLite's STRICT tables would quietly turn "5" into 5; a restore source with a string where a
    number belongs is damaged, so it is refused here, before SQLite sees it.
    """
    columns = spec.column_names
    if len(row) != len(columns) or any(c not in row for c in columns):
        unknown = sorted(set(row) - set(columns))
        missing = [c for c in columns if c not in row]
        if unknown:
            raise ValidationError(f"{label}: {where}: {spec.name}: unknown column {unknown[0]!r}",
                                  table=spec.name, field=unknown[0], record=where)
        raise ValidationError(f"{label}: {where}: {spec.name}.{missing[0]}: missing",
                              table=spec.name, field=missing[0], record=where)
    values = [row[c] for c in columns]
    for column, value in zip(spec.columns, values):
        if value is None:
            if not column.nullable:
                raise ValidationError(f"{label}: {where}: {spec.name}.{column.name}: missing value (null)",
                                      table=spec.name, field=column.name, record=where)
        elif type(value) not in _ALLOWED_TYPES[column.kind]:
            raise ValidationError(f"{label}: {where}: {spec.name}.{column.name}: expected {column.kind}, "
                                  f"got {type(value).__name__} {str(value)[:40]!r}",
                                  table=spec.name, field=column.name, record=where)
    return values


def _explain_row(spec: TableSpec, row: dict[str, Any], where: str, label: str, exc: Exception) -> BakestoreError:
    """Turn a SQLite refusal of one row into a message naming file, line and field."""
    try:
        validate_row(spec, row, record=where, complete=True)
    except ValidationError as problem:
        message = str(problem).replace(f" (record {where})", "")
        return ValidationError(f"{label}: {where}: {message}", table=spec.name, field=problem.field, record=where)
    translated = translate_integrity_error(spec, exc, row.get("id"))
    text = str(translated)
    if "UNIQUE" in str(exc) and any(f"{spec.name}.{pk}" in str(exc) for pk in spec.pk):
        text = f"{spec.name}: duplicate primary key {', '.join(str(row.get(pk)) for pk in spec.pk)}"
    return ValidationError(f"{label}: {where}: {text}", table=spec.name, field=translated.field, record=where)


def _connect_fresh(path: Path, page_size: int) -> Any:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA page_size = {page_size}")
    # The fresh file is not live yet: a crash only means building it again.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


@dataclass
class FreshDatabase:
    path: Path
    counts: dict[str, int]


def build_fresh(live_path: Path, source: RowSource, *, page_size: int, meta: dict[str, str],
                seed_stamp: Callable[[], tuple[str, str]] | None = None, registry: Registry = REGISTRY,
                progress: Progress | None = None, check_foreign_keys: bool = True) -> FreshDatabase:
    """Load ``source`` into a new file beside ``live_path`` and verify it; delete it on any failure."""
    fresh_path = live_path.with_name(f".{live_path.name}.fresh-{uuid.uuid4().hex[:12]}")
    conn = _connect_fresh(fresh_path, page_size)
    label = source.label
    counts: dict[str, int] = {}
    try:
        conn.execute("BEGIN")
        for statement in schema_statements(registry):
            conn.execute(statement)
        present = set(source.tables())
        specs = registry.exported_tables
        for index, spec in enumerate(specs):
            counts[spec.name] = 0
            if spec.name in present:
                counts[spec.name] = _load_table(conn, spec, source, label)
            if progress:
                progress(spec.name, index + 1, len(specs))
        declared = source.declared_counts() or {}
        for table, expected in declared.items():
            if counts.get(table, 0) != expected:
                raise SourceError(f"{label}: {table}: read {counts.get(table, 0)} rows, the source declares {expected}")
        # Seed tables the source does not carry (upstream files never include units) are seeded,
        # with the same deterministic ids every store uses, so they never collide.
        if seed_stamp is not None:
            for table, rows in seed_rows().items():
                if counts.get(table, 0) == 0:
                    now, _ = seed_stamp()
                    stamped = [{**row, "created_at": now, "updated_at": now, "row_version": seed_stamp()[1]}
                               for row in rows]
                    counts[table] = bulk_insert(_RawDb(conn), registry[table], stamped)
        for key, value in meta.items():
            conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)', [key, value])
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        if check_foreign_keys:
            _check_foreign_keys(conn, source, label, registry)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise RestoreError(f"{label}: the rebuilt database failed integrity_check: {'; '.join(result[:3])}")
        conn.close()
        with open(fresh_path, "rb+") as handle:
            os.fsync(handle.fileno())
        return FreshDatabase(fresh_path, counts)
    except BaseException:
        conn.close()
        _remove_db_files(fresh_path)
        raise


class _RawDb:
    """The one attribute bulk_insert needs, over a plain connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn


def _load_table(conn: Any, spec: TableSpec, source: RowSource, label: str) -> int:
    columns = spec.column_names
    sql = (f'INSERT INTO "{spec.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
           f'VALUES ({", ".join("?" for _ in columns)})')
    batch: list[list[Any]] = []
    pending: list[tuple[str, dict[str, Any]]] = []
    total = 0

    def flush() -> None:
        nonlocal total
        before = total
        try:
            conn.executemany(sql, batch)
        except sqlite3.IntegrityError as exc:
            done = conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0] - before
            where, row = pending[min(done, len(pending) - 1)]
            raise _explain_row(spec, row, where, label, exc) from None
        total += len(batch)

    for where, row in source.iter_rows(spec.name):
        if not isinstance(row, dict):
            raise ValidationError(f"{label}: {where}: expected an object", table=spec.name, record=where)
        batch.append(_type_check(spec, row, where, label))
        pending.append((where, row))
        if len(batch) >= 5000:
            flush()
            batch, pending = [], []
    if batch:
        flush()
    return total


def _check_foreign_keys(conn: Any, source: RowSource, label: str, registry: Registry) -> None:
    violation = conn.execute("PRAGMA foreign_key_check").fetchone()
    if violation is None:
        return
    table, rowid, parent, fkid = violation
    spec = registry[table]
    fk_rows = {row[0]: row for row in conn.execute(f'PRAGMA foreign_key_list("{table}")')}
    column = fk_rows[fkid][3] if fkid in fk_rows else "?"
    row = conn.execute(f'SELECT id, "{column}" FROM "{table}" WHERE rowid = ?', [rowid]).fetchone()
    row_id, value = (row[0], row[1]) if row else (None, None)
    total = conn.execute("SELECT count(*) FROM pragma_foreign_key_check").fetchone()[0]
    where = next((w for w, r in source.iter_rows(table) if r.get("id") == row_id), f"{table} id {row_id}")
    more = f" (+{total - 1} more dangling reference{'s' if total > 2 else ''})" if total > 1 else ""
    raise ForeignKeyError(f"{label}: {where}: {spec.name}.{column}: no {parent} row with id {value!r}{more}",
                          table=spec.name, field=column, record=where)


def _remove_db_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(path) + suffix)


# --------------------------------------------------------------------------- diff and the shrink guard


def diff_databases(live_path: Path, other_path: Path, registry: Registry = REGISTRY) -> dict[str, TableDiff]:
    """Per exported table: counts before/after and rows added, removed, changed (by primary key)."""
    conn = sqlite3.connect(f"file:{live_path.resolve()}?mode=ro", uri=True, timeout=5.0)
    try:
        conn.execute("ATTACH DATABASE ? AS other", [f"file:{other_path.resolve()}?mode=ro"])
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(f"file:{live_path.resolve()}?mode=ro", uri=True, timeout=5.0)
        conn.execute("ATTACH DATABASE ? AS other", [str(other_path)])
    try:
        conn.execute("BEGIN")
        return {spec.name: _diff_table(conn, spec, "main", "other") for spec in registry.exported_tables}
    finally:
        conn.close()


def _diff_table(conn: Any, spec: TableSpec, a: str, b: str) -> TableDiff:
    t = f'"{spec.name}"'
    join = " AND ".join(f'x."{c}" = y."{c}"' for c in spec.pk)
    before = conn.execute(f"SELECT count(*) FROM {a}.{t}").fetchone()[0]
    after = conn.execute(f"SELECT count(*) FROM {b}.{t}").fetchone()[0]
    if before == 0 or after == 0:
        return TableDiff(before, after, added=after, removed=before)
    added = conn.execute(f"SELECT count(*) FROM {b}.{t} y WHERE NOT EXISTS "
                         f"(SELECT 1 FROM {a}.{t} x WHERE {join})").fetchone()[0]
    removed = conn.execute(f"SELECT count(*) FROM {a}.{t} x WHERE NOT EXISTS "
                           f"(SELECT 1 FROM {b}.{t} y WHERE {join})").fetchone()[0]
    differs = " OR ".join(f'x."{c}" IS NOT y."{c}"' for c in spec.column_names if c not in spec.pk)
    changed = conn.execute(f"SELECT count(*) FROM {a}.{t} x JOIN {b}.{t} y ON {join} WHERE {differs}"
                           ).fetchone()[0] if differs else 0
    return TableDiff(before, after, added, removed, changed)


def shrink_problems(diff: dict[str, TableDiff], *, max_loss: float = DEFAULT_MAX_LOSS,
                    registry: Registry = REGISTRY) -> list[str]:
    """Why a change would shrink the data too much: emptied tables, or too large a share lost."""
    problems: list[str] = []
    domain = [s.name for s in registry.domain_tables if s.name in diff]
    emptied = [t for t in domain if diff[t].before > 0 and diff[t].after == 0]
    if emptied:
        problems.append("would empty " + ", ".join(f"{t} ({diff[t].before} → 0)" for t in emptied))
    before = sum(diff[t].before for t in domain)
    after = sum(diff[t].after for t in domain)
    if before and (before - after) / before > max_loss:
        shrinking = sorted((t for t in domain if diff[t].after < diff[t].before),
                           key=lambda t: diff[t].after - diff[t].before)
        detail = ", ".join(f"{t} ({diff[t].before} → {diff[t].after})" for t in shrinking[:8])
        problems.append(f"would lose {before - after} of {before} rows ({(before - after) / before:.0%}, "
                        f"more than {max_loss:.0%}): {detail}")
    return problems


# --------------------------------------------------------------------------- restore points


def restore_point_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".restore-points")


def list_restore_points(db_path: str | os.PathLike[str]) -> list[Path]:
    """Restore points of a database, newest first."""
    folder = restore_point_dir(Path(db_path))
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob("*.db") if not p.name.startswith(".")), reverse=True)


def make_restore_point(db_path: Path, operation: str) -> Path:
    """A consistent, verified copy of the live database (VACUUM INTO, fsync, rename, check)."""
    folder = restore_point_dir(db_path)
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{int(time.time() * 1000) % 1000:03d}Z"
    final = folder / f"{stamp}-{operation}.db"
    counter = 1
    while final.exists():
        final = folder / f"{stamp}-{operation}-{counter}.db"
        counter += 1
    tmp = folder / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    conn = sqlite3.connect(str(db_path), timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("VACUUM INTO ?", [str(tmp)])
    except sqlite3.DatabaseError as exc:
        _remove_db_files(tmp)
        raise RestoreError(f"{db_path}: could not take a restore point: {exc}") from None
    finally:
        conn.close()
    try:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(folder)
    except OSError as exc:
        _remove_db_files(tmp)
        raise RestoreError(f"{db_path}: could not write the restore point: {exc.strerror or exc}") from None
    check = sqlite3.connect(f"file:{final.resolve()}?mode=ro", uri=True)
    try:
        result = [r[0] for r in check.execute("PRAGMA quick_check")]
    finally:
        check.close()
    if result != ["ok"]:
        raise RestoreError(f"{final}: the new restore point failed its check: {result[0]}")
    return final


def prune_restore_points(db_path: Path, keep: int = KEEP_RESTORE_POINTS) -> list[Path]:
    removed = list_restore_points(db_path)[keep:]
    for path in removed:
        path.unlink()
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the swap


def swap_in(fresh_path: Path, live_path: Path, *, timeout: float = SWAP_TIMEOUT_S) -> None:
    """Make the live database's content the fresh file's, in one write transaction.

    The backup API copies every page into the live file under its write lock; WAL readers keep
    their snapshot until their transaction ends and then see the new content. The loop in
    CPython retries on SQLITE_BUSY forever, so the progress callback enforces a deadline.
    """
    deadline = time.monotonic() + timeout

    def progress(status: int, remaining: int, total: int) -> None:
        if time.monotonic() > deadline:
            raise RestoreError(f"{live_path}: timed out after {timeout:.0f}s waiting for other connections "
                               "to release the database; nothing was changed")

    source = sqlite3.connect(f"file:{fresh_path.resolve()}?mode=ro", uri=True)
    target = sqlite3.connect(str(live_path), timeout=5.0)
    try:
        target.execute("PRAGMA busy_timeout = 5000")
        _fault("before-swap")
        source.backup(target, pages=-1, progress=progress, sleep=0.05)
        _fault("after-swap")
        # The WAL now holds a database-sized run of frames: fold it into the file.
        for _ in range(100):
            busy = target.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if busy == 0:
                break
            time.sleep(0.05)
    finally:
        source.close()
        target.close()


# --------------------------------------------------------------------------- the pipeline


def _audit(store: "Store", record: audit.AuditRecord, started: float) -> str:
    record.duration_ms = int((time.monotonic() - started) * 1000)
    return audit.write(store.path, record)


def _live_counts(store: "Store") -> dict[str, int]:
    return {spec.name: store.count(spec.name) for spec in store.registry.exported_tables}


def replace_contents(store: "Store", source: RowSource | str | os.PathLike[str], *, operation: str = "restore",
                     dry_run: bool = False, allow_shrink: bool = False, max_loss: float = DEFAULT_MAX_LOSS,
                     progress: Progress | None = None, audit_details: dict[str, Any] | None = None,
                     confirm: Callable[[RestoreResult], bool] | None = None) -> RestoreResult:
    """Replace the live database's content with ``source``'s, through the safe pipeline."""
    row_source = open_source(source)
    live_path = store.path
    started = time.monotonic()
    record = audit.AuditRecord(operation=operation, db_path=str(live_path), source=row_source.label,
                               details=dict(audit_details or {}))
    fresh: FreshDatabase | None = None
    with store_lock(live_path):
        try:
            row_source.verify()
            record.source_sha256 = row_source.checksum()
            _fault("after-verify")
            page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
            # A replace makes this file a copy of the source's dataset: adopt its identity when it
            # has one (so export → restore → export is byte-identical), else keep ours.
            meta = {"db_id": getattr(row_source, "db_id", None) or store.db_id,
                    "created_at": store._meta_get("created_at") or store.now()}
            fresh = build_fresh(live_path, row_source, page_size=page_size, meta=meta,
                                seed_stamp=lambda: (store.now(), store.clock.now()),
                                registry=store.registry, progress=progress)
            _fault("after-build")
            _stamp_clock(fresh.path, store)
            diff = diff_databases(live_path, fresh.path, store.registry)
            result = RestoreResult(operation, dry_run, row_source.label, row_source.checksum(), diff)
            record.counts_before, record.counts_after = result.counts_before, result.counts_after
            problems = shrink_problems(diff, max_loss=max_loss, registry=store.registry)
            if problems and not allow_shrink:
                raise ShrinkRefusedError(f"refusing to {operation} from {row_source.label}: it "
                                         + "; and ".join(problems) + " (pass --allow-shrink if this is intended)")
            if problems:
                result.notes.append("shrink allowed: " + "; ".join(problems))
            if dry_run:
                return result
            if confirm is not None and not confirm(result):
                raise RestoreError(f"{operation} cancelled; nothing was changed")
            restore_point = make_restore_point(live_path, operation)
            result.restore_point = record.restore_point = restore_point  # type: ignore[assignment]
            record.restore_point = str(restore_point)
            _fault("after-restore-point")
            swap_in(fresh.path, live_path)
            _fault("after-checkpoint")
            _verify_swap(live_path, fresh.counts)
            record.outcome = "done"
            result.audit_id = _audit(store, record, started)
            store.clock.observe(_read_meta(live_path, "hlc") or store.clock.high_water)
            prune_restore_points(live_path)
            return result
        except ShrinkRefusedError as exc:
            record.outcome, record.reason = "refused", str(exc)
            _audit(store, record, started)
            raise
        except (SourceError, ValidationError) as exc:
            record.outcome, record.reason = "refused", str(exc)
            _audit(store, record, started)
            raise
        except BaseException as exc:
            record.outcome, record.reason = "failed", f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                _audit(store, record, started)
            if isinstance(exc, OSError):
                raise RestoreError(f"{operation} failed: {exc.strerror or exc}; the live database was "
                                   "not changed") from None
            raise
        finally:
            if fresh is not None:
                _remove_db_files(fresh.path)


def _read_meta(path: Path, key: str) -> str | None:
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        row = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', [key]).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def _stamp_clock(fresh_path: Path, store: "Store") -> None:
    """The fresh file's clock high-water mark: the max of the live clock and every row version."""
    conn = sqlite3.connect(str(fresh_path), isolation_level=None)
    try:
        high = store.clock.high_water
        for spec in store.registry.exported_tables:
            if spec.has_column("row_version"):
                value = conn.execute(f'SELECT max(row_version) FROM "{spec.name}"').fetchone()[0]
                if value and value[:19] > high[:19]:
                    high = value
        conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)', ["hlc", high])
    finally:
        conn.close()


def _verify_swap(live_path: Path, expected: dict[str, int]) -> None:
    conn = sqlite3.connect(f"file:{live_path.resolve()}?mode=ro", uri=True, timeout=5.0)
    try:
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise RestoreError(f"{live_path}: quick_check after the swap: {result[0]}")
        for table, count in expected.items():
            actual = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if actual != count:
                raise RestoreError(f"{live_path}: after the swap {table} has {actual} rows, expected {count}")
    finally:
        conn.close()


def undo(store: "Store", *, dry_run: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Swap the newest restore point back in. Itself takes a restore point, so it can be undone."""
    points = list_restore_points(store.path)
    if not points:
        raise RestoreError(f"{store.path}: no restore point to undo to")
    return replace_contents(store, DatabaseSource(points[0]), operation="undo", dry_run=dry_run,
                            allow_shrink=True, progress=progress,
                            audit_details={"restore_point_used": str(points[0])})


class _EmptySource:
    """No rows at all: ``reset`` restores from this (seed tables are re-seeded)."""

    label = "empty database (reset)"

    def verify(self) -> None:
        return None

    def checksum(self) -> str | None:
        return None

    def tables(self) -> list[str]:
        return []

    def declared_counts(self) -> dict[str, int] | None:
        return {}

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(())


def reset(store: "Store", *, dry_run: bool = False, allow_shrink: bool = False) -> RestoreResult:
    """An empty, seeded database, through the same path (so it is audited and undoable)."""
    return replace_contents(store, _EmptySource(), operation="reset", dry_run=dry_run, allow_shrink=allow_shrink)


# --------------------------------------------------------------------------- merge


def merge(store: "Store", source: RowSource | str | os.PathLike[str], *, operation: str = "merge",
          dry_run: bool = False, allow_shrink: bool = False, max_loss: float = DEFAULT_MAX_LOSS,
          progress: Progress | None = None, audit_details: dict[str, Any] | None = None) -> RestoreResult:
    """Upsert ``source`` into the live database: all or nothing, newest row version wins.

    The source is validated in a scratch file first (types, formats, uniqueness within the
    source); the upsert then runs in one ``BEGIN IMMEDIATE`` transaction with foreign keys
    deferred, ``foreign_key_check`` and the shrink guard run before COMMIT, and anything wrong
    rolls the whole merge back. Tombstones in the source delete the rows they name when newer.
    """
    row_source = open_source(source)
    live_path = store.path
    started = time.monotonic()
    record = audit.AuditRecord(operation=operation, db_path=str(live_path), source=row_source.label,
                               details=dict(audit_details or {}))
    scratch: FreshDatabase | None = None
    with store_lock(live_path):
        try:
            row_source.verify()
            record.source_sha256 = row_source.checksum()
            page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
            scratch = build_fresh(live_path, row_source, page_size=page_size, meta={}, seed_stamp=None,
                                  registry=store.registry, progress=progress, check_foreign_keys=False)
            restore_point = None if dry_run else make_restore_point(live_path, operation)
            record.restore_point = str(restore_point) if restore_point else None
            result = _merge_into_live(store, scratch.path, row_source, dry_run=dry_run, allow_shrink=allow_shrink,
                                      max_loss=max_loss)
            result.restore_point = restore_point
            record.counts_before, record.counts_after = result.counts_before, result.counts_after
            if dry_run:
                return result
            record.outcome = "done"
            result.audit_id = _audit(store, record, started)
            prune_restore_points(live_path)
            return result
        except (ShrinkRefusedError, SourceError, ValidationError) as exc:
            record.outcome, record.reason = "refused", str(exc)
            _audit(store, record, started)
            raise
        except BaseException as exc:
            record.outcome, record.reason = "failed", f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                _audit(store, record, started)
            raise
        finally:
            if scratch is not None:
                _remove_db_files(scratch.path)


def _merge_into_live(store: "Store", scratch_path: Path, source: RowSource, *, dry_run: bool,
                     allow_shrink: bool, max_loss: float) -> RestoreResult:
    registry = store.registry
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("ATTACH DATABASE ? AS src", [str(scratch_path)])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("PRAGMA defer_foreign_keys = ON")
        before = {s.name: conn.execute(f'SELECT count(*) FROM main."{s.name}"').fetchone()[0]
                  for s in registry.exported_tables}
        diff: dict[str, TableDiff] = {}
        for spec in registry.exported_tables:
            diff[spec.name] = _merge_table(conn, spec, source)
        _apply_tombstones(conn, registry)
        violation = conn.execute("PRAGMA main.foreign_key_check").fetchone()
        if violation is not None:
            table, rowid, parent, fkid = violation
            fk = {r[0]: r for r in conn.execute(f'PRAGMA main.foreign_key_list("{table}")')}.get(fkid)
            column = fk[3] if fk else "?"
            row = conn.execute(f'SELECT id, "{column}" FROM main."{table}" WHERE rowid = ?', [rowid]).fetchone()
            conn.execute("ROLLBACK")
            raise ForeignKeyError(f"{source.label}: {table} {row[0] if row else rowid}: {table}.{column}: "
                                  f"no {parent} row with id {row[1] if row else None!r} in the source or the store",
                                  table=table, field=column)
        for spec in registry.exported_tables:
            after = conn.execute(f'SELECT count(*) FROM main."{spec.name}"').fetchone()[0]
            diff[spec.name].before, diff[spec.name].after = before[spec.name], after
        result = RestoreResult("merge", dry_run, source.label, source.checksum(), diff)
        problems = shrink_problems(diff, max_loss=max_loss, registry=registry)
        if problems and not allow_shrink:
            conn.execute("ROLLBACK")
            raise ShrinkRefusedError(f"refusing to merge {source.label}: it " + "; and ".join(problems)
                                     + " (pass --allow-shrink if this is intended)")
        high = store.clock.high_water
        for spec in registry.exported_tables:
            if spec.has_column("row_version"):
                value = conn.execute(f'SELECT max(row_version) FROM src."{spec.name}"').fetchone()[0]
                if value:
                    store.clock.observe(value)
        if dry_run:
            conn.execute("ROLLBACK")
            return result
        conn.execute('INSERT OR REPLACE INTO main."_bakestore_meta"(key, value) VALUES (?, ?)',
                     ["hlc", max(high, store.clock.high_water)])
        conn.execute("COMMIT")
        return result
    except sqlite3.IntegrityError as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise ValidationError(f"{source.label}: merge refused: {exc}") from None
    finally:
        conn.close()


def _merge_table(conn: Any, spec: TableSpec, source: RowSource) -> TableDiff:
    t = f'"{spec.name}"'
    columns = spec.column_names
    cols = ", ".join(f'"{c}"' for c in columns)
    pk = ", ".join(f'"{c}"' for c in spec.pk)
    join = " AND ".join(f'x."{c}" = y."{c}"' for c in spec.pk)
    added = conn.execute(f"SELECT count(*) FROM src.{t} y WHERE NOT EXISTS (SELECT 1 FROM main.{t} x WHERE {join})"
                         ).fetchone()[0]
    newer = "excluded.row_version > main." + t + ".row_version" if spec.has_column("row_version") else "1"
    differs = " OR ".join(f'x."{c}" IS NOT y."{c}"' for c in columns if c not in spec.pk)
    version_cond = "y.row_version > x.row_version" if spec.has_column("row_version") else "1"
    changed = conn.execute(f"SELECT count(*) FROM src.{t} y JOIN main.{t} x ON {join} WHERE ({differs}) "
                           f"AND {version_cond}").fetchone()[0] if differs else 0
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in spec.pk)
    conflict = f"DO UPDATE SET {updates} WHERE {newer}" if updates else "DO NOTHING"
    try:
        conn.execute(f"INSERT INTO main.{t} ({cols}) SELECT {cols} FROM src.{t} WHERE true "
                     f"ON CONFLICT({pk}) {conflict}")
    except sqlite3.IntegrityError as exc:
        raise ValidationError(f"{source.label}: {spec.name}: {translate_integrity_error(spec, exc, None)} "
                              "(a row in the source clashes with a different row of the store)",
                              table=spec.name) from None
    return TableDiff(0, 0, added=added, changed=changed)


def _apply_tombstones(conn: Any, registry: Registry) -> None:
    """Delete live rows that a newer tombstone names, children before parents."""
    order = {name: i for i, name in enumerate(registry.names)}
    rows = conn.execute('SELECT table_name, row_id, row_version FROM main."_tombstones"').fetchall()
    for table, row_id, version in sorted(rows, key=lambda r: -order.get(r[0], 0)):
        if table not in registry or not registry[table].has_row_identity:
            continue
        conn.execute(f'DELETE FROM main."{table}" WHERE id = ? AND row_version < ?', [row_id, version])
