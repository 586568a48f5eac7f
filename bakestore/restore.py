"""Restore, undo, reset and merge: one pipeline that never deletes in place.

::

    source ──► verify source ──► build & validate a fresh file ──► verify (integrity, FKs, counts)
           ──► diff + shrink guard ──► restore point of the live DB ──► atomic swap ──► audit

* The fresh file is built beside the live one with the live page size; every row is type-checked
  in Python and then checked by SQLite itself (STRICT tables, CHECK rules for every format and
  range, UNIQUE keys, ``foreign_key_check``), so a million rows validate at C speed. When a row
  fails, the model re-validates it to produce a message naming the source file, line and field.
  Secondary indexes are created after the rows are in (a sort instead of a million random
  b-tree inserts); the finished file has exactly the registry's DDL and passes
  ``integrity_check``.
* A ``.db`` source whose schema is exactly this bakestore's (another bakestore file, a restore
  point) is copied page by page into the fresh file with the backup API instead of row by row;
  the copy then passes the same ``integrity_check`` (which verifies STRICT types, NOT NULL, CHECK
  and UNIQUE rules and index consistency) and ``foreign_key_check``.
* The swap is SQLite's online backup API from the closed fresh file into the live database: one
  write transaction, so readers in other processes see all-old or all-new, and a crash at any
  point leaves either (sqlite-facts A3/A4). No DELETE statement runs against the live database.
* Large exports load in two processes (this one and :mod:`bakestore.loadworker`), the worker's
  tables copied in with SQLite's transfer optimisation (see :class:`_LoadWorker`).
* ``undo`` swaps a restore point in *by rename* instead, in no time, when
  :mod:`bakestore.fileswap` proves that nobody else has the database open and the restore point
  is unchanged since its check; otherwise it takes the backup-API path like every other operation.
* Any failure before the swap leaves the live file as it was; every outcome, refusals included,
  is written to the audit log next to the database. Files left by a killed operation (fresh
  files, restore-point temp files) are removed by the next operation, under the store lock.

``merge`` is the exception that proves the rule: it upserts into the live database inside one
``BEGIN IMMEDIATE`` transaction (last writer wins by row version, tombstones applied), checks
foreign keys and the shrink guard before COMMIT, and takes a restore point first.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import gc
import hashlib
import json
import logging
import operator
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import audit, fileswap
from . import errors as error_types
from .errors import (
    BakestoreError,
    CancelledError,
    ForeignKeyError,
    LockedError,
    RestoreError,
    ShrinkRefusedError,
    SourceError,
    ValidationError,
)
from .exports import ExportFolderSource
from .files import fsync_dir, write_atomic
from .registry import REGISTRY, Registry, TableSpec
from .paths import refuse_own_file
from .schema import APPLICATION_ID, SCHEMA_VERSION, check_schema, index_sql, schema_statements, table_sql
from .seeds import seed_rows
from .sources import RowSource
from .sqlite import sqlite3
from .store import BULK_CHANGE_KEYS, bulk_insert, connect_store_file, exclusive_writes, mark_bulk_change, translate_integrity_error, validate_row

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

#: Refuse by default when a restore would lose more than this share of all rows.
DEFAULT_MAX_LOSS = 0.25
#: How long the swap may wait for other connections to let go of the write lock.
SWAP_TIMEOUT_S = 30.0
#: How long to keep trying to fold the WAL back into the file after a swap (readers can delay it;
#: if they do, SQLite checkpoints later on its own: the content is already committed).
CHECKPOINT_TIMEOUT_S = 5.0
#: How long an operation waits for another one on the same database to finish.
LOCK_TIMEOUT_S = 10.0
#: Restore points kept per database (newest first); older ones are pruned after a success.
KEEP_RESTORE_POINTS = 20
#: The ``_bakestore_meta`` key in which sync records its generation (``bakestore.sync.GENERATION_KEY``;
#: sync imports this module, not the other way round). A file made live by restore or undo never has it.
SYNC_GENERATION_KEY = BULK_CHANGE_KEYS[1]
FAULT_ENV = "BAKESTORE_FAULT"
#: Rows per executemany batch while loading the fresh file.
BATCH_ROWS = 5000
#: Restores of at least this many rows load in two processes (see :class:`_LoadWorker`).
PARALLEL_MIN_ROWS = 200_000
#: Restore points are hashed in chunks of this size, so that a fast undo checks them in parallel.
CHUNK_BYTES = 16 << 20
#: Page cache of each connection building a fresh file (this process's and the load worker's):
#: rows arrive in key order, so a small cache loses nothing, and the two processes together
#: stay within the restore's memory budget (250 MB).
FRESH_CACHE_KIB = 8192


def _fault(step: str) -> None:
    """Fault injection for crash tests: ``BAKESTORE_FAULT=<step>`` kills the process right here."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _ro_uri(path: Path) -> str:
    """A read-only SQLite URI for ``path`` (quoted: ``?``, ``#`` and ``%`` are legal in file names)."""
    return "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"


# --------------------------------------------------------------------------- results


@dataclass
class TableDiff:
    """Rows per table before and after, and rows added/removed/changed by primary key (None when
    only the counts are known: a fast undo without a preview)."""

    before: int
    after: int
    added: int | None = 0
    removed: int | None = 0
    changed: int | None = 0

    @property
    def unchanged(self) -> bool:
        if self.added is None or self.removed is None or self.changed is None:
            return False
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, int | None]:
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


# --------------------------------------------------------------------------- locking and leftovers


@contextlib.contextmanager
def store_lock(db_path: Path, timeout: float | None = None) -> Iterator[None]:
    """An exclusive lock file *next to* the database (never a lock on the database itself)."""
    timeout = LOCK_TIMEOUT_S if timeout is None else timeout
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


def _fresh_prefix(live_path: Path) -> str:
    return f".{live_path.name}.fresh-"


