"""The audit log: every destructive operation, done, refused or failed, in its own database file.

The upstream incident left no trace of what wiped the data. bakestore writes one record per
restore, undo, reset, merge, sync and legacy import, including refusals, into
``<db>.audit.db`` next to the live database: a separate file, so a swap of the live database's
content can never rewrite its own history. Each record says who (pid, user, cwd, argv), what
(operation, source and its checksum, counts per table before and after, the restore point) and
how it ended (``done`` / ``refused`` / ``failed`` with the reason).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from ._version import __version__
from .clock import uuid7
from .models.base import format_timestamp
from .paths import audit_db_path
from .sqlite import sqlite3

log = logging.getLogger("bakestore.audit")

AUDIT_TABLE = "audit_log"
_COLUMNS = {
    "id": str, "at": str, "operation": str, "outcome": str, "reason": str, "db_path": str,
    "source": str, "source_sha256": str, "restore_point": str, "counts_before": str, "counts_after": str,
    "details": str, "pid": int, "user": str, "cwd": str, "argv": str, "bakestore_version": str,
    "duration_ms": int,
}


def audit_path_for(db_path: str | os.PathLike[str]) -> Path:
    return audit_db_path(Path(db_path))


@dataclass
class AuditRecord:
    operation: str
    db_path: str
    outcome: str = "started"
    reason: str | None = None
    source: str | None = None
    source_sha256: str | None = None
    restore_point: str | None = None
    counts_before: dict[str, int] | None = None
    counts_after: dict[str, int] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=uuid7)
    at: str = field(default_factory=lambda: format_timestamp(_dt.datetime.now(_dt.timezone.utc)))
    duration_ms: int | None = None

    def as_row(self) -> dict[str, Any]:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        return {
            "id": self.id, "at": self.at, "operation": self.operation, "outcome": self.outcome,
            "reason": self.reason, "db_path": self.db_path, "source": self.source,
            "source_sha256": self.source_sha256, "restore_point": self.restore_point,
            "counts_before": json.dumps(self.counts_before, sort_keys=True) if self.counts_before is not None else None,
            "counts_after": json.dumps(self.counts_after, sort_keys=True) if self.counts_after is not None else None,
            "details": json.dumps(self.details, sort_keys=True, default=str),
            "pid": os.getpid(), "user": user, "cwd": os.getcwd(), "argv": json.dumps(sys.argv),
            "bakestore_version": __version__, "duration_ms": self.duration_ms,
        }


def _open(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=5.0)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA busy_timeout = 5000")
    with db.ensure_autocommit_on():
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    if AUDIT_TABLE not in db.table_names():
        db.table(AUDIT_TABLE).create(_COLUMNS, pk="id", not_null={"at", "operation", "outcome", "db_path"},
                               if_not_exists=True)
        db.table(AUDIT_TABLE).create_index(["at"], if_not_exists=True)
    return db


def write(db_path: str | os.PathLike[str], record: AuditRecord) -> str:
    """Append (or finish) a record; returns its id. Also logs one line."""
    db = _open(audit_path_for(db_path))
    try:
        with db.atomic():
            db.table(AUDIT_TABLE).upsert(record.as_row(), pk="id")
    finally:
        db.close()
    log.info("%s %s: %s%s", record.operation, record.outcome, record.source or "-",
             f" ({record.reason})" if record.reason else "")
    return record.id


def read(db_path: str | os.PathLike[str], *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Audit records, newest first, with JSON fields decoded."""
    path = audit_path_for(db_path)
    if not path.exists():
        return
    db = _open(path)
    try:
        # Ties within one millisecond go by insertion order (rowid), not by the random part of the id.
        for row in db[AUDIT_TABLE].rows_where(order_by="at desc, rowid desc", limit=limit):
            for key in ("counts_before", "counts_after", "details", "argv"):
                if row.get(key):
                    row[key] = json.loads(row[key])
            yield row
    finally:
        db.close()
