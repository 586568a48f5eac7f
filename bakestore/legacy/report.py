"""The import report: per upstream entity, what was read, imported, kept or refused, and why.

The upstream importer skipped records whose references did not resolve "with no error and no
count" (formats page §4.2 S1) and committed partial imports (S11). Here every record read is
accounted for in exactly one bucket — imported, already in the store (merge), folded into
another entity's row, or refused with a reason — and the report says so per entity. The report
travels with the import: it is printed by the CLI and stored in the audit record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: How many missing keys a one-line refusal message lists before saying "+N more".
LIST_LIMIT = 10


@dataclass
class Problem:
    """Why one upstream record was refused.

    ``kind`` is one of ``invalid`` (a value), ``missing`` (a reference to something neither the
    file nor, in merge mode, the store has), ``ambiguous`` (a reference that matches several rows),
    ``duplicate``, ``dependent`` (it needs a record that was itself refused), ``unsupported`` (a
    shape bakestore cannot represent) or ``conflict``.
    """

    entity: str
    index: int | None
    label: str | None
    field: str | None
    reason: str
    kind: str = "invalid"
    target: str | None = None
    key: str | None = None
    #: Where the record sits, e.g. ``recipes[2].ingredients[0]`` (defaults to ``entity[index]``).
    place: str | None = None

    def where(self, file_label: str) -> str:
        place = self.place or (self.entity if self.index is None else f"{self.entity}[{self.index}]")
        if self.label:
            place += f" ({self.label})"
        return f"{file_label}: {place}"

    def message(self, file_label: str) -> str:
        field_part = f" field {self.field}" if self.field else ""
        return f"{self.where(file_label)}{field_part}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "index": self.index, "label": self.label, "field": self.field,
                "reason": self.reason, "kind": self.kind, "target": self.target, "key": self.key,
                "place": self.place}


@dataclass
class EntityReport:
    """Counts for one upstream entity (a top-level array, a nested array, or an entity file)."""

    entity: str
    table: str | None
    read: int = 0
    imported: int = 0
    existing: int = 0
    folded: int = 0
    refused: list[Problem] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    unused_keys: Counter[str] = field(default_factory=Counter)

    @property
    def accounted(self) -> int:
        return self.imported + self.existing + self.folded + len(self.refused)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "table": self.table, "read": self.read, "imported": self.imported,
            "existing": self.existing, "folded": self.folded, "refused": len(self.refused),
            "refusals": [p.as_dict() for p in self.refused],
            "notes": dict(self.notes), "keys_not_imported": dict(self.unused_keys),
        }


@dataclass
class ImportReport:
    """Everything a person needs to trust (or reject) a legacy import."""

    path: str
    label: str
    format: str
    sha256: str | None = None
    mode: str = "restore"
    entities: dict[str, EntityReport] = field(default_factory=dict)
    extra_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    skip_invalid: bool = False

    def entity(self, name: str, table: str | None = None) -> EntityReport:
        report = self.entities.get(name)
        if report is None:
            report = self.entities[name] = EntityReport(name, table)
        elif table and report.table is None:
            report.table = table
        return report

    @property
    def problems(self) -> list[Problem]:
        return [p for e in self.entities.values() for p in e.refused]

    @property
    def total_read(self) -> int:
        return sum(e.read for e in self.entities.values())

    @property
    def total_rows(self) -> int:
        return sum(self.table_rows.values())

    def missing_references(self) -> dict[str, list[str]]:
        """Missing keys per target entity, in first-seen order (for "name the missing slugs")."""
        missing: dict[str, dict[str, None]] = {}
        for problem in self.problems:
            if problem.kind == "missing" and problem.target and problem.key is not None:
                missing.setdefault(problem.target, {})[problem.key] = None
        return {target: list(keys) for target, keys in missing.items()}

    def refusal_message(self) -> str:
        """One line: the missing references (if any), the first problem, and how many more."""
        problems = self.problems
        parts: list[str] = []
        for target, keys in self.missing_references().items():
            shown = ", ".join(keys[:LIST_LIMIT])
            more = f" (+{len(keys) - LIST_LIMIT} more)" if len(keys) > LIST_LIMIT else ""
            hint = " (use --merge to resolve them against the store's rows)" if self.mode == "restore" else ""
            scope = "not in the file" if self.mode == "restore" else "in neither the file nor the store"
            parts.append(f"{self.label}: {len(keys)} {target} referenced but {scope}: {shown}{more}{hint}")
        ambiguous: dict[tuple[str, str], list[str]] = {}
        for problem in problems:
            if problem.kind == "ambiguous" and problem.target and problem.key is not None:
                place = problem.place or (problem.entity if problem.index is None
                                          else f"{problem.entity}[{problem.index}]")
                ambiguous.setdefault((problem.target, problem.key), []).append(place)
        for (target, key), places in ambiguous.items():
            if len(places) < 2:
                continue
            shown = ", ".join(places[:LIST_LIMIT])
            more = f" (+{len(places) - LIST_LIMIT} more)" if len(places) > LIST_LIMIT else ""
            parts.append(f"{self.label}: {len(places)} records refer to {key!r} ({target}), which matches several "
                         f"rows: {shown}{more}")
        first = problems[0].message(self.label)
        further = len(problems) - 1
        tail = f" (+{further} further problem{'s' if further != 1 else ''}; see the report)" if further else ""
        if parts:
            return "; ".join(parts) + f"; first: {first}{tail}"
        return f"{first}{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "format": self.format, "sha256": self.sha256, "mode": self.mode,
            "skip_invalid": self.skip_invalid,
            "entities": [e.as_dict() for e in self.entities.values()],
            "extra_top_level_keys": list(self.extra_keys), "warnings": list(self.warnings),
            "rows_per_table": dict(self.table_rows),
            "totals": {"read": self.total_read, "rows": self.total_rows,
                       "refused": len(self.problems)},
        }

    def format_text(self, *, max_problems: int | None = None) -> str:
        """The per-entity table the CLI prints, and the refused records (all, or the first N)."""
        lines = [f"{self.label}: {self.format} ({self.mode})"]
        width = max([len(e) for e in self.entities] + [6])
        lines.append(f"  {'entity':<{width}}  {'read':>6} {'imported':>8} {'existing':>8} {'folded':>6} {'refused':>7}")
        for rep in self.entities.values():
            lines.append(f"  {rep.entity:<{width}}  {rep.read:>6} {rep.imported:>8} {rep.existing:>8} "
                         f"{rep.folded:>6} {len(rep.refused):>7}")
        for rep in self.entities.values():
            for note, count in rep.notes.items():
                lines.append(f"  note: {rep.entity}: {note} ({count}x)")
            for key, count in rep.unused_keys.items():
                lines.append(f"  note: {rep.entity}: key {key!r} not imported ({count}x)")
        if self.extra_keys:
            lines.append(f"  note: extra top-level keys ignored: {', '.join(self.extra_keys)}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        problems = self.problems
        if problems:
            verb = "skipped" if self.skip_invalid else "refused"
            lines.append(f"  {len(problems)} record(s) {verb}:")
            for problem in problems[:max_problems]:
                lines.append(f"    - {problem.message(self.label)}")
            if max_problems is not None and len(problems) > max_problems:
                lines.append(f"    … and {len(problems) - max_problems} more (--json lists them all)")
        return "\n".join(lines)


__all__ = ["EntityReport", "ImportReport", "Problem"]
