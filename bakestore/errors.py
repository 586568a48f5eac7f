"""The one exception root of bakestore and its specific subclasses.

Every failure that a user can cause or meet is a :class:`BakestoreError`. The CLI translates
them into a one-line message and exit code 1 in exactly one place (``bakestore.cli``); library
callers catch the subclass they care about. Messages name the file, record and field involved,
because "import failed" is how the upstream app lost its user's data without anyone noticing.
"""

from __future__ import annotations


class BakestoreError(Exception):
    """Root of every error bakestore raises on purpose."""


class ConfigurationError(BakestoreError):
    """A location, device id or setting could not be resolved (e.g. the default DB under pytest)."""


class SQLiteVersionError(BakestoreError):
    """The loaded SQLite library is too old or two SQLite libraries were loaded in one process."""


class SchemaError(BakestoreError):
    """The database schema does not match the registry, or a migration is missing."""


class UnknownTableError(BakestoreError):
    """A table name that the registry does not know."""


class ValidationError(BakestoreError):
    """A row failed validation against its model. ``where`` says table/record/field."""

    def __init__(self, message: str, *, table: str | None = None, field: str | None = None,
                 record: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.field = field
        self.record = record
        #: Position of the failing row in a batch write (0-based), when the write was a batch.
        self.index: int | None = None


class UnknownColumnError(ValidationError):
    """A column name that the table does not have."""


class ForeignKeyError(ValidationError):
    """A foreign key points at a row that does not exist."""


class ConstraintError(ValidationError):
    """A UNIQUE or CHECK rule of the database refused the row."""


class NotFoundError(BakestoreError):
    """No row with that id or natural key."""


class ConflictError(BakestoreError):
    """The row changed (another process, a sync) since the caller read it; nothing was written."""


class DeleteRestrictedError(BakestoreError):
    """A delete was refused because other rows still reference the row (ON DELETE RESTRICT)."""


class SourceError(BakestoreError):
    """An export folder, database file or legacy file cannot be used as a restore/merge source."""


class ShrinkRefusedError(BakestoreError):
    """A restore or merge would empty tables or lose too many rows; pass allow_shrink to force."""


class RestoreError(BakestoreError):
    """A restore, undo or reset failed; the live database was left as it was."""


class CancelledError(RestoreError):
    """The person declined the confirmation; nothing was changed."""


class LockedError(BakestoreError):
    """Another bakestore operation holds the store's lock file."""


class ExportError(BakestoreError):
    """Writing an export failed; no partial export was left behind."""


class LegacyFormatError(SourceError):
    """An upstream BakeTracker file is not in a format bakestore can read, or has refused records."""


class ForensicsError(BakestoreError):
    """The forensic analysis could not start (missing file, unreadable case folder)."""


class SyncError(BakestoreError):
    """A sync folder is unusable (contains the live DB, duplicate device id, schema mismatch)."""


class WatchError(BakestoreError):
    """The watcher could not start or had to stop."""


class UIError(BakestoreError):
    """The web UI could not start."""


__all__ = [name for name in dir() if name.endswith("Error")]
