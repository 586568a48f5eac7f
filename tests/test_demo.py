"""The demo dataset: complete coverage, valid rows, intact foreign keys, determinism, the scale knob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bakestore import demo
from bakestore.errors import BakestoreError
from bakestore.registry import REGISTRY
from bakestore.sqlite import sqlite3
from bakestore.store import Store, validate_row


@pytest.fixture(autouse=True)
def _demo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Store is given the demo device id, but nothing may ever reach the real per-user folder.
    monkeypatch.setenv("BAKESTORE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """One default-scale demo shared by the read-only tests of this module."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    counts = demo.build_demo(path)
    return path, counts


def _table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(str(path))
    try:
        return sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
    finally:
        conn.close()


def test_every_domain_table_has_rows(built: tuple[Path, dict[str, int]]) -> None:
    path, counts = built
    domain = [spec.name for spec in REGISTRY.domain_tables]
    assert len(domain) == 55
    assert sorted(counts) == sorted(domain)
    empty = [name for name in domain if counts[name] < 1]
    assert not empty, f"tables without demo rows: {empty}"
    # The default scale is a few thousand rows with hundreds of ingredients and products.
    assert 2_000 < sum(counts.values()) < 10_000
    assert counts["ingredients"] >= 200 and counts["products"] >= 200


def test_every_row_validates(built: tuple[Path, dict[str, int]]) -> None:
    path, _ = built
    with Store(path, device_id=demo.DEMO_DEVICE, create=False) as store:
        for spec in REGISTRY.domain_tables:
            for row in store.rows(spec.name):
                validate_row(spec, row, complete=True)


def test_foreign_keys_and_integrity(built: tuple[Path, dict[str, int]]) -> None:
    path, _ = built
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def test_domain_rules_beyond_the_schema(built: tuple[Path, dict[str, int]]) -> None:
    """Service rules the database cannot check: leaves only, one BARE good per EA unit, FIFO links."""
    path, _ = built
    conn = sqlite3.connect(str(path))
    try:
        q = conn.execute
        assert q("SELECT count(*) FROM products p JOIN ingredients i ON i.id = p.ingredient_id "
                 "WHERE i.hierarchy_level != 2").fetchone()[0] == 0
        assert q("SELECT count(*) FROM recipe_ingredients r JOIN ingredients i ON i.id = r.ingredient_id "
                 "WHERE i.hierarchy_level != 2").fetchone()[0] == 0
        assert q("SELECT count(*) FROM products GROUP BY ingredient_id HAVING sum(preferred) > 1").fetchall() == []
        ea = q("SELECT count(*) FROM finished_units WHERE yield_type = 'EA'").fetchone()[0]
        bare = q("SELECT count(*) FROM finished_goods g JOIN compositions c ON c.assembly_id = g.id "
                 "JOIN finished_units u ON u.id = c.finished_unit_id "
                 "WHERE g.assembly_type = 'bare' AND u.yield_type = 'EA' AND c.component_quantity = 1").fetchone()[0]
        assert ea == bare == q("SELECT count(*) FROM finished_goods WHERE assembly_type = 'bare'").fetchone()[0]
        assert q("SELECT count(*) FROM inventory_items WHERE purchase_id IS NOT NULL").fetchone()[0] \
            == q("SELECT count(*) FROM purchases").fetchone()[0]
        assert q("SELECT count(*) FROM material_inventory_items").fetchone()[0] \
            == q("SELECT count(*) FROM material_purchases").fetchone()[0]
        assert q("SELECT count(*) FROM suppliers WHERE supplier_type = 'physical' "
                 "AND (city IS NULL OR state IS NULL OR zip_code IS NULL)").fetchone()[0] == 0
        assert q("SELECT count(*) FROM recipes WHERE base_recipe_id IS NOT NULL").fetchone()[0] > 0
        # Both FK cycles are exercised: a run's own snapshot points back at the run.
        assert q("SELECT count(*) FROM production_runs r JOIN recipe_snapshots s ON s.id = r.recipe_snapshot_id "
                 "AND s.production_run_id = r.id").fetchone()[0] > 0
        assert q("SELECT count(*) FROM assembly_runs r JOIN finished_good_snapshots s "
                 "ON s.id = r.finished_good_snapshot_id AND s.assembly_run_id = r.id").fetchone()[0] > 0
        units = {r[0] for r in q("SELECT code FROM units WHERE category IN ('weight', 'volume', 'count')")}
        used = {r[0] for r in q("SELECT package_unit FROM products UNION SELECT unit FROM recipe_ingredients")}
        assert used <= units
    finally:
        conn.close()


