"""Row sources: every way data comes into a store, seen as "validated rows per registry table".

An export folder, another bakestore ``.db`` file, an upstream BakeTracker file and a sync merge
are all row sources. One pipeline (``bakestore.restore``) takes any of them through the same
steps — validate everything, build a fresh file, verify, restore point, atomic swap, audit — so
a new format is a new source, never a new way of writing to the live database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, runtime_checkable


@runtime_checkable
class RowSource(Protocol):
    """What the restore/merge pipeline needs from a source of rows."""

    #: A one-line description for messages and the audit log (e.g. "export folder /x/2026-…").
    label: str

    def verify(self) -> None:
        """Check the source's own integrity (manifest, checksums, counts); raise SourceError."""

    def checksum(self) -> str | None:
        """A sha256 identifying the source's content, for the audit record."""

    def tables(self) -> list[str]:
        """The registry tables this source holds rows for (tables it leaves out are empty)."""

    def declared_counts(self) -> dict[str, int] | None:
        """Row counts the source claims (a manifest's), compared with what was read."""

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(location, row) pairs; location names file and line/record for error messages."""


@dataclass
class MemorySource:
    """Rows already in memory, e.g. translated from an upstream BakeTracker file.

    Rows must be complete registry rows (id, created_at, updated_at, row_version included).
    """

    label: str
    rows_by_table: dict[str, list[dict[str, Any]]]
    sha256: str | None = None
    locations: dict[str, list[str]] = field(default_factory=dict)

    def verify(self) -> None:
        return None

    def checksum(self) -> str | None:
        return self.sha256

    def tables(self) -> list[str]:
        return list(self.rows_by_table)

    def declared_counts(self) -> dict[str, int] | None:
        return {t: len(r) for t, r in self.rows_by_table.items()}

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        where = self.locations.get(table)
        for i, row in enumerate(self.rows_by_table.get(table, [])):
            yield (where[i] if where else f"{self.label}: {table}[{i}]"), row
