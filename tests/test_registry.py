"""The registry is the only list of tables, and the database always agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bakestore.registry import REGISTRY, Registry
from bakestore.schema import check_schema
from bakestore.store import Store

DOMAIN = Path(__file__).resolve().parents[2] / "shared" / "reference" / "baketracker-domain.md"


def _domain_tables() -> dict[str, dict[str, tuple[str, str]]]:
    """Tables, FK columns and their ON DELETE rules, read from the domain reference text."""
    text = DOMAIN.read_text(encoding="utf-8")
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 6:
            continue
        m = re.fullmatch(r"\*\*(\w+)\*\*", cells[0])
        if m:
            current = m.group(1)
            tables[current] = {}
        if current is None:
            continue
        fk = re.search(r"→ (\w+) (CASCADE|RESTRICT|SET NULL|NO ACTION)", cells[5])
        col = re.fullmatch(r"`(\w+)`", cells[1])
        if fk and col:
            tables[current][col.group(1)] = (fk.group(1), fk.group(2))
    return tables


def test_registry_has_the_55_domain_tables() -> None:
    assert len(REGISTRY.domain_tables) == 55
    expected = _domain_tables()
    assert len(expected) == 55, "domain reference parse drifted"
    assert {s.name for s in REGISTRY.domain_tables} == set(expected)


def test_every_domain_foreign_key_and_delete_rule_is_declared() -> None:
    for table, fks in _domain_tables().items():
        spec = REGISTRY[table]
        declared = {fk.column: (fk.other_table, fk.on_delete) for fk in spec.foreign_keys}
        assert declared == fks, table


def test_dependency_order_puts_parents_first_except_cycle_edges() -> None:
    position = {name: i for i, name in enumerate(REGISTRY.names)}
    for spec in REGISTRY:
        for fk in spec.foreign_keys:
            if not fk.cycle:
                assert position[fk.other_table] < position[spec.name], (spec.name, fk.column)


def test_the_two_fk_cycles_are_broken_on_nullable_deferred_edges() -> None:
    cycle_edges = {(fk.table, fk.column) for spec in REGISTRY for fk in spec.foreign_keys if fk.cycle}
    assert ("production_runs", "recipe_snapshot_id") in cycle_edges
    assert ("assembly_runs", "finished_good_snapshot_id") in cycle_edges
    for table, column in cycle_edges:
        assert REGISTRY[table].column(column).nullable


def test_seed_tables_are_units_and_recipe_categories() -> None:
    assert {s.name for s in REGISTRY.seed_tables} == {"units", "recipe_categories"}


def test_created_database_matches_registry(store: Store) -> None:
    assert check_schema(store.db) == []
    names = {n for n in store.db.table_names() if not n.startswith("sqlite_")}
    assert names == set(REGISTRY.names)


def test_drift_is_detected_in_both_directions(store: Store) -> None:
    store.db.execute("CREATE TABLE stray (id TEXT)")
    store.db.execute('DROP TABLE "ingredient_crosswalks"')
    problems = [str(p) for p in check_schema(store.db)]
    assert any("stray" in p and "not in the registry" in p for p in problems)
    assert any("ingredient_crosswalks" in p and "missing from the database" in p for p in problems)
    report = store.check()
    assert not report.ok


def test_duplicate_table_declaration_is_refused() -> None:
    spec = REGISTRY["units"]
    with pytest.raises(Exception, match="declared twice"):
        Registry([spec, spec])


def test_no_hand_written_table_list_in_the_package() -> None:
    # The upstream lost data through a hand-kept list of tables. A run of three or more quoted
    # table names in a row anywhere in bakestore/ is such a list.
    names = "|".join(re.escape(n) for n in REGISTRY.names)
    pattern = re.compile(rf"""["']({names})["']\s*,\s*["']({names})["']\s*,\s*["']({names})["']""")
    root = Path(__file__).resolve().parents[1] / "bakestore"
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