def remove_leftovers(live_path: Path) -> list[Path]:
    """Remove fresh/scratch files and restore-point temp files left by a killed operation.

    Only called with the store lock held: then no other bakestore operation on this database is
    running, so every such file belongs to an operation that died. These files are never live
    databases (nothing but their builder ever opens them), so deleting them cannot hurt the
    live file or its ``-wal``.
    """
    removed: list[Path] = []
    candidates = list(live_path.parent.glob(_fresh_prefix(live_path) + "*"))
    folder = restore_point_dir(live_path)
    if folder.is_dir():
        candidates += [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    if folder.is_dir():
        # A fast undo killed between linking the live file under a restore-point name and the
        # rename: that "restore point" is the live file itself, not a copy of anything.
        live = fileswap.file_id(live_path)
        candidates += [p for p in folder.glob("*.db") if live is not None and fileswap.file_id(p) == live]
    for path in candidates:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()
            removed.append(path)
    if removed:
        log.info("removed %d file(s) left by an interrupted operation", len(removed))
    return removed


# --------------------------------------------------------------------------- sources


def _schema_sql(conn: Any) -> set[str]:
    return {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")}


class DatabaseSource:
    """Another bakestore ``.db`` file (or a restore point) as a row source, opened read-only.

    Everything is read inside one read transaction opened by :meth:`verify`, so a source that
    another program is writing to is still read as one consistent snapshot; :meth:`close` ends it.
    """

    def __init__(self, path: str | os.PathLike[str], registry: Registry = REGISTRY, *,
                 live_path: Path | None = None) -> None:
        self.path = Path(path)
        self.registry = registry
        self.live_path = live_path
        self.label = f"database {self.path}"
        self.db_id: str | None = None
        self.page_size: int | None = None
        self.exact_schema = False
        #: Every row passed the registry's CHECK rules in this very file and it has not changed
        #: since (a restore point whose check is on record): the copy's check may skip them.
        self.rows_checked = False
        self._sha: str | None = None
        self._conn: Any = None

    def _connect(self) -> Any:
        return sqlite3.connect(_ro_uri(self.path), uri=True, check_same_thread=False)

    def verify(self) -> None:
        if self.path.is_symlink():
            raise SourceError(f"{self.path}: is a symlink; refusing to follow it")
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such database file")
        if self.live_path is not None and self.live_path.exists() and os.path.samefile(self.path, self.live_path):
            # Also: reading the live file with plain I/O here would drop this process's SQLite
            # locks on it (sqlite.org/howtocorrupt.html#posix_close_bug).
            raise SourceError(f"{self.path}: is the live database itself; restore from an export or a copy")
        with open(self.path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise SourceError(f"{self.path}: not an SQLite database")
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        self._sha = digest.hexdigest()
        self.close()
        conn = self._connect()
        try:
            conn.execute("BEGIN")  # one snapshot for every read that follows
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                raise SourceError(f"{self.path}: not a bakestore database (application_id {app_id})")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise SourceError(f"{self.path}: schema version {version}, this bakestore needs {SCHEMA_VERSION}")
            found = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', ["db_id"]).fetchone()
            self.db_id = found[0] if found else None
            result = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise SourceError(f"{self.path}: damaged: {'; '.join(result[:3])}")
            import sqlite_utils

            problems = check_schema(sqlite_utils.Database(conn), self.registry)
            if problems:
                raise SourceError(f"{self.path}: schema differs from this bakestore: {problems[0]}")
            self.page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            self.exact_schema = _schema_sql(conn) == set(schema_statements(self.registry))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SourceError(f"{self.path}: cannot be read as a database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _cursor(self) -> Any:
        if self._conn is None:
            raise SourceError(f"{self.path}: read before verify()")
        return self._conn

    def checksum(self) -> str | None:
        return self._sha

    def tables(self) -> list[str]:
        return [s.name for s in self.registry.exported_tables]

    def declared_counts(self) -> dict[str, int] | None:
        conn = self._cursor()
        return {s.name: conn.execute(f'SELECT count(*) FROM "{s.name}"').fetchone()[0]
                for s in self.registry.exported_tables}

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        spec = self.registry[table]
        columns = spec.column_names
        order = ", ".join(f'"{c}"' for c in spec.pk)
        cursor = self._cursor().execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} '
                                        f'FROM "{spec.name}" ORDER BY {order}')
        for index, values in enumerate(cursor, 1):
            yield f"{self.path.name}: {table} row {index}", dict(zip(columns, values))

    def copy_into(self, target: Any) -> None:
        """Copy the verified snapshot page by page into the (empty) ``target`` connection."""
        self._cursor().backup(target, pages=-1)


def open_source(source: RowSource | str | os.PathLike[str], *, live_path: Path | None = None) -> RowSource:
    """An export folder, its manifest, or a ``.db`` file; RowSource objects pass through."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() or path.name == "manifest.json":
            return ExportFolderSource(path)
        if path.is_file():
            if live_path is not None and live_path.exists() and os.path.samefile(path, live_path):
                raise SourceError(f"{path}: is the live database itself; restore from an export or a copy")
            if live_path is not None:
                refuse_own_file(path, live_path)  # never open()/close() a file our connections hold
            with open(path, "rb") as handle:
                if handle.read(16) == b"SQLite format 3\x00":
                    return DatabaseSource(path, live_path=live_path)
            raise SourceError(f"{path}: neither an export folder, its manifest.json, nor a bakestore database")
        raise SourceError(f"{path}: no such file or folder")
    if isinstance(source, DatabaseSource) and source.live_path is None:
        source.live_path = live_path
    return source


def _close_source(source: Any) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


# --------------------------------------------------------------------------- building the fresh file

_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    "integer": frozenset({int}), "boolean": frozenset({int, bool}), "real": frozenset({float, int}),
    "uuid": frozenset({str}), "text": frozenset({str}), "date": frozenset({str}),
    "datetime": frozenset({str}), "json": frozenset({str}),
}


class _RowProblem(Exception):
    """A row failed the type check; the caller adds where it came from."""

    def __init__(self, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.field = field


class _RowChecker:
    """Exact keys and JSON types per column; returns the values in column order.

    SQLite's STRICT tables would quietly turn "5" into 5; a restore source with a string where a
    number belongs is damaged, so it is refused here, before SQLite sees it. The check is per
    row but costs little: a row's tuple of value types is compared with the signatures already
    found valid for the table, and only a new signature is checked column by column. NaN (which
    SQLite would store as NULL) is refused too.
    """

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.columns = spec.column_names
        self.column_set = frozenset(self.columns)
        getter = operator.itemgetter(*self.columns)
        self.values = getter if len(self.columns) > 1 else (lambda row: (getter(row),))
        self.valid: dict[tuple[type, ...], Any] = {}

    def __call__(self, row: Any) -> tuple[Any, ...]:
        if type(row) is not dict:
            raise _RowProblem(f"{self.spec.name}: expected an object, got {type(row).__name__}")
        try:
            values = self.values(row)
        except KeyError:
            self._key_problem(row)
        if len(row) != len(values):  # every column is there, so any extra key is unknown
            self._key_problem(row)
        signature = tuple(map(type, values))
        floats = self.valid.get(signature)
        if floats is None:
            floats = self._learn(signature, values)
        if floats is not False:
            total = sum(floats(values))  # NaN anywhere makes the sum NaN (so does inf - inf)
            if total != total:
                self._nan_problem(values)
        return values

    def _key_problem(self, row: dict[str, Any]) -> None:
        name = self.spec.name
        unknown = sorted(set(row) - self.column_set)
        if unknown:
            raise _RowProblem(f"{name}: unknown column {unknown[0]!r}", unknown[0])
        missing = next(c for c in self.columns if c not in row)
        raise _RowProblem(f"{name}.{missing}: missing", missing)

    def _learn(self, signature: tuple[type, ...], values: tuple[Any, ...]) -> Any:
        for column, value in zip(self.spec.columns, values):
            if value is None:
                if not column.nullable:
                    raise _RowProblem(f"{self.spec.name}.{column.name}: missing value (null)", column.name)
            elif type(value) not in _ALLOWED_TYPES[column.kind]:
                raise _RowProblem(f"{self.spec.name}.{column.name}: expected {column.kind}, got "
                                  f"{type(value).__name__} {str(value)[:40]!r}", column.name)
        positions = [i for i, kind in enumerate(signature) if kind is float]
        if not positions:
            floats: Any = False
        elif len(positions) == 1:
            only = positions[0]
            floats = lambda values: (values[only],)  # noqa: E731
        else:
            floats = operator.itemgetter(*positions)
        self.valid[signature] = floats
        return floats

    def _nan_problem(self, values: tuple[Any, ...]) -> None:
        for column, value in zip(self.spec.columns, values):
            if isinstance(value, float) and value != value:
                raise _RowProblem(f"{self.spec.name}.{column.name}: NaN cannot be stored (SQLite turns it into "
                                  "NULL)", column.name)


def _explain_row(spec: TableSpec, row: dict[str, Any], where: str, label: str, exc: Exception) -> BakestoreError:
    """Turn a SQLite refusal of one row into a message naming file, line and field."""
    if isinstance(exc, OverflowError):
        for name in spec.column_names:
            value = row.get(name)
            if isinstance(value, int) and not -(2 ** 63) <= value < 2 ** 63:
                return ValidationError(f"{label}: {where}: {spec.name}.{name}: integer {value} does not fit in "
                                       "64 bits", table=spec.name, field=name, record=where)
    if isinstance(exc, UnicodeError):
        for name in spec.column_names:
            value = row.get(name)
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeError:
                    return ValidationError(f"{label}: {where}: {spec.name}.{name}: text is not valid Unicode "
                                           "(a lone surrogate escape such as \\ud800)", table=spec.name,
                                           field=name, record=where)
    if not isinstance(exc, sqlite3.IntegrityError):
        return ValidationError(f"{label}: {where}: {spec.name}: {exc}", table=spec.name, record=where)
    try:
        normalized = validate_row(spec, row, record=where, complete=True)
    except ValidationError as problem:
        message = str(problem).replace(f" (record {where})", "")
        return ValidationError(f"{label}: {where}: {message}", table=spec.name, field=problem.field, record=where)
    translated = translate_integrity_error(spec, exc, row.get("id"))
    text, column = str(translated), translated.field
    failed = str(exc).split("constraint failed: ", 1)[-1].strip()
    if "UNIQUE" in str(exc) and failed == ", ".join(f"{spec.name}.{pk}" for pk in spec.pk):
        column = spec.pk[0]
        text = (f"{spec.name}.{', '.join(spec.pk)}: duplicate primary key "
                f"{', '.join(repr(row.get(pk)) for pk in spec.pk)}")
    elif "CHECK" in str(exc) and (checked := _checked_column(spec, failed)):
        # A column's own CHECK rules: the model accepted the value, so it is a stored format
        # the model would have rewritten (e.g. an upper-case UUID, a timestamp without millis).
        column = checked
        if normalized.get(checked) != row.get(checked):
            text = (f"{spec.name}.{checked}: {row.get(checked)!r} is not in the stored (canonical) form "
                    f"{normalized.get(checked)!r}")
        else:
            text = f"{spec.name}.{checked}: check failed: {failed}"
    return ValidationError(f"{label}: {where}: {text}", table=spec.name, field=column, record=where)


def _checked_column(spec: TableSpec, failed: str) -> str | None:
    """The one column a failed CHECK is about: SQLite names it, or its expression quotes only it."""
    if spec.has_column(failed):
        return failed
    quoted = {name for name in re.findall(r'"([^"]+)"', failed) if spec.has_column(name)}
    return quoted.pop() if len(quoted) == 1 else None


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while rows stream through: they are acyclic dicts and tuples
    that reference counting frees at once, and each collection would walk the batch in flight
    again (a tenth of the load's time on a million rows). Restored as it was afterwards."""
    # Not beside other threads: in an application the collector is everybody's.
    enabled = gc.isenabled() and not _other_threads()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _connect_fresh(path: Path, page_size: int | None) -> Any:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    if page_size:
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
    # The fresh file is not live yet: a crash only means building it again.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute(f"PRAGMA cache_size = -{FRESH_CACHE_KIB}")
    return conn


@dataclass
class FreshDatabase:
    path: Path
    counts: dict[str, int]
    copied: bool = False
    #: What ``alongside`` returned (run beside the checks of the finished file).
    alongside: Any = None


def build_fresh(live_path: Path, source: RowSource, *, page_size: int, meta: dict[str, str],
                seed_stamp: Callable[[], tuple[str, str]] | None = None, registry: Registry = REGISTRY,
                progress: Progress | None = None, check_foreign_keys: bool = True,
                alongside: Callable[[Path], Any] | None = None) -> FreshDatabase:
    """Load ``source`` into a new file beside ``live_path`` and verify it; delete it on any failure.

    ``alongside(path)`` (read-only work on the finished file, such as the diff against the live
    database) runs beside ``integrity_check``; its result is only returned if every check passed.
    """
    fresh_path = live_path.with_name(f"{_fresh_prefix(live_path)}{uuid.uuid4().hex[:12]}")
    label = source.label
    counts: dict[str, int] = {}
    specs = registry.exported_tables
    copy = (isinstance(source, DatabaseSource) and source.exact_schema and source.page_size == page_size
            and registry is source.registry)
    conn = None
    worker: _LoadWorker | None = None
    try:
        if copy:
            assert isinstance(source, DatabaseSource)
            conn = sqlite3.connect(str(fresh_path), isolation_level=None, check_same_thread=False)
            source.copy_into(conn)
            conn.execute("PRAGMA journal_mode = MEMORY")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN")
            # Bookkeeping of the source file (its sync state and the like) does not travel; the
            # build path starts from an empty _bakestore_meta too. This is the fresh file, not live.
            conn.execute('DELETE FROM "_bakestore_meta"')
            for index, spec in enumerate(specs):
                counts[spec.name] = conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]
                if progress:
                    progress(spec.name, index + 1, len(specs))
        else:
            conn = _connect_fresh(fresh_path, page_size)
            present = set(source.tables())
            worker = _LoadWorker.start(source, present, registry, fresh_path, page_size)
            loaded: dict[str, int] = {}

            def table_done(name: str, rows: int) -> None:
                loaded[name] = rows
                if progress:
                    progress(name, len(loaded), len(specs))

            conn.execute("BEGIN")
            # Secondary indexes come after a table's rows: one sort each instead of a million
            # random inserts. UNIQUE and primary keys are part of CREATE TABLE, so duplicates are
            # still refused row by row while loading.
            for spec in registry:
                conn.execute(table_sql(spec))
                if not spec.exported:  # bookkeeping tables start empty
                    for statement in index_sql(spec):
                        conn.execute(statement)
            with _no_cycle_collection():
                for spec in (worker.order if worker is not None else specs):
                    if worker is not None:
                        worker.raise_if_failed()  # a bad row in the worker's share stops us early
                        if not worker.claim(spec.name):
                            continue
                    count = _load_table(conn, spec, source, label) if spec.name in present else 0
                    for statement in index_sql(spec):
                        conn.execute(statement)
                    table_done(spec.name, count)
            if worker is not None:
                for spec in specs:
                    if spec.name not in loaded:  # the worker's: empty here, its rows come by transfer
                        for statement in index_sql(spec):
                            conn.execute(statement)
                conn.execute("COMMIT")
                worker.merge_into(conn, source, label, table_done)
                conn.execute("BEGIN")
            counts.update((spec.name, loaded[spec.name]) for spec in specs)
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
        conn.execute("PRAGMA locking_mode = NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # lets go of the exclusive lock
        # The checks read the whole file and run inside SQLite without the GIL: side by side.
        # The foreign key check is shorter: whatever runs ``alongside`` follows it on the same thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            violation = pool.submit(_first_fk_violation, fresh_path) if check_foreign_keys else None
            extra = pool.submit(alongside, fresh_path) if alongside is not None else None
            theirs = None
            try:
                if copy and not getattr(source, "rows_checked", False):
                    # A copied .db source never went through our inserts: the full check, with
                    # every CHECK rule evaluated again.
                    result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
                else:
                    # Every row went through the tables' CHECK rules when it was inserted into
                    # this file moments ago (by this process or the load worker), or, for a
                    # restore point, when it was checked at creation (and the file is unchanged
                    # since: see _read_sidecar); re-evaluating
                    # them is two thirds of integrity_check's time. Everything else runs, split
                    # over two threads: quick_check walks every page and b-tree of the file (the
                    # page accounting), and integrity_check(table) checks each table's indexes
                    # entry by entry against its rows — together all that integrity_check does.
                    mine, others = _split_tables(registry, counts)
                    theirs = pool.submit(_integrity_of_tables, fresh_path, others)
                    result = _integrity_of_tables(fresh_path, mine, whole_file=True, conn=conn)
                    if result == ["ok"]:
                        result = theirs.result()
                if violation is not None and violation.result() is not None:
                    _check_foreign_keys(conn, source, label, registry)
            finally:
                for future in (extra, theirs):
                    if future is not None:
                        with contextlib.suppress(BaseException):
                            future.exception()  # never leave it reading a file that is about to go
        if result != ["ok"]:
            raise SourceError(f"{label}: the rebuilt database failed integrity_check: {'; '.join(result[:3])}")
        actual_page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        if page_size and actual_page_size != page_size:
            raise RestoreError(f"{label}: the fresh file has page size {actual_page_size}, the live one "
                               f"{page_size}")
        conn.close()
        # No fsync here: the backup-API swap only reads the fresh file back through the page
        # cache and the live file's durability comes from its own WAL sync at the swap's commit;
        # a rename swap fsyncs the fresh file before any name points at it (fileswap.proven_alone).
        # A crash before either means building it again.
        return FreshDatabase(fresh_path, counts, copied=copy, alongside=extra.result() if extra is not None else None)
    except BaseException:
        if conn is not None:
            conn.close()
        _remove_db_files(fresh_path)
        raise
    finally:
        if worker is not None:
            worker.close()


def _split_tables(registry: Registry, counts: dict[str, int]) -> tuple[list[str], list[str]]:
    """Every table of the registry in two groups of about equal rows (largest first, to the
    lighter group); the first group also carries the whole-file quick_check."""
    groups: tuple[list[str], list[str]] = ([], [])
    weights = [sum(counts.values()) // 4, 0]  # a head start for the group that runs quick_check too
    for spec in sorted(registry, key=lambda s: -counts.get(s.name, 0)):
        lighter = 0 if weights[0] <= weights[1] else 1
        groups[lighter].append(spec.name)
        weights[lighter] += counts.get(spec.name, 0)
    return groups


def _integrity_of_tables(path: Path, tables: list[str], *, whole_file: bool = False, conn: Any = None) -> list[str]:
    """``integrity_check`` of these tables and their indexes, without re-evaluating CHECK rules
    (see build_fresh); with ``whole_file`` first ``quick_check`` of every page of the file."""
    own = conn is None
    if own:
        conn = sqlite3.connect(_ro_uri(path), uri=True, timeout=5.0)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        result = [r[0] for r in conn.execute("PRAGMA quick_check")] if whole_file else ["ok"]
        for table in tables:
            if result != ["ok"]:
                break
            result = [r[0] for r in conn.execute(f'PRAGMA integrity_check("{table}")')]
        return result
    except sqlite3.DatabaseError as exc:  # damage bad enough that the check itself cannot go on
        return [str(exc)]
    finally:
        if own:
            conn.close()


class _RawDb:
    """The one attribute bulk_insert needs, over a plain connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn


def _load_table(conn: Any, spec: TableSpec, source: RowSource, label: str) -> int:
    columns = spec.column_names
    sql = (f'INSERT INTO "{spec.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
           f'VALUES ({", ".join("?" for _ in columns)})')
    check = _RowChecker(spec)
    total = 0
    for locate, rows in _source_batches(source, spec.name):
        values: list[tuple[Any, ...]] = []
        append = values.append
        try:
            for row in rows:
                append(check(row))
        except _RowProblem as problem:
            where = locate(len(values))
            raise ValidationError(f"{label}: {where}: {problem.text}", table=spec.name, field=problem.field,
                                  record=where) from None
        try:
            conn.executemany(sql, values)
        except (sqlite3.IntegrityError, OverflowError, UnicodeError) as exc:
            # executemany stops at the failing row; the ones before it are in the table.
            done = conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0] - total
            index = min(done, len(rows) - 1)
            raise _explain_row(spec, rows[index], locate(index), label, exc) from None
        total += len(values)
    return total


class _LoadWorker:
    """A second process that loads tables into a part file while this one loads others; its
    tables are then copied into the fresh file with SQLite's transfer optimisation (``INSERT INTO
    t SELECT * FROM part.t`` between identical tables copies the stored records and index entries
    without decoding them: a tenth of the cost of inserting them).

    Both processes walk the same list, largest table file first, and each takes the next table
    nobody has claimed yet (a claim is a file created with ``O_EXCL``), so they finish within one
    small table of each other whatever the data looks like.

    Only for a verified export folder (the worker reopens it by path and checks every file against
    the identity it had when it was hashed) of at least :data:`PARALLEL_MIN_ROWS` rows, with the
    registry's own schema. The worker is a fresh interpreter (``python -I``, running
    :mod:`bakestore.loadworker` from this very package), not a fork: it inherits no locks, threads or connections of this process, and it dies with it.
    Its rows go through the same checks (:func:`_load_table`) and its refusals come back as the
    same errors. If it cannot start or dies without an answer, this process loads its tables.
    """

    def __init__(self, proc: subprocess.Popen[bytes], order: list[TableSpec], fresh_path: Path) -> None:
        self.proc, self.order, self.fresh_path = proc, order, fresh_path
        self.part = _part_path(fresh_path)
        self._answer: dict[str, Any] | None = None
        self.mine: set[str] = set()

    @classmethod
    def start(cls, source: RowSource, present: set[str], registry: Registry, fresh_path: Path,
              page_size: int) -> "_LoadWorker | None":
        if (not isinstance(source, ExportFolderSource) or registry is not REGISTRY or (os.cpu_count() or 1) < 2
                or sum((source.declared_counts() or {}).values()) < PARALLEL_MIN_ROWS):
            return None
        sizes = source.file_sizes()
        shared = sorted((spec for spec in registry.exported_tables if spec.name in present and sizes.get(spec.name)),
                        key=lambda spec: -sizes[spec.name])
        rest = [spec for spec in registry.exported_tables if spec not in shared]
        package = Path(__file__).resolve().parent
        request = {"source": source.handoff(), "order": [spec.name for spec in shared], "fresh": str(fresh_path),
                   "page_size": page_size, "parent": os.getpid(), "package": str(package)}
        # Isolated mode (-I): neither the current folder nor PYTHONPATH can put another bakestore
        # (or anything else) in front of this one; the worker also checks it imported this package.
        bootstrap = (f"import sys; sys.path.insert(0, {str(package.parent)!r}); "
                     "from bakestore.loadworker import main; raise SystemExit(main())")
        proc = None
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-c", bootstrap], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.close()
            _fault("after-worker-start")
        except OSError as exc:
            if proc is not None:
                proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            log.warning("load worker could not start (%s); loading every table in this process", exc)
            return None
        return cls(proc, shared + rest, fresh_path)

    def claim(self, table: str) -> bool:
        """Take ``table`` unless the worker already has."""
        taken = claim_table(self.fresh_path, table)
        if taken:
            self.mine.add(table)
        return taken

    def _read_answer(self) -> dict[str, Any]:
        if self._answer is None:
            assert self.proc.stdout is not None
            out = self.proc.stdout.read()
            self.proc.wait()
            answer: dict[str, Any] = {}
            for line in out.splitlines():
                with contextlib.suppress(ValueError):
                    answer = json.loads(line)
            self._answer = answer
        return self._answer

    def raise_if_failed(self) -> None:
        """Between tables: if the worker has already ended with a refusal, raise it now."""
        if self.proc.poll() is not None:
            self._raise_error(self._read_answer())

    @staticmethod
    def _raise_error(answer: dict[str, Any]) -> None:
        error = answer.get("error")
        if not error:
            return
        kind = getattr(error_types, str(error.get("type")), None)
        if isinstance(kind, type) and issubclass(kind, ValidationError):
            raise kind(error["message"], table=error.get("table"), field=error.get("field"),
                       record=error.get("record"))
        raise (SourceError if kind is SourceError else RestoreError)(error["message"])

    def merge_into(self, conn: Any, source: RowSource, label: str, table_done: Callable[[str, int], None]) -> None:
        """Wait for the worker, then copy its tables into ``conn``'s file (outside a transaction).
        ``table_done`` has been called for every table this process loaded; it is called for the rest."""
        answer = self._read_answer()
        self._raise_error(answer)
        theirs = [spec for spec in self.order if spec.name not in self.mine]
        if not answer.get("ok"):
            log.warning("load worker ended without an answer (exit %s); loading its tables here",
                        self.proc.returncode)
            conn.execute("BEGIN")
            for spec in theirs:
                table_done(spec.name, _load_table(conn, spec, source, label))
            conn.execute("COMMIT")
            return
        rows = answer["rows"]
        missing = [spec.name for spec in theirs if spec.name not in rows]
        if missing:
            raise RestoreError(f"{label}: the load worker did not load {', '.join(missing)}")
        conn.execute("ATTACH DATABASE ? AS part", [str(self.part)])
        try:
            conn.execute("BEGIN")
            for spec in theirs:
                conn.execute(f'INSERT INTO main."{spec.name}" SELECT * FROM part."{spec.name}"')
                arrived = conn.execute(f'SELECT count(*) FROM main."{spec.name}"').fetchone()[0]
                if arrived != rows[spec.name]:
                    raise RestoreError(f"{label}: {spec.name}: the load worker read {rows[spec.name]} rows, "
                                       f"{arrived} arrived")
                table_done(spec.name, arrived)
            conn.execute("COMMIT")
        finally:
            conn.execute("DETACH DATABASE part")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _remove_db_files(self.part)
        for spec in self.order:
            with contextlib.suppress(FileNotFoundError):
                os.remove(_claim_path(self.fresh_path, spec.name))


def _part_path(fresh_path: Path) -> Path:
    return fresh_path.with_name(fresh_path.name + ".part")


def _claim_path(fresh_path: Path, table: str) -> Path:
    return fresh_path.with_name(f"{fresh_path.name}.claim-{table}")


def claim_table(fresh_path: Path, table: str) -> bool:
    """Atomically take ``table`` for loading (the first of the two processes to ask gets it)."""
    try:
        os.close(os.open(_claim_path(fresh_path, table), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def _source_batches(source: RowSource, table: str) -> Iterator[tuple[Callable[[int], str], list[Any]]]:
    """``(locate, rows)`` batches: the source's own when it has them (an export folder decodes a
    whole batch in one call), else ``iter_rows`` grouped."""
    batches = getattr(source, "iter_batches", None)
    if callable(batches):
        yield from batches(table, BATCH_ROWS)
        return
    wheres: list[str] = []
    rows: list[Any] = []
    for where, row in source.iter_rows(table):
        wheres.append(where)
        rows.append(row)
        if len(rows) >= BATCH_ROWS:
            yield wheres.__getitem__, rows
            wheres, rows = [], []
    if rows:
        yield wheres.__getitem__, rows


def _first_fk_violation(path: Path) -> Any:
    conn = sqlite3.connect(_ro_uri(path), uri=True, timeout=5.0)
    try:
        return conn.execute("PRAGMA foreign_key_check").fetchone()
    finally:
        conn.close()


def _check_foreign_keys(conn: Any, source: RowSource, label: str, registry: Registry) -> None:
    violation = conn.execute("PRAGMA foreign_key_check").fetchone()
    if violation is None:
        return
    table, rowid, parent, fkid = violation
    spec = registry[table]
    fk_rows = {row[0]: row for row in conn.execute(f'PRAGMA foreign_key_list("{table}")')}
    column = fk_rows[fkid][3] if fkid in fk_rows else "?"
    key = ", ".join(f'"{c}"' for c in spec.pk)
    row = conn.execute(f'SELECT {key}, "{column}" FROM "{table}" WHERE rowid = ?', [rowid]).fetchone()
    row_key, value = (row[:-1], row[-1]) if row else (None, None)
    total = conn.execute("SELECT count(*) FROM pragma_foreign_key_check").fetchone()[0]
    where = f"{table} {', '.join(map(str, row_key)) if row_key else rowid}"
    if row_key is not None:
        with contextlib.suppress(BakestoreError):
            where = next((w for w, r in source.iter_rows(table)
                          if tuple(r.get(c) for c in spec.pk) == tuple(row_key)), where)
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
    conn = sqlite3.connect(_ro_uri(live_path), uri=True, timeout=5.0)
    try:
        conn.execute("ATTACH DATABASE ? AS other", [_ro_uri(other_path)])
        conn.execute("BEGIN")
        return {spec.name: _diff_table(conn, spec, "main", "other") for spec in registry.exported_tables}
    finally:
        conn.close()


def _diff_table(conn: Any, spec: TableSpec, a: str, b: str) -> TableDiff:
    t = f'"{spec.name}"'
    before = conn.execute(f"SELECT count(*) FROM {a}.{t}").fetchone()[0]
    after = conn.execute(f"SELECT count(*) FROM {b}.{t}").fetchone()[0]
    if before == 0 or after == 0:
        return TableDiff(before, after, added=after, removed=before)
    join = " AND ".join(f'x."{c}" = y."{c}"' for c in spec.pk)
    differs = " OR ".join(f'x."{c}" IS NOT y."{c}"' for c in spec.column_names if c not in spec.pk) or "0"
    # One join gives both: rows present on both sides, and how many of those differ.
    matched, changed = conn.execute(f"SELECT count(*), coalesce(sum({differs}), 0) "
                                    f"FROM {a}.{t} x JOIN {b}.{t} y ON {join}").fetchone()
    return TableDiff(before, after, added=after - matched, removed=before - matched, changed=changed)


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

_POINT_NAME = re.compile(r"^(\d{8}T\d{9}Z)-(\d{3})-")


def restore_point_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".restore-points")


def list_restore_points(db_path: str | os.PathLike[str]) -> list[Path]:
    """Restore points of a database, newest first (names sort by time, then sequence)."""
    folder = restore_point_dir(Path(db_path))
    if not folder.is_dir():
        return []
    live = fileswap.file_id(Path(db_path))
    return sorted((p for p in folder.glob("*.db") if not p.name.startswith(".") and p.is_file()
                   and not p.is_symlink() and fileswap.file_id(p) != live), key=lambda p: p.name, reverse=True)


def _file_identity(path: Path) -> list[int]:
    """What changes whenever a file's content may have: inode, size, mtime, ctime."""
    info = os.stat(path)
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _sidecar(point: Path) -> Path:
    return point.with_name(point.name + ".json")


