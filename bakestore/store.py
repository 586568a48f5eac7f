"""The Store: an explicitly located bakestore database, read and written through the registry.

Every write goes through one short ``BEGIN IMMEDIATE`` transaction, validates each row against its
pydantic model first, stamps ``updated_at`` and a fresh hybrid-logical-clock ``row_version``, and
records tombstones for deletes (including rows removed by ON DELETE CASCADE), so sync can replay
state later. Errors are :class:`~bakestore.errors.BakestoreError` subclasses that name the table,
record and field.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import pydantic
import sqlite_utils
import sqlite_utils.utils

from . import clock as _clock
from .errors import (
    CancelledError,
    ConflictError,
    ConstraintError,
    DeleteRestrictedError,
    ForeignKeyError,
    LockedError,
    NotFoundError,
    SchemaError,
    SQLiteVersionError,
    UnknownColumnError,
    ValidationError,
)
from .models.base import format_timestamp, int64_problem
from .registry import REGISTRY, Registry, TableSpec
from .schema import APPLICATION_ID, SCHEMA_VERSION, check_schema, create_schema, migrate, schema_version
from .sqlite import sqlite3

if TYPE_CHECKING:
    from .exports import ExportResult
    from .restore import RestoreResult
    from .sources import RowSource
    from .watch import Watcher

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
#: Below this SQLite has the WAL-reset bug (wal.html#walresetbug); 3.44.6+ and 3.50.7+ got backports.
WAL_RESET_FIXED = (3, 51, 3)
MIN_SQLITE = (3, 37, 0)  # STRICT tables; VACUUM INTO needs 3.27


def sqlite_version() -> tuple[int, int, int]:
    return tuple(int(p) for p in sqlite3.sqlite_version.split(".")[:3])  # type: ignore[return-value]


def wal_reset_bug_fixed(version: tuple[int, int, int] | None = None) -> bool:
    v = version or sqlite_version()
    return v >= WAL_RESET_FIXED or (v[:2] == (3, 44) and v >= (3, 44, 6)) or (v[:2] == (3, 50) and v >= (3, 50, 7))


def check_one_sqlite_module() -> None:
    """Refuse to run with two SQLite libraries in one process (sqlite-facts B6, howtocorrupt §2.3)."""
    if sqlite_utils.utils.sqlite3 is not sqlite3:
        raise SQLiteVersionError(
            f"sqlite-utils uses {sqlite_utils.utils.sqlite3.__name__} but bakestore uses {sqlite3.__name__}; "
            "two SQLite libraries in one process can corrupt the database")
    if sqlite_version() < MIN_SQLITE:
        raise SQLiteVersionError(f"SQLite {sqlite3.sqlite_version} is too old; bakestore needs 3.37.0 or later")


def utc_now() -> str:
    return format_timestamp(_dt.datetime.now(_dt.timezone.utc))


def connect(path: str | os.PathLike[str], *, wal: bool = True, synchronous: str = "FULL") -> sqlite_utils.Database:
    """Open a connection with bakestore's settings (sqlite-facts B7).

    WAL, ``synchronous=FULL`` (a committed restore survives power loss), ``foreign_keys=ON``, a
    5 s busy timeout and an explicit ``secure_delete=OFF``: deleted bytes stay in free space so
    ``bakestore forensics`` can recover them after an accident. Restore points keep them too:
    one taken by copy is vacuumed, but one kept by a rename swap is the previous live file itself.
    """
    check_one_sqlite_module()
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA secure_delete = OFF")
    if wal:
        with db.ensure_autocommit_on():
            db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


#: ``_bakestore_meta`` keys that change whenever rows may have changed *in place* in bulk (a
#: merge, a restore, a sync): the watcher cannot see such changes in per-table fingerprints, so a
#: change of any of these values makes it write a full export.
BULK_CHANGE_KEYS = ("bulk_change", "sync_generation")


def mark_bulk_change(conn: Any) -> None:
    """Record that rows changed in bulk (inside the caller's write transaction)."""
    conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)',
                 [BULK_CHANGE_KEYS[0], _clock.uuid7()])


