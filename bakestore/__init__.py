"""bakestore: a safe local-first store for a home baker's planning data.

The public API, kept small and explicit. Read the house from the ground up:
``models`` → ``registry`` → ``store``; then the capabilities (exports/restore, legacy, forensics,
watch/sync); then ``cli`` and the Datasette plugin / UI on top.
"""

from __future__ import annotations

from .errors import (
    BakestoreError,
    CancelledError,
    ConfigurationError,
    ConflictError,
    ConstraintError,
    DeleteRestrictedError,
    ExportError,
    ForeignKeyError,
    ForensicsError,
    LegacyFormatError,
    LockedError,
    NotFoundError,
    RestoreError,
    SchemaError,
    ShrinkRefusedError,
    SourceError,
    SQLiteVersionError,
    SyncError,
    UIError,
    UnknownColumnError,
    UnknownTableError,
    ValidationError,
    WatchError,
)
from .registry import REGISTRY, Registry, TableSpec
from .store import DeleteResult, HealthReport, Store

from ._version import __version__  # noqa: E402

__all__ = [
    "REGISTRY",
    "BakestoreError",
    "CancelledError",
    "ConfigurationError",
    "ConflictError",
    "ConstraintError",
    "DeleteRestrictedError",
    "DeleteResult",
    "ExportError",
    "ForeignKeyError",
    "ForensicsError",
    "HealthReport",
    "LegacyFormatError",
    "LockedError",
    "NotFoundError",
    "Registry",
    "RestoreError",
    "SQLiteVersionError",
    "SchemaError",
    "ShrinkRefusedError",
    "SourceError",
    "Store",
    "SyncError",
    "TableSpec",
    "UIError",
    "UnknownColumnError",
    "UnknownTableError",
    "ValidationError",
    "WatchError",
    "__version__",
]