def _read_sidecar(point: Path) -> dict[str, Any] | None:
    """A restore point's record of its check, if it has one that still describes the file."""
    try:
        data = json.loads(_sidecar(point).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("identity") != _file_identity(point):
        return None
    return data


def _next_point_name(db_path: Path, operation: str) -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    sequence = 0
    newest = next((m for m in map(_POINT_NAME.match, (p.name for p in list_restore_points(db_path))) if m), None)
    if newest is not None and newest.group(1) >= stamp:
        # Same millisecond (or the clock went back): keep names strictly increasing.
        stamp, sequence = newest.group(1), int(newest.group(2)) + 1
    safe = re.sub(r"[^a-z0-9_-]+", "-", operation.lower()) or "operation"
    return f"{stamp}-{sequence:03d}-{safe}.db"


def make_restore_point(db_path: Path, operation: str) -> Path:
    """A consistent, verified copy of the live database (VACUUM INTO, fsync, rename, check)."""
    folder = restore_point_dir(db_path)
    folder.mkdir(exist_ok=True)
    final = folder / _next_point_name(db_path, operation)
    tmp = folder / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    conn = sqlite3.connect(str(db_path), timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("VACUUM INTO ?", [str(tmp)])
    except sqlite3.DatabaseError as exc:
        _remove_db_files(tmp)
        raise RestoreError(f"{db_path}: could not take a restore point: {exc}; nothing was changed") from None
    finally:
        conn.close()
    try:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(folder)
    except OSError as exc:
        _remove_db_files(tmp)
        raise RestoreError(f"{db_path}: could not write the restore point: {exc.strerror or exc}; "
                           "nothing was changed") from None
    problem = _check_restore_point(final)
    if problem is not None:
        final.unlink()
        _sidecar(final).unlink(missing_ok=True)
        raise RestoreError(f"{final}: the new restore point failed its check: {problem}; nothing was changed")
    return final


def _check_restore_point(point: Path) -> str | None:
    """``quick_check`` a restore point and record it in its sidecar with the file's sha256 and
    chunk CRCs (what the fast undo relies on). Returns the first problem found, or None."""
    # The descriptor the hash reads is opened before the connection and closed after it: closing
    # a descriptor of a file drops every POSIX lock this process holds on it (sqlite-facts A1),
    # including the connection's while its check runs.
    fd = os.open(point, os.O_RDONLY)
    try:
        check = sqlite3.connect(_ro_uri(point), uri=True)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                digest = pool.submit(_sha256_fd, fd)  # hashlib lets go of the GIL: beside the check
                result = [r[0] for r in check.execute("PRAGMA quick_check")]
                sha256, chunks = digest.result()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        finally:
            check.close()
    finally:
        os.close(fd)
    if result != ["ok"]:
        return result[0]
    _write_sidecar(point, sha256, "quick_check", chunks)
    return None


def _sha256_fd(fd: int) -> tuple[str, list[int]]:
    """The file's sha256 (for the audit), and a CRC-32 of each :data:`CHUNK_BYTES` chunk: what a
    fast undo checks, in parallel, against accidental damage (a CRC runs at several GB/s). Reads
    with pread, so the caller's descriptor is neither moved nor closed."""
    digest = hashlib.sha256()
    chunks: list[int] = []
    offset = 0
    while chunk := os.pread(fd, CHUNK_BYTES, offset):
        digest.update(chunk)
        chunks.append(zlib.crc32(chunk))
        offset += len(chunk)
    return digest.hexdigest(), chunks


def _write_sidecar(point: Path, sha256: str | None, checked: str | None, chunks: list[int] | None = None) -> None:
    """Record how the restore point was checked and what the file looked like then (a failure
    to write it only costs the fast undo, which then takes the verified path)."""
    data = {"identity": _file_identity(point), "sha256": sha256, "checked": checked,
            "schema_version": SCHEMA_VERSION, "chunk_bytes": CHUNK_BYTES, "chunk_crc32": chunks}
    with contextlib.suppress(OSError):
        write_atomic(_sidecar(point), (json.dumps(data, sort_keys=True) + "\n").encode(),
                     tmp_name=f".{_sidecar(point).name}.tmp-{uuid.uuid4().hex[:8]}")


def prune_restore_points(db_path: Path, keep: int = KEEP_RESTORE_POINTS) -> list[Path]:
    removed = list_restore_points(db_path)[keep:]
    for path in removed:
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            _sidecar(path).unlink()
    folder = restore_point_dir(db_path)
    if folder.is_dir():
        for orphan in folder.glob("*.db.json"):
            if not orphan.with_name(orphan.name[:-5]).exists():
                with contextlib.suppress(FileNotFoundError):
                    orphan.unlink()
    return removed


# --------------------------------------------------------------------------- the swap


def swap_in(fresh_path: Path, live_path: Path, *, timeout: float = SWAP_TIMEOUT_S,
            beside_checkpoint: Callable[[], Any] | None = None) -> concurrent.futures.Future[Any] | None:
    """Make the live database's content the fresh file's, in one write transaction.

    The backup API copies every page into the live file under its write lock; WAL readers keep
    their snapshot until their transaction ends and then see the new content. The loop in
    CPython retries on SQLITE_BUSY forever, so the progress callback enforces a deadline.

    ``beside_checkpoint`` (a read-only check of the swapped-in content) runs in a thread while
    the WAL is folded back into the file; its future is returned for the caller to collect, so
    that its failure is reported as what it is — a failure *after* the swap.
    """
    deadline = time.monotonic() + timeout

    def progress(status: int, remaining: int, total: int) -> None:
        # Called after every step, the last one included: only a step that is *waiting* for the
        # lock (SQLITE_BUSY 5 / SQLITE_LOCKED 6) may give up. Raising after the step that
        # committed would report "nothing was changed" about a swap that happened.
        if status in (5, 6) and time.monotonic() > deadline:
            raise RestoreError(f"{live_path}: timed out after {timeout:.0f}s waiting for other connections "
                               "to release the database; nothing was changed")

    source = sqlite3.connect(_ro_uri(fresh_path), uri=True)
    target = sqlite3.connect(str(live_path), timeout=5.0)
    try:
        target.execute("PRAGMA busy_timeout = 5000")
        _fault("before-swap")
        source.backup(target, pages=-1, progress=progress, sleep=0.05)
        _fault("after-swap")
        check = None
        if beside_checkpoint is not None:
            check = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            checked = check.submit(beside_checkpoint)
        # The WAL now holds a database-sized run of frames: fold it into the file. A reader in a
        # long transaction can hold this up; then give up after a while (the content is
        # committed either way, and SQLite checkpoints later by itself).
        try:
            target.execute("PRAGMA busy_timeout = 100")
            until = time.monotonic() + CHECKPOINT_TIMEOUT_S
            while target.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
                if check is not None and not checked.done():
                    # Our own check's read transaction is what keeps it busy: wait for it, then
                    # start the clock for other readers.
                    concurrent.futures.wait([checked])
                    until = time.monotonic() + CHECKPOINT_TIMEOUT_S
                    continue
                if time.monotonic() > until:
                    log.warning("%s: readers kept the WAL busy; it will be checkpointed later", live_path)
                    break
                time.sleep(0.02)
        except sqlite3.Error as exc:
            log.warning("%s: the checkpoint after the swap failed (%s); SQLite will checkpoint later", live_path, exc)
        if check is not None:
            check.shutdown(wait=True)
            return checked
        return None
    finally:
        source.close()
        target.close()


# --------------------------------------------------------------------------- the pipeline


def _audit(store: "Store", record: audit.AuditRecord, started: float) -> str:
    record.duration_ms = int((time.monotonic() - started) * 1000)
    return audit.write(store.path, record)


def _live_counts(store: "Store") -> dict[str, int]:
    return {spec.name: store.count(spec.name) for spec in store.registry.exported_tables}


def _describe(source: Any) -> str:
    label = getattr(source, "label", None)
    return str(label) if label else str(source)


@contextlib.contextmanager
def _audited(store: "Store", record: audit.AuditRecord, operation: str) -> Iterator[float]:
    """Audit every way an operation ends that is not a success (those audit themselves).

    Refusals (the source, the shrink guard, the lock) are ``refused``; everything else is
    ``failed``. SQLite and OS errors become one-line :class:`RestoreError` messages.
    """
    started = time.monotonic()
    if record.details.get("dry_run"):
        # A dry run is a question, not an operation: it changes nothing and leaves no audit
        # record (so a stray preview cannot fill the audit log).
        yield started
        return
    try:
        yield started
    except CancelledError as exc:
        record.outcome, record.reason = "cancelled", str(exc)
        with contextlib.suppress(Exception):
            _audit(store, record, started)
        raise
    except (ShrinkRefusedError, SourceError, ValidationError, LockedError) as exc:
        record.outcome, record.reason = "refused", str(exc)
        with contextlib.suppress(Exception):
            _audit(store, record, started)
        raise
    except BaseException as exc:
        if isinstance(exc, (OSError, sqlite3.Error)):
            text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
            exc = RestoreError(f"{operation} failed: {text}; the live database was not changed")
            record.outcome, record.reason = "failed", str(exc)
            with contextlib.suppress(Exception):
                _audit(store, record, started)
            raise exc from None
        record.outcome, record.reason = "failed", f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            _audit(store, record, started)
        raise


@contextlib.contextmanager
def _operation(store: "Store", source: RowSource | str | os.PathLike[str], operation: str, dry_run: bool,
               audit_details: dict[str, Any] | None) -> Iterator[tuple[audit.AuditRecord, float, RowSource]]:
    """What every operation does first: audit (see :func:`_audited`), the operation lock, sweeping
    what a killed run left, opening and verifying the source; and at the end, closing it."""
    live_path = store.path
    record = audit.AuditRecord(operation=operation, db_path=str(live_path), source=_describe(source),
                               details={**(audit_details or {}), "dry_run": dry_run})
    with _audited(store, record, operation) as started, store_lock(live_path):
        remove_leftovers(live_path)
        row_source = open_source(source, live_path=live_path)
        record.source = row_source.label
        try:
            record.counts_before = _live_counts(store)
            row_source.verify()
            record.source_sha256 = row_source.checksum()
            yield record, started, row_source
        finally:
            _close_source(row_source)


def replace_contents(store: "Store", source: RowSource | str | os.PathLike[str], *, operation: str = "restore",
                     dry_run: bool = False, allow_shrink: bool = False, max_loss: float = DEFAULT_MAX_LOSS,
                     progress: Progress | None = None, audit_details: dict[str, Any] | None = None,
                     confirm: Callable[[RestoreResult], bool] | None = None) -> RestoreResult:
    """Replace the live database's content with ``source``'s, through the safe pipeline."""
    live_path = store.path
    with _operation(store, source, operation, dry_run, audit_details) as (record, started, row_source):
        fresh: FreshDatabase | None = None
        try:
            _fault("after-verify")
            page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
            # A replace makes this file a copy of the source's dataset: adopt its identity when it
            # has one (so export → restore → export is byte-identical), else keep ours.
            meta = {"db_id": getattr(row_source, "db_id", None) or store.db_id,
                    "created_at": store._meta_get("created_at") or store.now(),
                    BULK_CHANGE_KEYS[0]: uuid.uuid4().hex}
            fresh = build_fresh(live_path, row_source, page_size=page_size, meta=meta,
                                seed_stamp=lambda: (store.now(), store.clock.now()),
                                registry=store.registry, progress=progress,
                                alongside=lambda path: diff_databases(live_path, path, store.registry))
            _fault("after-build")
            _stamp_clock(fresh.path, store)  # the clock lives in _bakestore_meta: not part of the diff
            diff = fresh.alongside
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
                raise CancelledError(f"{operation} cancelled; nothing was changed")
            # Audit first: if the log cannot be written, refuse now, before anything changes.
            _audit(store, record, started)
            verified: concurrent.futures.Future[Any] | None = None
            renamed = _swap_in_by_rename(store, fresh.path, operation)
            if renamed is not None:
                restore_point, late_openers = renamed
                record.details["swap"] = "rename-built"  # the checked fresh file, renamed in
                if late_openers:
                    record.details["late_openers"] = late_openers
                result.restore_point, record.restore_point = restore_point, str(restore_point)
            else:
                # From the restore point to the swap no bakestore writer may commit: its write
                # would be in neither the restore point nor the new content.
                with exclusive_writes(live_path):
                    restore_point = make_restore_point(live_path, operation)
                    result.restore_point = restore_point
                    record.restore_point = str(restore_point)
                    _fault("after-restore-point")
                    fresh_counts = fresh.counts
                    point = restore_point
                    verified = swap_in(fresh.path, live_path,
                                       beside_checkpoint=lambda: _verify_swap(live_path, fresh_counts, point))
            try:
                _fault("after-checkpoint")
                if verified is not None:
                    verified.result()
                record.outcome = "done"
                result.audit_id = _audit(store, record, started)
                store.clock.observe(_read_meta(live_path, "hlc") or store.clock.high_water)
            except (OSError, sqlite3.Error) as exc:
                raise _done_but_failed(operation, restore_point, exc) from None
            _prune_quietly(live_path)
            return result
        finally:
            if fresh is not None:
                _remove_db_files(fresh.path)


def _done_but_failed(operation: str, restore_point: Path, exc: BaseException | None = None) -> RestoreError:
    """The error for a failure *after* the swap: the operation happened, and this says so (never
    "nothing was changed") and where the previous content is."""
    text = ""
    if exc is not None:
        text = f" ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})"
    return RestoreError(f"{operation} done: the new content is in place, but a later step failed{text}; the "
                        f"previous content is in the restore point {restore_point}")


def _rename_swap(store: "Store", replacement: Path, keep: Path, operation: str, *, fault: str,
                 before_swap: Callable[[fileswap.ProvenAlone], None] | None = None
                 ) -> fileswap.ProvenAlone | fileswap.NotProvenAlone:
    """Rename ``replacement`` over the live file, keeping the live file as ``keep`` (a hard link),
    when :mod:`bakestore.fileswap` proves that nobody else has the database open.

    API writes are held off (the write lock) before the Store's connection is closed, and stay
    held through the swap. ``before_swap(alone)`` runs inside the hold, just before the rename
    (last writes into the replacement through ``alone.replacement``, the audit record). Returns
    the :class:`~bakestore.fileswap.ProvenAlone` once swapped, or the
    :class:`~bakestore.fileswap.NotProvenAlone` that says why not: then nothing changed (a
    rename that had to go back was reversed). The Store's connection is open again either way. A
    failure after the rename is a :class:`RestoreError` saying the operation is done.
    """
    live_path = store.path
    alone: fileswap.ProvenAlone | None = None
    writes = exclusive_writes(live_path)
    writes.__enter__()  # no API write in flight, in any thread or process, from here on
    if store.db.conn.in_transaction:
        writes.__exit__(None, None, None)
        return fileswap.NotProvenAlone("the Store has a transaction open")
    store.db.close()  # our own connection would (rightly) fail the probe
    try:
        with contextlib.ExitStack() as held:
            held.push(writes)
            alone = held.enter_context(fileswap.proven_alone(live_path, replacement))
            if before_swap is not None:
                before_swap(alone)
            _fault(f"before-{fault}")
            alone.swap(keep)
            _fault(f"after-{fault}")
    except fileswap.NotProvenAlone as why:
        store.db = connect_store_file(live_path)
        log.info("%s: %s by rename not possible (%s); using the backup-API swap", live_path, operation, why)
        return why
    except BaseException:
        with contextlib.suppress(Exception):  # the Store stays usable whatever happened, if it can
            store.db = connect_store_file(live_path)
        if alone is not None and alone.swapped:
            raise _done_but_failed(operation, keep) from None
        raise
    try:
        store.db = connect_store_file(live_path)
    except (OSError, sqlite3.Error, BakestoreError) as exc:
        raise _done_but_failed(operation, keep, exc) from None
    if alone.late_openers:
        log.error("%s: process(es) %s opened the database during the swap and still hold the old "
                  "file; they may read stale data until they reopen it", live_path, sorted(alone.late_openers))
    return alone


def _swap_in_by_rename(store: "Store", fresh_path: Path, operation: str) -> tuple[Path, list[int]] | None:
    """The fast swap: the fresh file *becomes* the live file by rename, and the live file becomes
    the restore point (a hard link: no copy of it is made). Only from a process with no other
    thread and when :mod:`bakestore.fileswap` proves that no other connection or process has the
    database open (the conditions are the fast undo's, guarantees S16). Returns the restore point
    and the processes that opened the old file during the swap and still hold it (for the audit
    record), or None, having changed nothing, whenever that is not so: the caller then takes a restore
    point by copy and swaps with the backup API, which is safe with readers.

    The fresh file was built and checked whole (integrity, foreign keys, counts) and carries its
    clock and bulk-change marker already; the old file, checkpointed by the probe, becomes the
    restore point and is checked as one (quick_check, sha256 and chunk CRCs in its sidecar).
    """
    if store.registry is not REGISTRY or _other_threads():
        return None
    live_path = store.path
    folder = restore_point_dir(live_path)
    folder.mkdir(exist_ok=True)
    keep = folder / _next_point_name(live_path, operation)
    fresh_file = fileswap.file_id(fresh_path)
    swapped = _rename_swap(store, fresh_path, keep, operation, fault="rename-swap-in")
    if isinstance(swapped, fileswap.NotProvenAlone):
        return None
    # From here on the swap has happened: a failure must not read as "nothing changed".
    try:
        # The old live file, checkpointed by the probe, is the restore point: checked as a copy
        # would be, so that an undo of this operation can be the fast one too.
        problem = _check_restore_point(keep)
        if problem is not None:
            _write_sidecar(keep, None, None)
            log.warning("%s: the restore point %s (the previous live file) fails quick_check: %s; an undo to it "
                        "will refuse it", live_path, keep, problem)
        if fileswap.file_id(live_path) != fresh_file:
            raise RestoreError(f"{live_path}: after the swap the live file is not the new content's file")
    except (OSError, sqlite3.Error, BakestoreError) as exc:
        raise _done_but_failed(operation, keep, exc) from None
    return keep, sorted(swapped.late_openers)


def _prune_quietly(live_path: Path) -> None:
    """Retention must never turn a finished operation into a reported failure."""
    try:
        prune_restore_points(live_path)
    except OSError as exc:
        log.warning("%s: could not prune old restore points: %s", live_path, exc)


def _read_meta(path: Path, key: str) -> str | None:
    conn = sqlite3.connect(_ro_uri(path), uri=True)
    try:
        row = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', [key]).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def _stamp_clock(fresh_path: Path, store: "Store") -> None:
    """The fresh file's clock high-water mark: the max of the live clock and every row version."""
    conn = sqlite3.connect(str(fresh_path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        high = store.clock.high_water
        for spec in store.registry.exported_tables:
            if spec.has_column("row_version"):
                value = conn.execute(f'SELECT max(row_version) FROM "{spec.name}"').fetchone()[0]
                if value and value[:19] > high[:19]:
                    high = value
        conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)', ["hlc", high])
    finally:
        conn.close()


def _verify_swap(live_path: Path, expected: dict[str, int], restore_point: Path) -> None:
    conn = sqlite3.connect(_ro_uri(live_path), uri=True, timeout=5.0)
    try:
        conn.execute("BEGIN")
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
        problem = None if result == ["ok"] else f"quick_check after the swap: {result[0]}"
        for table, count in expected.items():
            actual = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if problem is None and actual != count:
                problem = f"after the swap {table} has {actual} rows, expected {count}"
    finally:
        conn.close()
    if problem:
        raise RestoreError(f"{live_path}: {problem}; the previous content is in the restore point "
                           f"{restore_point} (`bakestore undo` swaps it back)")


def _counts_of(path: Path, registry: Registry) -> dict[str, int]:
    conn = sqlite3.connect(_ro_uri(path), uri=True)
    try:
        return {spec.name: conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]
                for spec in registry.exported_tables}
    finally:
        conn.close()


def _stamp_for_swap(conn: Any, store: "Store") -> None:
    """Before a rename swap, write into the file about to become live (through the connection
    that holds it exclusively) what the backup-API path writes into its fresh file: the clock's
    high-water mark and a new bulk-change marker (so the watcher exports in full). No statement
    ever writes to the live file during an operation."""
    row = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', ["hlc"]).fetchone()
    high = store.clock.high_water
    if row and row[0] and row[0][:19] > high[:19]:
        high = row[0]
    conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)', ["hlc", high])
    # Sync's bookkeeping must not come back with the old content, as on the backup-API path (whose
    # fresh file starts with an empty _bakestore_meta): a restore point taken by a sync holds that
    # sync's *previous* generation, which would read as "the last round's state write was lost" and
    # bring the undone rows back. Without a generation the next sync sees "restored or replaced"
    # and publishes the undo as the user's latest act (docs/sync.md).
    conn.execute('DELETE FROM "_bakestore_meta" WHERE key = ?', [SYNC_GENERATION_KEY])
    mark_bulk_change(conn)
    conn.execute("COMMIT")  # in EXCLUSIVE locking mode the lock stays held after the commit


def _content_unchanged(point: Path, sidecar: dict[str, Any]) -> bool:
    """Every chunk of the restore point still has the CRC-32 recorded when it was checked (two
    threads; catches damage that leaves the file's metadata alone, such as a failing disk)."""
    chunks = sidecar.get("chunk_crc32")
    if not isinstance(chunks, list) or not chunks or sidecar.get("chunk_bytes") != CHUNK_BYTES:
        return False
    fd = os.open(point, os.O_RDONLY)
    try:
        def check(indexes: range) -> bool:
            buffer = bytearray(CHUNK_BYTES)  # one buffer per thread, read into again and again
            view = memoryview(buffer)
            for index in indexes:
                got = os.preadv(fd, [buffer], index * CHUNK_BYTES)
                if zlib.crc32(view[:got]) != chunks[index]:
                    return False
            return True

        halves = (range(0, len(chunks), 2), range(1, len(chunks), 2))
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            return all(pool.map(check, halves)) and os.fstat(fd).st_size <= len(chunks) * CHUNK_BYTES
    finally:
        os.close(fd)


def _other_threads() -> bool:
    """Another thread (not a daemon) could be using this Store's connection or open the file."""
    me = threading.current_thread()
    return any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate())