def test_deterministic(tmp_path: Path, built: tuple[Path, dict[str, int]]) -> None:
    first, _ = built
    second = tmp_path / "again.db"
    demo.build_demo(second)
    for spec in REGISTRY.domain_tables:
        assert _table_rows(first, spec.name) == _table_rows(second, spec.name), spec.name
    # The generator alone is deterministic too, and a different seed gives different data.
    head = [row for _, row in zip(range(300), demo.generate(seed=7))]
    assert head == [row for _, row in zip(range(300), demo.generate(seed=7))]
    assert head != [row for _, row in zip(range(300), demo.generate(seed=8))]


def test_versions_and_timestamps_follow_the_fixed_clock(built: tuple[Path, dict[str, int]]) -> None:
    path, _ = built
    conn = sqlite3.connect(str(path))
    try:
        devices = {r[0] for r in conn.execute("SELECT substr(row_version, 21) FROM ingredients "
                                              "UNION SELECT substr(row_version, 21) FROM units")}
        assert devices == {demo.DEMO_DEVICE}
        assert conn.execute("SELECT min(created_at) FROM units").fetchone()[0] == "2026-10-01T09:00:00.000Z"
        high = conn.execute("SELECT value FROM _bakestore_meta WHERE key = 'hlc'").fetchone()[0]
        assert high >= conn.execute("SELECT max(row_version) FROM material_unit_snapshots").fetchone()[0]
    finally:
        conn.close()


def test_scale_grows_counts_and_estimate(tmp_path: Path, built: tuple[Path, dict[str, int]]) -> None:
    _, small = built
    bigger = demo.build_demo(tmp_path / "scale2.db", scale=2)
    for table in ("ingredients", "products", "purchases", "recipes", "finished_units", "events", "production_runs",
                  "assembly_runs", "recipe_snapshots"):
        assert bigger[table] > small[table], table
    for scale, counts in ((1, small), (2, bigger)):
        total = sum(counts.values())
        assert abs(total - demo.estimate_rows(scale)) / total < 0.03, (scale, total, demo.estimate_rows(scale))
    assert demo.scale_for_rows(1) == 1
    assert abs(demo.estimate_rows(demo.scale_for_rows(1_000_000)) - 1_000_000) < demo.ROWS_PER_SCALE


def test_refuses_to_overwrite_a_non_empty_file(tmp_path: Path, built: tuple[Path, dict[str, int]]) -> None:
    path, _ = built
    before = path.read_bytes()
    with pytest.raises(BakestoreError, match="not empty"):
        demo.build_demo(path)
    assert path.read_bytes() == before
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    with pytest.raises(BakestoreError):
        demo.build_demo(other)
    assert other.read_text() == "my notes"
    assert not [p for p in tmp_path.iterdir() if ".building" in p.name]


def test_progress_and_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    target = tmp_path / "p.db"
    demo.build_demo(target, progress=lambda table, n: seen.append((table, n)))
    # Every generated table reports once, in registry order (units come from the seeds only).
    assert [t for t, _ in seen] == [s.name for s in REGISTRY.domain_tables if s.name != "units"]
    assert all(n > 0 for _, n in seen)

    def boom(table: str, n: int) -> None:
        if table == "events":
            raise RuntimeError("interrupted")

    failed = tmp_path / "failed.db"
    with pytest.raises(RuntimeError):
        demo.build_demo(failed, progress=boom)
    assert not failed.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".failed.db")]


def test_cli_command(tmp_path: Path) -> None:
    from bakestore.cli.demo import demo as demo_command

    class Obj:
        def __init__(self, db_path: Path) -> None:
            self.db_path = db_path

    @click.group()
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = Obj(tmp_path / "cli.db")

    group.add_command(demo_command)
    result = CliRunner().invoke(group, ["demo", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "rows" in result.output and "cli.db" in result.output
    again = CliRunner().invoke(group, ["demo"])
    assert again.exit_code != 0 and isinstance(again.exception, BakestoreError)


def test_built_file_is_a_normal_store(built: tuple[Path, dict[str, int]]) -> None:
    """The build used a private in-memory journal; the published file is WAL and passes doctor."""
    path, _ = built
    with Store(path, device_id=demo.DEMO_DEVICE, create=False) as store:
        report = store.check()
        assert report.ok, report.as_dict()
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
