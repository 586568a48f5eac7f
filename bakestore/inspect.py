"""What Datasette needs to know about bakestore, generated from the registry.

Three separate things, kept apart the way Datasette 0.65 keeps them:

* **metadata** (:func:`build_metadata`): title, description, source, license and, per table and
  column, descriptions and units. It is written to ``datasette-metadata.yml`` at the top of the
  repository by ``bakestore metadata`` (``--check`` fails when the file has drifted from the
  registry) and is rebuilt in-process by ``bakestore inspect`` / ``bakestore ui``.
* **canned queries** (:func:`audit_queries`, :func:`case_queries`): Datasette 0.65 reads them from
  ``databases.<name>.queries`` in the metadata it is started with; :func:`runtime_metadata` adds
  them for the audit database and each forensics case database being served.
* **settings** (:data:`SETTINGS`): passed as ``settings=`` (the ``--setting`` of ``datasette serve``),
  never mixed into the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from .registry import REGISTRY, Column, Registry, TableSpec

#: Names under which the served databases appear in Datasette.
LIVE_DB = "bakestore"
AUDIT_DB = "audit_log"
CASE_PREFIX = "case_"

METADATA_FILE = "datasette-metadata.yml"

#: Datasette settings: arbitrary SQL stays enabled for reading, with a time limit.
SETTINGS: dict[str, Any] = {
    "sql_time_limit_ms": 2000,
    "max_returned_rows": 2000,
    "default_page_size": 50,
    "allow_download": False,
    "suggest_facets": False,
    "allow_csv_stream": True,
}

_HEADER = ("# Generated from bakestore's registry by `bakestore metadata`; do not edit by hand.\n"
           "# A test (tests/test_datasette.py) and `bakestore metadata --check` fail when it drifts.\n"
           "# Canned queries and settings are not in this file: see bakestore/inspect.py.\n")

_KIND_TEXT = {
    "uuid": "UUID text",
    "text": "text",
    "integer": "integer",
    "real": "number",
    "boolean": "boolean stored as 0/1",
    "date": "date, YYYY-MM-DD",
    "datetime": "UTC timestamp, YYYY-MM-DDTHH:MM:SS.mmmZ",
    "json": "JSON text",
}

_SYSTEM_DOCS = {
    "id": "Row id: a time-ordered UUIDv7, set by the store",
    "created_at": "When the row was created (set by the store)",
    "updated_at": "When the row was last changed (set by the store on every write)",
    "row_version": "Sync version <ms>-<counter>-<device id> from the hybrid logical clock; bumped on every write",
}

#: Pint units for columns whose name says what they measure (Datasette shows and filters by them).
_UNIT_SUFFIXES = (("_minutes", "minute"), ("_pct", "percent"), ("_percentage", "percent"))

AUDIT_COLUMNS: dict[str, str] = {
    "id": "Record id (UUIDv7)",
    "at": "When the operation started (UTC)",
    "operation": "restore, undo, reset, merge, sync, legacy import, …",
    "outcome": "done, refused or failed (started if the process died mid-way)",
    "reason": "Why it was refused or failed",
    "db_path": "The live database the operation was run against",
    "source": "What the data came from (export folder, database file, …)",
    "source_sha256": "Checksum of the source",
    "restore_point": "The restore point taken before the swap (undo returns to it)",
    "counts_before": "Rows per table before (JSON)",
    "counts_after": "Rows per table after (JSON)",
    "details": "More details (JSON)",
    "pid": "Process id of the bakestore process",
    "user": "Operating-system user",
    "cwd": "Working directory of the process",
    "argv": "Command line of the process (JSON)",
    "bakestore_version": "bakestore version that did it",
    "duration_ms": "How long it took",
}


def column_description(spec: TableSpec, column: Column) -> str:
    """A one-line description of a column, from its doc and the registry's facts about it."""
    if column.name in _SYSTEM_DOCS and spec.has_row_identity:
        return _SYSTEM_DOCS[column.name]
    parts: list[str] = []
    if column.doc:
        parts.append(column.doc[0].upper() + column.doc[1:])
    facts = [_KIND_TEXT[column.kind]]
    if column.fk is not None:
        facts = [f"references {column.fk.table} (ON DELETE {column.fk.on_delete})"]
    if column.choices is not None:
        facts.append("one of " + ", ".join(str(c) for c in column.choices))
    if column.max_length is not None:
        facts.append(f"at most {column.max_length} characters")
    if column.unique:
        facts.append("unique")
    if spec.natural_key and column.name in spec.natural_key:
        facts.append("natural key")
    if column.required:
        facts.append("required")
    elif column.nullable:
        facts.append("optional")
    parts.append("; ".join(facts))
    return ". ".join(parts)


def column_unit(column: Column) -> str | None:
    if column.kind not in ("integer", "real"):
        return None
    for suffix, unit in _UNIT_SUFFIXES:
        if column.name.endswith(suffix):
            return unit
    return None


def table_metadata(spec: TableSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"description": spec.description,
                           "columns": {c.name: column_description(spec, c) for c in spec.columns}}
    units = {c.name: u for c in spec.columns if (u := column_unit(c))}
    if units:
        out["units"] = units
    if spec.natural_key:
        out["sort"] = spec.natural_key[0]
    return out