def _undo_by_rename(store: "Store", point: Path,
                    confirm: Callable[[RestoreResult], bool] | None) -> RestoreResult | None:
    """The fast undo: the restore point *becomes* the live file by rename, and the live file
    becomes the new restore point (a hard link, no copy). Only for a restore point whose check at
    creation is on record, whose file has not changed since (inode, size, mtime, ctime, and the
    sha256 of every chunk), from a process with no other thread (which could be using this
    Store's connection or open the file), and only when :mod:`bakestore.fileswap` proves that no
    other connection or process has the database open. Returns None, having changed nothing,
    whenever that is not so: :func:`undo` then takes the verified backup-API path. Without
    ``confirm`` the diff is by row counts only.
    """
    sidecar = _read_sidecar(point)
    if (sidecar is None or not sidecar.get("checked") or sidecar.get("schema_version") != SCHEMA_VERSION
            or store.registry is not REGISTRY or _other_threads()):
        return None
    live_path = store.path
    label = f"database {point}"
    record = audit.AuditRecord(operation="undo", db_path=str(live_path), source=label,
                               source_sha256=sidecar.get("sha256"),
                               details={"dry_run": False, "restore_point_used": str(point), "swap": "rename"})
    with _audited(store, record, "undo") as started, store_lock(live_path):
        remove_leftovers(live_path)
        if list_restore_points(live_path)[:1] != [point] or _read_sidecar(point) != sidecar:
            return None  # changed while we waited for the lock: let the verified path look again
        # The chunk check (its threads wait on hashing, not on the GIL) runs beside the counts.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            unchanged = pool.submit(_content_unchanged, point, sidecar)
            before = _live_counts(store)
            if not unchanged.result():
                log.warning("%s: the restore point's bytes differ from its check; using the verified undo", point)
                return None
        after = _counts_of(point, store.registry)  # only once its bytes are known to be the checked ones
        if confirm is not None:
            diff = diff_databases(live_path, point, store.registry)
        else:
            diff = {name: TableDiff(before[name], after[name], None, None, None) for name in before}
        result = RestoreResult("undo", False, label, sidecar.get("sha256"), diff)
        if confirm is None:
            result.notes.append("fast undo: rows per table before → after; the row-level diff was not computed")
        record.counts_before, record.counts_after = before, after
        if confirm is not None and not confirm(result):
            raise CancelledError("undo cancelled; nothing was changed")
        keep = restore_point_dir(live_path) / _next_point_name(live_path, "undo")
        replacement_file = fileswap.file_id(point)
        audited = False

        def before_swap(alone: fileswap.ProvenAlone) -> None:
            nonlocal audited
            _audit(store, record, started)  # audit first, as on every path
            audited = True
            _stamp_for_swap(alone.replacement, store)

        swapped = _rename_swap(store, point, keep, "undo", fault="rename-swap", before_swap=before_swap)
        if isinstance(swapped, fileswap.NotProvenAlone):
            if audited:  # the record was written, and the rename was reversed: say so
                record.outcome, record.reason = "superseded", f"{swapped}; the rename was reversed, nothing changed"
                with contextlib.suppress(Exception):
                    _audit(store, record, started)
            return None
        # From here on the undo has happened: a failure must not read as "nothing changed".
        try:
            if swapped.late_openers:
                record.details["late_openers"] = sorted(swapped.late_openers)
            _write_sidecar(keep, None, None)  # the old live file: consistent, but not checked as a copy
            with contextlib.suppress(FileNotFoundError):
                _sidecar(point).unlink()
            store.clock.observe(_read_meta(live_path, "hlc") or store.clock.high_water)
            if fileswap.file_id(live_path) != replacement_file:
                raise RestoreError(f"{live_path}: after the swap the live file is not the restore point's file")
            record.outcome, record.restore_point = "done", str(keep)
            result.restore_point = keep
            result.audit_id = _audit(store, record, started)
        except (OSError, sqlite3.Error, BakestoreError) as exc:
            raise _done_but_failed("undo", keep, exc) from None
    _prune_quietly(live_path)
    return result


