"""Schema creation from the registry, user_version, and the migration mechanism."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from bakestore.errors import SchemaError
from bakestore.registry import REGISTRY
from bakestore.schema import APPLICATION_ID, SCHEMA_VERSION, migrate, schema_statements, schema_version
from bakestore.store import Store

from .conftest import DEVICE_A


def test_every_table_is_strict_with_its_checks_and_uniques(store: Store) -> None:
    for spec in REGISTRY:
        sql = store.db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [spec.name]).fetchone()[0]
        assert sql.rstrip().endswith("STRICT"), spec.name
        for check in spec.meta.checks:
            assert check in sql, (spec.name, check)
        indexed = {tuple(i.columns) for i in store.db.table(spec.name).indexes if i.unique}
        for unique in spec.meta.uniques:
            assert tuple(unique) in indexed, (spec.name, unique)


def test_foreign_key_columns_are_indexed(store: Store) -> None:
    for spec in REGISTRY:
        leading = {i.columns[0] for i in store.db.table(spec.name).indexes}
        for fk in spec.foreign_keys:
            assert fk.column in leading, (spec.name, fk.column)


def test_stored_formats_are_enforced_by_sqlite_itself(store: Store) -> None:
    # A writer that bypasses the API (the sqlite3 shell, another tool) still cannot store a
    # malformed timestamp, id or JSON value.
    now, version = store.now(), store.clock.now()
    good = ["01234567-89ab-7def-8123-456789abcdef", now, now, version, "R", None, None, None]
    sql = ("INSERT INTO recipients (id, created_at, updated_at, row_version, name, household_name, address, notes) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    for index, bad in [(0, "not-a-uuid"), (1, "2026-13-01T00:00:00.000Z"), (2, "yesterday"), (3, "v1")]:
        values = list(good)
        values[index] = bad
        with pytest.raises(Exception, match="CHECK constraint failed"):
            store.db.execute(sql, values)
    store.db.execute(sql, good)


def test_user_version_and_application_id(store: Store) -> None:
    assert schema_version(store.db) == SCHEMA_VERSION
    assert store.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_schema_statements_are_deterministic() -> None:
    assert schema_statements() == schema_statements()


def test_migration_steps_run_in_order_in_their_own_transactions(db_path: Path) -> None:
    Store(db_path, device_id=DEVICE_A).close()
    db = sqlite_utils.Database(db_path)
    applied: list[int] = []

    def to_2(d: sqlite_utils.Database) -> None:
        d["recipients"].add_column("nickname", str)
        applied.append(2)

    def to_3(d: sqlite_utils.Database) -> None:
        d.execute("CREATE INDEX idx_recipients_nickname ON recipients (nickname)")
        applied.append(3)

    assert migrate(db, target=3, migrations={2: to_2, 3: to_3}) == [2, 3]
    assert applied == [2, 3] and schema_version(db) == 3
    assert "nickname" in db["recipients"].columns_dict


def test_failed_migration_step_leaves_the_previous_version(db_path: Path) -> None:
    Store(db_path, device_id=DEVICE_A).close()
    db = sqlite_utils.Database(db_path)

    def broken(d: sqlite_utils.Database) -> None:
        d["recipients"].add_column("nickname", str)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        migrate(db, target=2, migrations={2: broken})
    assert schema_version(db) == 1
    assert "nickname" not in db["recipients"].columns_dict


def test_missing_migration_and_newer_database_are_refused(db_path: Path) -> None:
    Store(db_path, device_id=DEVICE_A).close()
    db = sqlite_utils.Database(db_path)
    with pytest.raises(SchemaError, match="no migration from schema version 1 to 2"):
        migrate(db, target=2, migrations={})
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(SchemaError, match="newer than this bakestore"):
        Store(db_path, device_id=DEVICE_A)
