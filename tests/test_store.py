"""The Store API: explicit paths, validation with clear errors, versions, tombstones, seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakestore import paths
from bakestore.clock import HybridLogicalClock, Version, load_device_id, uuid7
from bakestore.errors import (
    ConfigurationError,
    ConstraintError,
    DeleteRestrictedError,
    ForeignKeyError,
    NotFoundError,
    UnknownColumnError,
    UnknownTableError,
    ValidationError,
)
from bakestore.seeds import seed_store
from bakestore.store import Store

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint


def _flour(store: Store, **extra: object) -> dict:
    return store.insert("ingredients", {"display_name": "All-Purpose Flour", "slug": "all_purpose_flour",
                                        "category": "Flour", **extra})


def test_default_location_refuses_under_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAKESTORE_HOME")
    with pytest.raises(ConfigurationError, match="under pytest"):
        paths.default_db_path()
    with pytest.raises(ConfigurationError):
        paths.config_dir()


def test_default_location_never_uses_the_upstream_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKESTORE_HOME", str(tmp_path))
    assert "BakeTracker" not in str(paths.default_db_path())
    monkeypatch.setenv("BAKESTORE_DB", str(tmp_path / "x.db"))
    assert paths.default_db_path() == tmp_path / "x.db"


def test_open_missing_without_create_refuses(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        Store(tmp_path / "missing.db", device_id=DEVICE_A, create=False)
    assert not (tmp_path / "missing.db").exists()


def test_connection_settings(store: Store) -> None:
    db = store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 0
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_seeds_35_units_7_categories_idempotent(store: Store) -> None:
    before = {t: sorted(map(str, store.rows(t))) for t in ("units", "recipe_categories")}
    assert store.count("units") == 35 and store.count("recipe_categories") == 7
    assert seed_store(store) == {"units": 0, "recipe_categories": 0}
    assert {t: sorted(map(str, store.rows(t))) for t in before} == before


def test_seeds_do_not_collide_with_existing_rows_of_same_natural_key(store: Store) -> None:
    store.delete("recipe_categories", "cakes")
    store.insert("recipe_categories", {"name": "Cakes", "slug": "cakes", "sort_order": 1})
    assert seed_store(store)["recipe_categories"] == 0
    assert store.count("recipe_categories") == 7


def test_insert_get_update_by_natural_key(store: Store) -> None:
    row = _flour(store)
    assert len(row["id"]) == 36 and row["id"][14] == "7"  # UUIDv7
    assert row["created_at"].endswith("Z") and len(row["created_at"]) == 24
    got = store.get("ingredients", "all_purpose_flour")
    assert got == row
    updated = store.update("ingredients", "all_purpose_flour", {"notes": "sift first"})
    assert updated["notes"] == "sift first"
    assert updated["created_at"] == row["created_at"]
    assert Version.parse(updated["row_version"]) > Version.parse(row["row_version"])
    assert store.get("ingredients", row["id"])["notes"] == "sift first"


def test_versions_strictly_increase_across_writes_and_reopen(db_path: Path) -> None:
    frozen = lambda: 1_700_000_000_000  # noqa: E731 - a clock that never moves
    with Store(db_path, device_id=DEVICE_A, wall_clock=frozen) as s:
        versions = [s.insert("recipients", {"name": f"R{i}"})["row_version"] for i in range(5)]
    with Store(db_path, device_id=DEVICE_A, wall_clock=frozen) as s:
        versions.append(s.insert("recipients", {"name": "after reopen"})["row_version"])
    parsed = [Version.parse(v) for v in versions]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)


def test_validation_errors_name_table_field_and_change_nothing(store: Store, db_path: Path) -> None:
    _flour(store)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db_fingerprint(db_path)
    with pytest.raises(ValidationError, match=r"ingredients\.hierarchy_level"):
        store.insert("ingredients", {"display_name": "X", "category": "c", "hierarchy_level": 7})
    with pytest.raises(ValidationError, match=r"products\.package_unit_quantity"):
        store.insert("products", {"ingredient_id": store.resolve("ingredients", "all_purpose_flour"),
                                  "package_unit": "lb", "package_unit_quantity": "five"})
    with pytest.raises(UnknownColumnError, match="colour"):
        store.insert("ingredients", {"display_name": "Y", "category": "c", "colour": "red"})
    with pytest.raises(ForeignKeyError, match=r"products\.ingredient_id: no ingredients row"):
        store.insert("products", {"ingredient_id": uuid7(), "package_unit": "lb", "package_unit_quantity": 1})
    with pytest.raises(ConstraintError, match="display_name"):
        _flour(store, slug="other")
    with pytest.raises(UnknownTableError):
        store.insert("widgets", {})
    assert db_fingerprint(db_path) == before


def test_batch_insert_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.insert_many("recipients", [{"name": "Ann"}, {"name": "Bob"}, {"name": None}])
    assert info.value.index == 2
    assert store.count("recipients") == 0


def test_delete_cascades_with_tombstones_and_restrict_refuses(store: Store) -> None:
    flour = _flour(store)
    product = store.insert("products", {"ingredient_id": flour["id"], "package_unit": "lb",
                                        "package_unit_quantity": 5.0})
    supplier = store.insert("suppliers", {"name": "Costco", "slug": "costco_boston_ma", "city": "Boston",
                                          "state": "MA", "zip_code": "02101"})
    store.insert("purchases", {"product_id": product["id"], "supplier_id": supplier["id"],
                               "purchase_date": "2026-11-01", "unit_price": 4.99, "quantity_purchased": 2})
    with pytest.raises(DeleteRestrictedError, match="purchases"):
        store.delete("ingredients", "all_purpose_flour")
    assert store.count("products") == 1
    store.db.execute("DELETE FROM purchases")
    result = store.delete("ingredients", "all_purpose_flour")
    assert result.cascaded == [("products", product["id"])]
    tombstones = {(r["table_name"], r["row_id"]) for r in store.rows("_tombstones")}
    assert tombstones == {("ingredients", flour["id"]), ("products", product["id"])}


def test_delete_set_null_bumps_child_version(store: Store) -> None:
    supplier = store.insert("suppliers", {"name": "Amazon", "slug": "amazon", "supplier_type": "online"})
    flour = _flour(store)
    product = store.insert("products", {"ingredient_id": flour["id"], "package_unit": "lb",
                                        "package_unit_quantity": 5.0, "preferred_supplier_id": supplier["id"]})
    result = store.delete("suppliers", "amazon")
    assert result.nulled == [("products", product["id"], "preferred_supplier_id")]
    after = store.get("products", product["id"])
    assert after["preferred_supplier_id"] is None
    assert Version.parse(after["row_version"]) > Version.parse(product["row_version"])


def test_device_id_lives_outside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("BAKESTORE_HOME", str(home_a))
    with Store(tmp_path / "a.db") as s:
        device_a = s.device_id
        s.insert("recipients", {"name": "Ann"})
    assert device_a == load_device_id(home_a / "config")
    shutil.copy(tmp_path / "a.db", tmp_path / "copy.db")
    monkeypatch.setenv("BAKESTORE_HOME", str(home_b))
    with Store(tmp_path / "copy.db") as s:
        assert s.device_id != device_a
        assert s.insert("recipients", {"name": "Bob"})["row_version"].endswith(s.device_id)
    # Row versions name the device that wrote them (authorship); the identity itself is not stored.
    with Store(tmp_path / "a.db", device_id=DEVICE_B) as s:
        meta = {r["key"]: r["value"] for r in s.rows("_bakestore_meta")}
    assert not any(device_a == value for value in meta.values())
    assert "device_id" not in meta


def test_hlc_observe_makes_later_local_edits_win() -> None:
    clock_a = HybridLogicalClock(DEVICE_A, wall=lambda: 1000)
    clock_b = HybridLogicalClock(DEVICE_B, wall=lambda: 5000)
    remote = clock_b.now()
    clock_a.observe(remote)
    assert Version.parse(clock_a.now()) > Version.parse(remote)


def test_check_reports_healthy_and_detects_fk_violation(store: Store) -> None:
    assert store.check().ok
    store.db.execute("PRAGMA foreign_keys = OFF")
    store.db.execute("INSERT INTO products (id, created_at, updated_at, row_version, ingredient_id, package_unit, "
                     "package_unit_quantity, preferred, is_hidden, is_provisional) VALUES (?, ?, ?, ?, ?, 'lb', 1, 0, 0, 0)",
                     [uuid7(), store.now(), store.now(), store.clock.now(), uuid7()])
    store.db.conn.commit()
    report = store.check()
    assert not report.ok
    assert any(c.name == "foreign_key_check" and c.status == "fail" for c in report.checks)


def test_not_a_bakestore_database_is_refused(tmp_path: Path) -> None:
    import sqlite_utils

    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["t"].insert({"a": 1})
    with pytest.raises(Exception, match="not a bakestore database"):
        Store(other, device_id=DEVICE_A)


def test_store_watch_exports_after_a_commit(store: Store, tmp_path: Path) -> None:
    import time

    target = tmp_path / "auto"
    watcher = store.watch(target, quiet=0.1, max_wait=0.5)
    try:
        deadline = time.monotonic() + 10
        while not any(target.glob("*/manifest.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = {p.name for p in target.iterdir() if not p.name.startswith(".")}
        store.insert("recipients", {"name": "Ann"})
        while time.monotonic() < deadline:
            now = {p.name for p in target.iterdir() if not p.name.startswith(".") and (p / "manifest.json").exists()}
            if now - first:
                break
            time.sleep(0.05)
        newest = sorted(now - first)[-1]
        assert '"name":"Ann"' in (target / newest / "recipients.ndjson").read_text(encoding="utf-8")
    finally:
        watcher.stop()


def test_a_failed_commit_leaves_no_open_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_meta(key: str, value: str) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_meta_set", broken_meta)
    with pytest.raises(RuntimeError):
        store.insert("recipients", {"name": "Ann"})
    monkeypatch.undo()
    assert not store.db.conn.in_transaction
    assert store.count("recipients") == 0


def test_supplier_state_pattern_is_enforced_by_model_and_sql(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"suppliers\.state"):
        store.insert("suppliers", {"name": "X", "slug": "x", "state": "12"})
    now = store.now()
    with pytest.raises(Exception, match="CHECK constraint failed"):
        store.db.execute("INSERT INTO suppliers (id, created_at, updated_at, row_version, name, slug, supplier_type, "
                         "state, is_active) VALUES (?, ?, ?, ?, 'X', 'x', 'physical', '12', 1)",
                         [uuid7(), now, now, store.clock.now()])


def test_registry_refuses_a_pattern_without_sql_twin() -> None:
    from typing import ClassVar

    from pydantic import Field

    from bakestore.errors import SchemaError
    from bakestore.models.base import Row, TableMeta
    from bakestore.registry import spec_for

    class Bad(Row):
        table_meta: ClassVar[TableMeta] = TableMeta(name="bad", group="x", description="x")
        code: str = Field(pattern=r"^[a-z]+$")

    with pytest.raises(SchemaError, match="SQL twin"):
        spec_for(Bad)


def test_update_with_a_stale_expected_version_writes_nothing(store: Store) -> None:
    from bakestore.errors import ConflictError

    row = store.insert("recipients", {"name": "Ann"})
    store.update("recipients", row["id"], {"notes": "changed elsewhere"})
    with pytest.raises(ConflictError, match="changed by someone else"):
        store.update("recipients", row["id"], {"name": "Anne"}, expected_version=row["row_version"])
    assert store.get("recipients", row["id"])["name"] == "Ann"
    fresh = store.get("recipients", row["id"])
    assert store.update("recipients", row["id"], {"name": "Anne"}, expected_version=fresh["row_version"])["name"] == "Anne"