def undo(store: "Store", *, dry_run: bool = False, progress: Progress | None = None,
         confirm: Callable[[RestoreResult], bool] | None = None,
         expected_point: str | os.PathLike[str] | None = None) -> RestoreResult:
    """Swap the newest restore point back in. Itself takes a restore point, so it can be undone.

    ``expected_point`` (the one a person previewed) makes the undo refuse if a newer restore
    point has appeared since; ``confirm`` is asked with the diff before anything changes.
    """
    points = list_restore_points(store.path)
    if not points:
        record = audit.AuditRecord(operation="undo", db_path=str(store.path), source=None,
                                   details={"dry_run": dry_run})
        with _audited(store, record, "undo"):
            raise SourceError(f"{store.path}: no restore point to undo to")
    if expected_point is not None and Path(expected_point).name != points[0].name:
        record = audit.AuditRecord(operation="undo", db_path=str(store.path), source=str(points[0]),
                                   details={"dry_run": dry_run})
        with _audited(store, record, "undo"):
            raise SourceError(f"the newest restore point is now {points[0].name}, not the previewed "
                              f"{Path(expected_point).name}; nothing was changed, preview again")
    if not dry_run:
        fast = _undo_by_rename(store, points[0], confirm)
        if fast is not None:
            return fast
    source = DatabaseSource(points[0], store.registry)
    sidecar = _read_sidecar(points[0])
    source.rows_checked = bool(sidecar and sidecar.get("checked") and sidecar.get("schema_version") == SCHEMA_VERSION)
    return replace_contents(store, source, operation="undo", dry_run=dry_run,
                            allow_shrink=True, progress=progress, confirm=confirm,
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


def reset(store: "Store", *, dry_run: bool = False, allow_shrink: bool = False,
          progress: Progress | None = None, confirm: Callable[[RestoreResult], bool] | None = None) -> RestoreResult:
    """An empty, seeded database, through the same path (so it is audited and undoable)."""
    return replace_contents(store, _EmptySource(), operation="reset", dry_run=dry_run, allow_shrink=allow_shrink,
                            progress=progress, confirm=confirm)


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
    live_path = store.path
    with _operation(store, source, operation, dry_run, audit_details) as (record, started, row_source):
        scratch: FreshDatabase | None = None
        try:
            page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
            scratch = build_fresh(live_path, row_source, page_size=page_size, meta={}, seed_stamp=None,
                                  registry=store.registry, progress=progress, check_foreign_keys=False)
            if not dry_run:
                _audit(store, record, started)  # refuse now if the audit log cannot be written
            result = _merge_into_live(store, scratch.path, row_source, dry_run=dry_run, allow_shrink=allow_shrink,
                                      max_loss=max_loss, operation=operation)
            result.operation = operation
            record.restore_point = str(result.restore_point) if result.restore_point else None
            record.counts_before, record.counts_after = result.counts_before, result.counts_after
            if dry_run:
                return result
            record.outcome = "done"
            result.audit_id = _audit(store, record, started)
            _prune_quietly(live_path)
            return result
        finally:
            if scratch is not None:
                _remove_db_files(scratch.path)


def _merge_into_live(store: "Store", scratch_path: Path, source: RowSource, *, dry_run: bool,
                     allow_shrink: bool, max_loss: float, operation: str = "merge") -> RestoreResult:
    registry = store.registry
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=5.0)
    restore_point: Path | None = None
    committed = False
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("ATTACH DATABASE ? AS src", [_ro_uri(scratch_path)])
        conn.execute("BEGIN IMMEDIATE")
        if not dry_run:
            # Taken while this transaction holds the write lock (VACUUM INTO only needs a read
            # transaction on another connection): nothing can commit between it and the merge.
            restore_point = make_restore_point(store.path, operation)
        conn.execute("PRAGMA defer_foreign_keys = ON")
        before = {s.name: conn.execute(f'SELECT count(*) FROM main."{s.name}"').fetchone()[0]
                  for s in registry.exported_tables}
        diff: dict[str, TableDiff] = {}
        for spec in registry.exported_tables:
            diff[spec.name] = _merge_table(conn, spec, source)
        _apply_tombstones(conn, registry, store)
        violation = conn.execute("PRAGMA main.foreign_key_check").fetchone()
        if violation is not None:
            table, rowid, parent, fkid = violation
            fk = {r[0]: r for r in conn.execute(f'PRAGMA main.foreign_key_list("{table}")')}.get(fkid)
            column = fk[3] if fk else "?"
            row = conn.execute(f'SELECT id, "{column}" FROM main."{table}" WHERE rowid = ?', [rowid]).fetchone()
            conn.execute("ROLLBACK")
            where = f"{table} {row[0] if row else rowid}"
            if row is not None:
                with contextlib.suppress(BakestoreError):
                    where = next((w for w, r in source.iter_rows(table) if r.get("id") == row[0]), where)
            raise ForeignKeyError(f"{source.label}: {where}: {table}.{column}: no {parent} row with id "
                                  f"{row[1] if row else None!r} in the source or the store",
                                  table=table, field=column, record=where)
        for spec in registry.exported_tables:
            after = conn.execute(f'SELECT count(*) FROM main."{spec.name}"').fetchone()[0]
            diff[spec.name].before, diff[spec.name].after = before[spec.name], after
            diff[spec.name].removed = max(0, before[spec.name] + (diff[spec.name].added or 0) - after)
        result = RestoreResult("merge", dry_run, source.label, source.checksum(), diff, restore_point=restore_point)
        problems = shrink_problems(diff, max_loss=max_loss, registry=registry)
        if problems and not allow_shrink:
            conn.execute("ROLLBACK")
            raise ShrinkRefusedError(f"refusing to merge {source.label}: it " + "; and ".join(problems)
                                     + " (pass --allow-shrink if this is intended)")
        if dry_run:
            conn.execute("ROLLBACK")
            return result
        high = store.clock.high_water
        for spec in registry.exported_tables:
            if spec.has_column("row_version"):
                value = conn.execute(f'SELECT max(row_version) FROM src."{spec.name}"').fetchone()[0]
                if value:
                    store.clock.observe(value)
        conn.execute('INSERT OR REPLACE INTO main."_bakestore_meta"(key, value) VALUES (?, ?)',
                     ["hlc", max(high, store.clock.high_water)])
        mark_bulk_change(conn)
        conn.execute("COMMIT")
        committed = True
        return result
    except sqlite3.IntegrityError as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise ValidationError(f"{source.label}: merge refused: {exc}") from None
    finally:
        conn.close()
        if restore_point is not None and not committed:
            # A refused merge changed nothing: its restore point would only mislead `undo`.
            _remove_db_files(restore_point)


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