#: How long a writer waits for a restore's swap to finish, or a restore for writers to finish.
WRITE_LOCK_TIMEOUT_S = 60.0


def write_lock_path(db_path: Path) -> Path:
    """``<db>.write.lock`` beside the database: a lock file, never a lock on the database itself."""
    return db_path.with_name(db_path.name + ".write.lock")


def _flock(fd: int, mode: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LockedError(what) from None
            time.sleep(0.02)


@contextlib.contextmanager
def exclusive_writes(db_path: Path, timeout: float = WRITE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold off every bakestore writer (they take this lock shared in ``Store.write``).

    A restore holds it from its restore point through the swap, so no write through the API can
    commit in between and be lost from both. Writers outside bakestore (the sqlite3 shell) do not
    take it; for them the gap is only the moment between the restore point and the swap.
    """
    fd = os.open(write_lock_path(Path(db_path)), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _flock(fd, fcntl.LOCK_EX, timeout, f"{db_path}: writers did not finish within {timeout:.0f}s; "
                                           "nothing was changed, try again")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def connect_store_file(path: Path) -> sqlite_utils.Database:
    """``connect`` for a store file, turning "not a database" into a one-line SchemaError."""
    try:
        return connect(path)
    except sqlite3.DatabaseError as exc:
        raise SchemaError(_unusable(path, exc)) from None


def _unusable(path: Path, exc: Exception) -> str:
    # bakestore opens every database for writing (WAL needs its -wal and -shm files beside it):
    # say so when the location is the problem, rather than blaming the file.
    folder = path.parent if str(path.parent) else Path(".")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{path}: cannot write in this location (read-only?); bakestore needs write access ({exc})"
    return f"{path}: not a usable SQLite database ({exc})"


# --------------------------------------------------------------------------- validation


def _format_pydantic_error(spec: TableSpec, exc: pydantic.ValidationError, record: str | None) -> ValidationError:
    first = exc.errors()[0]
    field_name = ".".join(str(p) for p in first.get("loc", ())) or None
    where = f"{spec.name}.{field_name}" if field_name else spec.name
    if record:
        where += f" (record {record})"
    message = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":
        return ValidationError(f"{spec.name}: unknown column {field_name!r}" + (f" (record {record})" if record else ""),
                               table=spec.name, field=field_name, record=record)
    more = len(exc.errors()) - 1
    suffix = f" (+{more} more problem{'s' if more > 1 else ''})" if more else ""
    return ValidationError(f"{where}: {message}{suffix}", table=spec.name, field=field_name, record=record)


def validate_row(spec: TableSpec, data: Mapping[str, Any], *, record: str | None = None,
                 complete: bool = False, label_from_data: bool = True) -> dict[str, Any]:
    """Validate one row against its model and return the values to store, in column order.

    ``complete`` requires the identity/version columns too (a restore source must carry them).
    """
    if not isinstance(data, Mapping):
        raise ValidationError(f"{spec.name}: expected an object, got {type(data).__name__}"
                              + (f" (record {record})" if record else ""), table=spec.name, record=record)
    try:
        model = spec.model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise _format_pydantic_error(spec, exc, record or (_record_label(data) if label_from_data else None)) from None
    values = model.model_dump()
    for column in spec.columns:
        problem = int64_problem(values.get(column.name)) if column.kind == "integer" else None
        if problem:
            label = record or (_record_label(data) if label_from_data else None)
            raise ValidationError(f"{spec.name}.{column.name}: {problem}" + (f" (record {label})" if label else ""),
                                  table=spec.name, field=column.name, record=label)
    if complete:
        for name in spec.column_names:
            column = spec.column(name)
            if values.get(name) is None and not column.nullable:
                raise ValidationError(f"{spec.name}.{name}: missing value (record {record or _record_label(data)})",
                                      table=spec.name, field=name, record=record)
    return values


def _record_label(data: Mapping[str, Any]) -> str | None:
    value = data.get("id") if isinstance(data, Mapping) else None
    return str(value) if value is not None else None


_UNIQUE_RE = re.compile(r"UNIQUE constraint failed: (.+)")
_CHECK_RE = re.compile(r"CHECK constraint failed: (.+)")


def translate_integrity_error(spec: TableSpec, exc: Exception, record: str | None) -> ValidationError:
    text = str(exc)
    suffix = f" (record {record})" if record else ""
    if m := _UNIQUE_RE.search(text):
        columns = m.group(1)
        return ConstraintError(f"{spec.name}: another row already has the same {columns}{suffix}",
                               table=spec.name, field=columns.split(",")[0].split(".")[-1].strip(), record=record)
    if m := _CHECK_RE.search(text):
        return ConstraintError(f"{spec.name}: check failed: {m.group(1)}{suffix}", table=spec.name, record=record)
    if "FOREIGN KEY" in text:
        return ForeignKeyError(f"{spec.name}: a foreign key points at a missing row{suffix}", table=spec.name,
                               record=record)
    if "NOT NULL" in text:
        column = text.rsplit(".", 1)[-1]
        return ConstraintError(f"{spec.name}.{column}: missing value{suffix}", table=spec.name, field=column,
                               record=record)
    return ConstraintError(f"{spec.name}: {text}{suffix}", table=spec.name, record=record)


# --------------------------------------------------------------------------- results


@dataclass
class DeleteResult:
    """What a delete did: the row itself, rows removed by CASCADE, rows whose FK was set NULL."""

    table: str
    id: str
    cascaded: list[tuple[str, str]] = field(default_factory=list)
    nulled: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class HealthReport:
    path: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


# --------------------------------------------------------------------------- the store


class Store:
    """A bakestore database at an explicit path.

    ``Store(path)`` creates the schema and seeds on first open (``create=False`` refuses a missing
    file instead). ``device_id`` defaults to the one in the user's config directory; tests and
    embedding apps pass their own. ``wall_clock`` (ms since the epoch) makes timestamps and
    versions deterministic.
    """

    def __init__(self, path: str | os.PathLike[str], *, device_id: str | None = None,
                 create: bool = True, seed: bool = True, registry: Registry = REGISTRY,
                 wall_clock: Callable[[], int] | None = None) -> None:
        self.path = Path(path)
        self.registry = registry
        if not self.path.exists():
            if not create:
                raise NotFoundError(f"{self.path}: no such database (use `bakestore init` to create one)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if device_id is None:
            from .paths import config_dir

            device_id = _clock.load_device_id(config_dir())
        self._wall = wall_clock or (lambda: time.time_ns() // 1_000_000)
        self.clock = _clock.HybridLogicalClock(device_id, wall=self._wall)
        self._write_lock_fd: int | None = None
        self.db = connect_store_file(self.path)
        try:
            self._prepare(seed=seed)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise SchemaError(_unusable(self.path, exc)) from None
        except BaseException:
            self.db.close()
            raise
        high = self._meta_get("hlc")
        if high:
            # Never hand out a version below one this database has already seen.
            self.clock.observe(high)

    @classmethod
    def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> "Store":
        return cls(path, **kwargs)

    # -- lifecycle

    def _prepare(self, *, seed: bool) -> None:
        names = set(self.db.table_names())
        if not names:
            create_schema(self.db, self.registry)
            with self.write():
                self._meta_set("db_id", _clock.uuid7(self._wall()))
                self._meta_set("created_at", self.now())
            if seed:
                from .seeds import seed_store

                seed_store(self)
            return
        app_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise SchemaError(f"{self.path}: not a bakestore database (application_id {app_id})")
        if schema_version(self.db) != SCHEMA_VERSION:
            migrate(self.db)

    def close(self) -> None:
        self.db.close()
        if self._write_lock_fd is not None:
            os.close(self._write_lock_fd)
            self._write_lock_fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_id(self) -> str:
        return self._meta_get("db_id") or ""

    @property
    def device_id(self) -> str:
        return self.clock.device_id

    def now(self) -> str:
        return format_timestamp(_dt.datetime.fromtimestamp(self._wall() / 1000, _dt.timezone.utc))

    # -- transactions

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        conn = self.db.conn
        if conn.in_transaction:
            yield self.db
            return
        if self._write_lock_fd is None:
            self._write_lock_fd = os.open(write_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        # Shared with every other writer, exclusive only against a restore's swap (restore.py).
        _flock(self._write_lock_fd, fcntl.LOCK_SH, WRITE_LOCK_TIMEOUT_S,
               f"{self.path}: a restore is swapping the database in; try again in a moment")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self._meta_set("hlc", self.clock.high_water)
                conn.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself fails (busy, disk full): never leave a transaction open
                # for the next write() to join silently.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_UN)

    def _meta_get(self, key: str) -> str | None:
        row = self.db.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', [key]).fetchone()
        return row[0] if row else None

    def _meta_set(self, key: str, value: str) -> None:
        self.db.execute('INSERT INTO "_bakestore_meta"(key, value) VALUES (?, ?) '
                        'ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value])

    # -- reading

    def spec(self, table: str) -> TableSpec:
        return self.registry[table]

    def count(self, table: str) -> int:
        spec = self.spec(table)
        return int(self.db.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {spec.name: self.count(spec.name) for spec in self.registry}

    def rows(self, table: str, *, where: str | None = None, params: Sequence[Any] | dict[str, Any] | None = None,
             order_by: str | None = None, limit: int | None = None, offset: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows of a table as dicts, ordered by primary key unless ``order_by`` says otherwise."""
        spec = self.spec(table)
        order = order_by or ", ".join(f'"{c}"' for c in spec.pk)
        yield from self.db.table(spec.name).rows_where(where, params or [], order_by=order, limit=limit,
                                                       offset=offset)

    def get(self, table: str, key: str) -> dict[str, Any]:
        """A row by id, or by natural key (``slug``-style text; ``a/b`` for multi-column keys)."""
        spec = self.spec(table)
        row_id = self.resolve(table, key)
        row = self.db.execute(f'SELECT * FROM "{spec.name}" WHERE id = ?', [row_id]).fetchone()
        if row is None:
            raise NotFoundError(f"{spec.name}: no row with id {row_id!r}")
        return dict(zip(spec.column_names, row))

    def resolve(self, table: str, key: str) -> str:
        """Turn an id or a natural key into an id; raises NotFoundError naming what was looked for."""
        spec = self.spec(table)
        if not spec.has_row_identity:
            raise NotFoundError(f"{spec.name}: rows of this table have no single id")
        found = self.db.execute(f'SELECT id FROM "{spec.name}" WHERE id = ?', [key]).fetchone()
        if found:
            return found[0]
        if spec.natural_key:
            parts = key.split("/") if len(spec.natural_key) > 1 else [key]
            if len(parts) == len(spec.natural_key):
                if len(spec.natural_key) > 1:
                    # Multi-column natural keys are (parent id or parent natural key, slug).
                    parts = [self._resolve_part(spec, c, p) for c, p in zip(spec.natural_key, parts)]
                clause = " AND ".join(f'"{c}" = ?' for c in spec.natural_key)
                found = self.db.execute(f'SELECT id FROM "{spec.name}" WHERE {clause}', parts).fetchone()
                if found:
                    return found[0]
            raise NotFoundError(f"{spec.name}: no row with id or {'/'.join(spec.natural_key)} {key!r}")
        raise NotFoundError(f"{spec.name}: no row with id {key!r}")

    def _resolve_part(self, spec: TableSpec, column: str, value: str) -> str:
        col = spec.column(column)
        if col.fk is not None:
            try:
                return self.resolve(col.fk.table, value)
            except NotFoundError:
                return value
        return value

    def natural_key_of(self, table: str, row: Mapping[str, Any]) -> str:
        """The text a person would use for this row in a URL: its natural key, else its id."""
        spec = self.spec(table)
        if spec.natural_key and all(row.get(c) is not None for c in spec.natural_key):
            if len(spec.natural_key) == 1:
                return str(row[spec.natural_key[0]])
            parts = []
            for c in spec.natural_key:
                col = spec.column(c)
                value = str(row[c])
                if col.fk is not None:
                    parent_spec = self.spec(col.fk.table)
                    parent = self.db.execute(f'SELECT * FROM "{parent_spec.name}" WHERE id = ?', [value]).fetchone()
                    if parent is not None:
                        value = self.natural_key_of(parent_spec.name, dict(zip(parent_spec.column_names, parent)))
                parts.append(value)
            return "/".join(parts)
        return str(row["id"])

    # -- writing

    def _check_columns(self, spec: TableSpec, data: Mapping[str, Any], record: str | None) -> None:
        for name in data:
            if not spec.has_column(name):
                raise UnknownColumnError(f"{spec.name}: unknown column {name!r}" + (f" (record {record})" if record else ""),
                                         table=spec.name, field=name, record=record)

    def _check_foreign_keys(self, spec: TableSpec, values: Mapping[str, Any], record: str | None) -> None:
        for fk in spec.foreign_keys:
            value = values.get(fk.column)
            if value is None:
                continue
            if fk.other_table == spec.name and value == values.get("id"):
                continue
            if not self.db.execute(f'SELECT 1 FROM "{fk.other_table}" WHERE id = ?', [value]).fetchone():
                suffix = f" (record {record})" if record else ""
                raise ForeignKeyError(f"{spec.name}.{fk.column}: no {fk.other_table} row with id {value!r}{suffix}",
                                      table=spec.name, field=fk.column, record=record)

    def _prepare_new(self, spec: TableSpec, data: Mapping[str, Any], now: str) -> dict[str, Any]:
        record = _record_label(data)
        self._check_columns(spec, data, record)
        incoming = dict(data)
        if spec.has_row_identity:
            incoming.setdefault("id", None)
            if incoming["id"] is None:
                incoming["id"] = _clock.uuid7(self._wall())
            if incoming.get("created_at") is None:
                incoming["created_at"] = now
            incoming["updated_at"] = now
            incoming["row_version"] = self.clock.now()
        # A new row's minted id means nothing to the person who wrote the input: label by theirs.
        values = validate_row(spec, incoming, record=record, label_from_data=False)
        self._check_foreign_keys(spec, values, record)
        return values

    def insert(self, table: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and insert one row; returns the stored row (with its id and version)."""
        return self.insert_many(table, [data])[0]

    create = insert

    def insert_many(self, table: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert many rows in one transaction: all of them or none."""
        return self._batch(self.spec(table), rows, self._insert_one)

    def _batch(self, spec: TableSpec, rows: Iterable[Mapping[str, Any]],
               one: Callable[[TableSpec, Mapping[str, Any], str], dict[str, Any]]) -> list[dict[str, Any]]:
        """Write rows one by one in one transaction; a failure names the row's position in the batch."""
        stored: list[dict[str, Any]] = []
        with self.write():
            now = self.now()
            for index, data in enumerate(rows):
                try:
                    stored.append(one(spec, data, now))
                except ValidationError as exc:
                    exc.index = index
                    raise
        return stored

    def _insert_one(self, spec: TableSpec, data: Mapping[str, Any], now: str) -> dict[str, Any]:
        values = self._prepare_new(spec, data, now)
        self._execute_insert(spec, values)
        return values

    def _execute_insert(self, spec: TableSpec, values: Mapping[str, Any], *, replace: bool = False) -> None:
        columns = ", ".join(f'"{c}"' for c in spec.column_names)
        marks = ", ".join("?" for _ in spec.column_names)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            self.db.execute(f'{verb} INTO "{spec.name}" ({columns}) VALUES ({marks})',
                            [values.get(c) for c in spec.column_names])
        except sqlite3.IntegrityError as exc:
            raise translate_integrity_error(spec, exc, values.get("id")) from None

    def upsert(self, table: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self.upsert_many(table, [data])[0]

    def upsert_many(self, table: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert rows, or update the ones whose id (or natural key) already exists; one transaction."""
        return self._batch(self.spec(table), rows, self._upsert_one)

    def _upsert_one(self, spec: TableSpec, data: Mapping[str, Any], now: str) -> dict[str, Any]:
        """Update the row with this id (or natural key) if it exists, else insert it."""
        existing_id = None
        if data.get("id") is not None:
            found = self.db.execute(f'SELECT id FROM "{spec.name}" WHERE id = ?', [str(data["id"]).lower()]).fetchone()
            existing_id = found[0] if found else None
        elif spec.natural_key and all(data.get(c) is not None for c in spec.natural_key):
            clause = " AND ".join(f'"{c}" = ?' for c in spec.natural_key)
            found = self.db.execute(f'SELECT id FROM "{spec.name}" WHERE {clause}',
                                    [data[c] for c in spec.natural_key]).fetchone()
            existing_id = found[0] if found else None
        if existing_id is None:
            return self._insert_one(spec, data, now)
        return self._update(spec, existing_id, {k: v for k, v in data.items() if k != "id"}, now)

    def update(self, table: str, key: str, changes: Mapping[str, Any], *,
               expected_version: str | None = None) -> dict[str, Any]:
        """Change some columns of one row (by id or natural key); returns the stored row.

        ``expected_version`` is optimistic concurrency for editors: if the row's version is no
        longer the one the caller read (someone else wrote it meanwhile), nothing is written and
        :class:`ConflictError` says so.
        """
        spec = self.spec(table)
        with self.write():
            return self._update(spec, self.resolve(table, key), changes, self.now(),
                                expected_version=expected_version)

    def _update(self, spec: TableSpec, row_id: str, changes: Mapping[str, Any], now: str, *,
                expected_version: str | None = None) -> dict[str, Any]:
        self._check_columns(spec, changes, row_id)
        if "id" in changes and str(changes["id"]).lower() != row_id:
            raise ValidationError(f"{spec.name}.id: the id of a row cannot change (record {row_id})",
                                  table=spec.name, field="id", record=row_id)
        # updated_at and row_version belong to the store: a row read with `bakestore rows` can be
        # edited and written back as it is, and the store stamps it afresh.
        changes = {k: v for k, v in changes.items() if k not in ("id", "updated_at", "row_version")}
        current = self.get(spec.name, row_id)
        if expected_version is not None and current["row_version"] != expected_version:
            raise ConflictError(f"{spec.name} {row_id} was changed by someone else since it was read "
                                f"(version {current['row_version']}, expected {expected_version}); nothing was saved")
        merged = {**current, **changes, "updated_at": now, "row_version": self.clock.now()}
        values = validate_row(spec, merged, record=row_id)
        self._check_foreign_keys(spec, values, row_id)
        assignments = ", ".join(f'"{c}" = ?' for c in spec.column_names if c != "id")
        try:
            self.db.execute(f'UPDATE "{spec.name}" SET {assignments} WHERE id = ?',
                            [values[c] for c in spec.column_names if c != "id"] + [row_id])
        except sqlite3.IntegrityError as exc:
            raise translate_integrity_error(spec, exc, row_id) from None
        return values

    def delete(self, table: str, key: str, *, dry_run: bool = False,
               confirm: Callable[[DeleteResult], bool] | None = None) -> DeleteResult:
        """Delete a row, following the registry's ON DELETE rules, and record tombstones.

        RESTRICT / NO ACTION references refuse the delete with the referencing rows named;
        CASCADE children are deleted too (each gets a tombstone); SET NULL children are updated
        (and get a new version), so every device learns about every change.

        ``dry_run`` returns what the delete would do (the same plan) and changes nothing;
        ``confirm`` is asked with that plan inside the write transaction, before anything
        changes: False cancels (:class:`CancelledError`), so what is deleted is what was shown.
        """
        spec = self.spec(table)
        if dry_run:
            conn = self.db.conn
            own = not conn.in_transaction
            if own:
                conn.execute("BEGIN")  # one snapshot for the whole plan
            try:
                row_id = self.resolve(table, key)
                return self._planned_delete(spec.name, row_id)[0]
            finally:
                if own and conn.in_transaction:
                    conn.execute("ROLLBACK")
        with self.write():
            row_id = self.resolve(table, key)
            result, doomed = self._planned_delete(spec.name, row_id)
            if confirm is not None and not confirm(result):
                raise CancelledError(f"delete of {spec.name} {row_id} cancelled; nothing was changed")
            now = self.now()
            for child_table, child_id, column in result.nulled:
                self.db.execute(f'UPDATE "{child_table}" SET "{column}" = NULL, updated_at = ?, row_version = ? '
                                f'WHERE id = ?', [now, self.clock.now(), child_id])
            order = {name: i for i, name in enumerate(self.registry.names)}
            for victim_table, victim_id in sorted(doomed, key=lambda k: -order[k[0]]):
                self.db.execute('INSERT OR REPLACE INTO "_tombstones"(table_name, row_id, row_version, deleted_at) '
                                'VALUES (?, ?, ?, ?)', [victim_table, victim_id, self.clock.now(), now])
                self.db.execute(f'DELETE FROM "{victim_table}" WHERE id = ?', [victim_id])
            return result

    def _planned_delete(self, table: str, row_id: str) -> tuple[DeleteResult, dict[tuple[str, str], None]]:
        result = DeleteResult(table, row_id)
        doomed: dict[tuple[str, str], None] = {}
        self._plan_delete(table, row_id, doomed, result)
        result.cascaded = [k for k in doomed if k != (table, row_id)]
        # A row that is deleted anyway is not also "cleared".
        result.nulled = [n for n in result.nulled if (n[0], n[1]) not in doomed]
        return result, doomed

    def _plan_delete(self, table: str, row_id: str, doomed: dict[tuple[str, str], None],
                     result: DeleteResult) -> None:
        if (table, row_id) in doomed:
            return
        doomed[(table, row_id)] = None
        for fk in self.registry.references_to(table):
            children = [r[0] for r in self.db.execute(
                f'SELECT id FROM "{fk.table}" WHERE "{fk.column}" = ?', [row_id])]
            for child_id in children:
                if fk.on_delete == "CASCADE":
                    self._plan_delete(fk.table, child_id, doomed, result)
                elif fk.on_delete == "SET NULL":
                    result.nulled.append((fk.table, child_id, fk.column))
        # RESTRICT / NO ACTION: refuse if any referencing row survives the delete.
        for fk in self.registry.references_to(table):
            if fk.on_delete in ("RESTRICT", "NO ACTION"):
                blockers = [r[0] for r in self.db.execute(
                    f'SELECT id FROM "{fk.table}" WHERE "{fk.column}" = ?', [row_id])
                    if (fk.table, r[0]) not in doomed]
                if blockers:
                    raise DeleteRestrictedError(
                        f"{table} {row_id} is still used by {len(blockers)} {fk.table} row(s) "
                        f"via {fk.column} (e.g. {blockers[0]}); delete or re-point those first")

    # -- capabilities (delegated one layer up; imported lazily so the ground floor never imports
    #    the floors above it)

    def export(self, target: str | os.PathLike[str], *, name: str | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> "ExportResult":
        """Write an export folder ``target/bakestore-export-<time>`` (or ``target/name``)."""
        from .exports import export_database, export_name

        return export_database(self.db, Path(target), db_id=self.db_id, registry=self.registry,
                               name=name or export_name(), progress=progress)

    def restore(self, source: "RowSource | str | os.PathLike[str]", **kwargs: Any) -> "RestoreResult":
        """Replace the content with an export folder, manifest, ``.db`` file or RowSource.

        Never deletes in place: see :func:`bakestore.restore.replace_contents` for the steps.
        """
        from .restore import replace_contents

        return replace_contents(self, source, **kwargs)

    def merge(self, source: "RowSource | str | os.PathLike[str]", **kwargs: Any) -> "RestoreResult":
        """Upsert a source into this store, all or nothing (newest row version wins)."""
        from .restore import merge

        return merge(self, source, **kwargs)

    def undo(self, **kwargs: Any) -> "RestoreResult":
        """Swap the newest restore point back in (audited, and itself undoable)."""
        from .restore import undo

        return undo(self, **kwargs)

    def reset(self, **kwargs: Any) -> "RestoreResult":
        """Empty, seeded content through the restore path (audited, undoable)."""
        from .restore import reset

        return reset(self, **kwargs)

    def watch(self, export_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> "Watcher":
        """Auto-export on every change, in background threads of this process; call ``stop()``.

        See :class:`bakestore.watch.Watcher` for the options (debounce, poll, retention).
        """
        from .watch import start_watch

        return start_watch(self.path, export_dir, **kwargs)

    def restore_points(self) -> list[Path]:
        """Restore points of this database, newest first."""
        from .restore import list_restore_points

        return list_restore_points(self.path)

    # -- health

    def check(self) -> HealthReport:
        """What ``bakestore doctor`` prints: version gate, integrity, foreign keys, schema drift, settings."""
        checks: list[Check] = []
        version = sqlite3.sqlite_version
        if wal_reset_bug_fixed():
            checks.append(Check("sqlite_version", "ok", f"SQLite {version} via {sqlite3.__name__}"))
        else:
            checks.append(Check("sqlite_version", "warn",
                                f"SQLite {version} via {sqlite3.__name__} has the WAL-reset bug "
                                "(fixed in 3.51.3); install pysqlite3"))
        integrity = [r[0] for r in self.db.execute("PRAGMA integrity_check")]
        checks.append(Check("integrity_check", "ok" if integrity == ["ok"] else "fail", "; ".join(integrity[:5])))
        violations = list(self.db.execute("PRAGMA foreign_key_check"))
        checks.append(Check("foreign_key_check", "fail" if violations else "ok",
                            f"{len(violations)} violation(s)" + (f", first in {violations[0][0]}" if violations else "")))
        problems = check_schema(self.db, self.registry)
        checks.append(Check("registry_vs_schema", "fail" if problems else "ok",
                            "; ".join(map(str, problems[:5])) or f"{len(self.registry)} tables match"))
        mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
        checks.append(Check("journal_mode", "ok" if mode == "wal" else "warn", mode))
        sync = self.db.execute("PRAGMA synchronous").fetchone()[0]
        checks.append(Check("synchronous", "ok" if sync >= 2 else "warn", {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync))))
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
        checks.append(Check("page_size", "ok", str(page_size)))
        checks.append(Check("schema_version", "ok", str(schema_version(self.db))))
        return HealthReport(str(self.path), checks)


def bulk_insert(db: Any, spec: TableSpec, rows: Iterable[Mapping[str, Any]],
                chunk_size: int = 10_000) -> int:
    """Insert complete rows (all columns present) with ``executemany`` in chunks; returns the count.

    No validation here: callers validate first (restore) or generate valid rows (demo). It runs
    inside the caller's transaction.
    """
    columns = spec.column_names
    sql = (f'INSERT INTO "{spec.name}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) '
           f'VALUES ({", ".join("?" for _ in columns)})')
    total = 0
    batch: list[list[Any]] = []
    for row in rows:
        batch.append([row.get(c) for c in columns])
        if len(batch) >= chunk_size:
            db.conn.executemany(sql, batch)
            total += len(batch)
            batch = []
    if batch:
        db.conn.executemany(sql, batch)
        total += len(batch)
    return total