def build_metadata(registry: Registry = REGISTRY) -> dict[str, Any]:
    """The metadata document (what ``datasette-metadata.yml`` holds), generated from the registry."""
    return {
        "title": "bakestore",
        "description": ("A home baker's planning data, read-only: every table of the live database, the "
                        "audit log of destructive operations and forensic case files."),
        "license": "Apache-2.0",
        "license_url": "https://www.apache.org/licenses/LICENSE-2.0",
        "source": "bakestore registry (bakestore/models)",
        "databases": {
            LIVE_DB: {
                "description": "The live bakestore database, opened read-only (mode=ro).",
                "tables": {spec.name: table_metadata(spec) for spec in registry},
            },
            AUDIT_DB: {
                "description": "Every destructive operation (restore, undo, reset, merge, sync, legacy import), "
                               "including refusals.",
                "tables": {"audit_log": {"description": "One record per destructive operation.",
                                         "sort_desc": "at", "columns": dict(AUDIT_COLUMNS)}},
            },
        },
    }


def metadata_yaml(registry: Registry = REGISTRY) -> str:
    return _HEADER + yaml.safe_dump(build_metadata(registry), sort_keys=False, allow_unicode=True, width=110)


def write_metadata(path: str | Path, registry: Registry = REGISTRY) -> bool:
    """Write the metadata file; returns True if it changed."""
    path = Path(path)
    text = metadata_yaml(registry)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def metadata_is_current(path: str | Path, registry: Registry = REGISTRY) -> bool:
    path = Path(path)
    return path.exists() and path.read_text(encoding="utf-8") == metadata_yaml(registry)


# --------------------------------------------------------------------------- canned queries


def audit_queries() -> dict[str, dict[str, Any]]:
    """Canned queries of the audit database (read-only SQL)."""
    return {
        "recent_operations": {
            "title": "Recent operations, newest first",
            "sql": ("select at, operation, outcome, reason, source, restore_point, user, duration_ms\n"
                    "from audit_log order by at desc, id desc limit 200"),
        },
        "refusals_and_failures": {
            "title": "Refused and failed operations",
            "sql": ("select at, operation, outcome, reason, source\nfrom audit_log\n"
                    "where outcome in ('refused', 'failed') order by at desc"),
        },
        "operations_by_kind": {
            "title": "Operations per kind and outcome",
            "sql": ("select operation, outcome, count(*) as operations, max(at) as last_at\n"
                    "from audit_log group by operation, outcome order by operation, outcome"),
        },
    }


def case_queries() -> dict[str, dict[str, Any]]:
    """Canned queries of a forensics case database (``case.db``)."""
    free = "kind in ('freelist_trunk', 'freelist_leaf')"
    return {
        "timeline": {
            "title": "Timeline: clusters of row times per table and column",
            "sql": ('select table_name, column_name, state, cluster, start, "end", rows, primary_column\n'
                    'from timeline order by start, table_name, column_name'),
        },
        "free_page_ratio": {
            "title": "Free pages and their share of the file",
            "sql": (f"select count(*) as pages, sum({free}) as free_pages,\n"
                    f"  round(1.0 * sum({free}) / max(count(*), 1), 4) as free_ratio,\n"
                    f"  sum({free} and zeroed) as free_pages_zeroed\nfrom pages"),
        },
        "recovered_rows_per_table": {
            "title": "Recovered rows per table and source",
            "sql": ("select table_name, source, count(*) as rows, round(avg(confidence), 2) as avg_confidence\n"
                    "from recovered_rows group by table_name, source order by rows desc, table_name"),
        },
        "findings": {
            "title": "Findings",
            "sql": "select severity, kind, title, detail from findings order by id",
        },
    }


def case_db_name(case_dir: str | Path, taken: Iterable[str] = ()) -> str:
    """A Datasette database name for a case folder: ``case_<folder name>``, made unique."""
    stem = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in Path(case_dir).name) or "case"
    name = CASE_PREFIX + stem
    taken = set(taken)
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def runtime_metadata(*, audit: bool = True, cases: Iterable[str] = (),
                     plugin_config: dict[str, Any] | None = None,
                     registry: Registry = REGISTRY) -> dict[str, Any]:
    """The metadata Datasette is started with: the generated metadata plus canned queries
    (where 0.65 expects them: ``databases.<name>.queries``) and bakestore's plugin configuration."""
    meta = build_metadata(registry)
    databases = meta["databases"]
    if audit:
        databases[AUDIT_DB]["queries"] = audit_queries()
    else:
        databases.pop(AUDIT_DB)
    for name in cases:
        databases[name] = {"description": "A forensics case database (report tables, immutable).",
                           "queries": case_queries()}
    if plugin_config is not None:
        meta["plugins"] = {"bakestore": plugin_config}
    return meta


__all__ = ["AUDIT_DB", "CASE_PREFIX", "LIVE_DB", "METADATA_FILE", "SETTINGS", "audit_queries", "build_metadata",
           "case_db_name", "case_queries", "column_description", "metadata_is_current", "metadata_yaml",
           "runtime_metadata", "write_metadata"]
