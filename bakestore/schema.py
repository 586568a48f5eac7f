"""DDL from the registry, the schema version in ``PRAGMA user_version``, and migrations.

The registry's models are the only source: ``create_schema`` writes every table (STRICT, with its
foreign keys, ON DELETE rules, UNIQUE and CHECK rules, indexes) and ``check_schema`` compares a
database with the registry using sqlite-utils' introspection, so drift in either direction shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlite_utils

from .errors import SchemaError
from .registry import REGISTRY, Column, Registry, TableSpec

#: Bump when the registry's tables change, and add a migration below.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of every bakestore file ("BAKE"), so tools and forensics know it.
APPLICATION_ID = 0x42414B45


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


_HEX = "[0-9a-f]"
_UUID_GLOB = "-".join(_HEX * n for n in (8, 4, 4, 4, 12))
_VERSION_GLOB = "[0-9]" * 13 + "-" + "[0-9]" * 5 + "-" + _HEX * 32
_REAL_MAX = "1.7976931348623157e308"


def format_checks(column: Column) -> list[str]:
    """CHECK rules that make SQLite itself enforce each column kind's stored format.

    The models enforce the same rules on every API write; these make them hold for any writer
    (Datasette, the sqlite3 shell) and let a restore validate a million rows at C speed inside
    the fresh file, with the model producing the readable message when one fails.
    """
    q = _quote(column.name)
    checks: list[str] = []
    if column.kind == "uuid":
        checks.append(f"{q} GLOB '{_UUID_GLOB}'")
    elif column.kind == "datetime":
        checks.append(f"strftime('%Y-%m-%dT%H:%M:%fZ', {q}) IS {q}")
    elif column.kind == "date":
        checks.append(f"date({q}) IS {q}")
    elif column.kind == "json":
        checks.append(f"json_valid({q})")
    elif column.kind == "real":
        checks.append(f"{q} BETWEEN -{_REAL_MAX} AND {_REAL_MAX}")
    if column.name == "row_version":
        checks.append(f"{q} GLOB '{_VERSION_GLOB}'")
    if column.max_length is not None:
        checks.append(f"length({q}) <= {column.max_length}")
    return checks


def column_sql(spec: TableSpec, column: Column) -> str:
    parts = [_quote(column.name), column.sql_type]
    if spec.pk == (column.name,):
        parts.append("PRIMARY KEY")
    if not column.nullable:
        parts.append("NOT NULL")
    if column.default is not None and column.name not in spec.pk:
        parts.append(f"DEFAULT {_literal(column.default)}")
    if column.unique:
        parts.append("UNIQUE")
    for check in [*format_checks(column), *column.checks]:
        parts.append(f"CHECK ({check})")
    if column.fk is not None:
        parts.append(f"REFERENCES {_quote(column.fk.table)}(\"id\") ON DELETE {column.fk.on_delete}")
        if column.fk.cycle:
            parts.append("DEFERRABLE INITIALLY DEFERRED")
    return " ".join(parts)


def table_sql(spec: TableSpec) -> str:
    lines = [column_sql(spec, c) for c in spec.columns]
    if len(spec.pk) > 1:
        lines.append(f"PRIMARY KEY ({', '.join(_quote(c) for c in spec.pk)})")
    for unique in spec.meta.uniques:
        lines.append(f"UNIQUE ({', '.join(_quote(c) for c in unique)})")
    for check in spec.meta.checks:
        lines.append(f"CHECK ({check})")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {_quote(spec.name)} (\n  {body}\n) STRICT"


def index_sql(spec: TableSpec) -> list[str]:
    """Declared indexes plus one per FK column (cascades and FK checks need them)."""
    wanted: list[tuple[str, ...]] = list(spec.meta.indexes)
    covered = {cols[0] for cols in wanted} | {u[0] for u in spec.meta.uniques}
    for fk in spec.foreign_keys:
        if fk.column not in covered:
            wanted.append((fk.column,))
            covered.add(fk.column)
    return [
        f"CREATE INDEX {_quote('idx_' + spec.name + '_' + '_'.join(cols))} "
        f"ON {_quote(spec.name)} ({', '.join(_quote(c) for c in cols)})"
        for cols in wanted
    ]


def schema_statements(registry: Registry = REGISTRY) -> list[str]:
    statements: list[str] = []
    for spec in registry:
        statements.append(table_sql(spec))
        statements.extend(index_sql(spec))
    return statements


def create_schema(db: sqlite_utils.Database, registry: Registry = REGISTRY) -> None:
    """Create every registry table in an empty database and stamp the schema version."""
    existing = set(db.table_names())
    if existing:
        raise SchemaError(f"create_schema needs an empty database; found {sorted(existing)[:5]}")
    with db.atomic():
        for statement in schema_statements(registry):
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# --------------------------------------------------------------------------- migrations

Migration = Callable[[sqlite_utils.Database], None]

#: ``MIGRATIONS[n]`` upgrades a database from user_version n-1 to n. Version 1 is the first
#: schema (created whole by ``create_schema``); later entries use sqlite-utils'
#: ``table.transform()`` / ``add_column()`` so each step is one transaction.
MIGRATIONS: dict[int, Migration] = {}


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database, target: int = SCHEMA_VERSION,
            migrations: dict[int, Migration] | None = None) -> list[int]:
    """Bring a database up to ``target``; returns the versions applied. All-or-nothing per step."""
    migrations = MIGRATIONS if migrations is None else migrations
    current = schema_version(db)
    if current > target:
        raise SchemaError(f"database schema version {current} is newer than this bakestore "
                          f"understands ({target}); upgrade bakestore")
    applied: list[int] = []
    for version in range(current + 1, target + 1):
        step = migrations.get(version)
        if step is None:
            raise SchemaError(f"no migration from schema version {version - 1} to {version}")
        with db.atomic():
            step(db)
            db.execute(f"PRAGMA user_version = {version}")
        applied.append(version)
    return applied


# --------------------------------------------------------------------------- drift check


@dataclass
class SchemaProblem:
    table: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table}: {self.problem}"


def check_schema(db: sqlite_utils.Database, registry: Registry = REGISTRY) -> list[SchemaProblem]:
    """Every difference between the database and the registry (tables, columns, FKs, uniques)."""
    problems: list[SchemaProblem] = []
    actual = {name for name in db.table_names() if not name.startswith("sqlite_")}
    expected = set(registry.names)
    for name in sorted(actual - expected):
        problems.append(SchemaProblem(name, "table exists in the database but not in the registry"))
    for name in sorted(expected - actual):
        problems.append(SchemaProblem(name, "table is in the registry but missing from the database"))
    for spec in registry:
        if spec.name not in actual:
            continue
        table = db.table(spec.name)
        columns = {c.name: c for c in table.columns}
        if list(columns) != list(spec.column_names):
            missing = [c for c in spec.column_names if c not in columns]
            extra = [c for c in columns if c not in spec.column_names]
            problems.append(SchemaProblem(spec.name, f"columns differ (missing {missing}, extra {extra})"))
        for c in spec.columns:
            found = columns.get(c.name)
            if found is not None and found.type.upper() != c.sql_type:
                problems.append(SchemaProblem(spec.name, f"column {c.name} is {found.type}, expected {c.sql_type}"))
            if found is not None and bool(found.notnull) == c.nullable and c.name not in spec.pk:
                problems.append(SchemaProblem(spec.name, f"column {c.name} nullability differs"))
        fks = {(fk.column, fk.other_table) for fk in table.foreign_keys}
        want = {(fk.column, fk.other_table) for fk in spec.foreign_keys}
        if fks != want:
            problems.append(SchemaProblem(spec.name, f"foreign keys differ (missing {sorted(want - fks)}, "
                                                     f"extra {sorted(fks - want)})"))
        rules = {row[3]: row[6] for row in db.execute(f"PRAGMA foreign_key_list({_quote(spec.name)})")}
        for fk in spec.foreign_keys:
            if fk.column in rules and rules[fk.column] != fk.on_delete:
                problems.append(SchemaProblem(spec.name, f"{fk.column} ON DELETE {rules[fk.column]}, "
                                                         f"expected {fk.on_delete}"))
        unique_sets = {tuple(i.columns) for i in table.indexes if i.unique}
        for unique in spec.meta.uniques:
            if tuple(unique) not in unique_sets:
                problems.append(SchemaProblem(spec.name, f"UNIQUE{tuple(unique)} missing"))
    return problems