def _apply_tombstones(conn: Any, registry: Registry, store: "Store") -> None:
    """Delete live rows that a newer tombstone names, children before parents.

    The registry's ON DELETE rules are applied here, not left to SQLite, so that every row a
    tombstone removes gets its own tombstone (CASCADE) and every row it changes gets a new
    version (SET NULL), exactly as ``Store.delete`` does; RESTRICT refuses the merge.
    """
    order = {name: i for i, name in enumerate(registry.names)}
    rows = conn.execute('SELECT table_name, row_id, row_version FROM main."_tombstones"').fetchall()
    now = store.now()
    for table, row_id, version in sorted(rows, key=lambda r: -order.get(r[0], 0)):
        if table not in registry or not registry[table].has_row_identity:
            continue
        live = conn.execute(f'SELECT 1 FROM main."{table}" WHERE id = ? AND row_version < ?',
                            [row_id, version]).fetchone()
        if live:
            _delete_with_rules(conn, registry, store, table, row_id, now)


def _delete_with_rules(conn: Any, registry: Registry, store: "Store", table: str, row_id: str, now: str) -> None:
    for fk in registry.references_to(table):
        children = [r[0] for r in conn.execute(f'SELECT id FROM main."{fk.table}" WHERE "{fk.column}" = ?',
                                               [row_id])]
        for child in children:
            if fk.table == table and child == row_id:
                continue
            if fk.on_delete == "CASCADE":
                _delete_with_rules(conn, registry, store, fk.table, child, now)
            elif fk.on_delete == "SET NULL":
                conn.execute(f'UPDATE main."{fk.table}" SET "{fk.column}" = NULL, updated_at = ?, row_version = ? '
                             f'WHERE id = ?', [now, store.clock.now(), child])
            else:
                raise ForeignKeyError(f"merge refused: deleting {table} {row_id} (a tombstone in the source) is "
                                      f"blocked by {fk.table} {child} via {fk.column} (ON DELETE {fk.on_delete})",
                                      table=fk.table, field=fk.column)
    conn.execute('INSERT INTO main."_tombstones"(table_name, row_id, row_version, deleted_at) VALUES (?, ?, ?, ?) '
                 'ON CONFLICT(table_name, row_id) DO NOTHING', [table, row_id, store.clock.now(), now])
    conn.execute(f'DELETE FROM main."{table}" WHERE id = ?', [row_id])
