"""Import the upstream BakeTracker backups (v4 single-file JSON, coordinated backup folders).

A legacy import is a restore (or merge) whose source is translated first: :func:`translate`
detects the format, verifies it, resolves every upstream reference style to bakestore ids and
reports every record; :func:`import_legacy` hands the result to the restore/merge pipeline.
See ``docs/legacy-import.md`` for the formats, value rules and refusals.
"""

from __future__ import annotations

from .detect import LegacyInput, detect
from .importer import OPERATION, LegacyTranslation, apply, empty_preview_store, import_legacy, prepare, translate
from .report import EntityReport, ImportReport, Problem

__all__ = [
    "OPERATION",
    "EntityReport",
    "ImportReport",
    "LegacyInput",
    "LegacyTranslation",
    "Problem",
    "apply",
    "detect",
    "empty_preview_store",
    "import_legacy",
    "prepare",
    "translate",
]
