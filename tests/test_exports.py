"""Exports: lossless and deterministic, never mistaken for complete, retention that keeps the newest.

The helpers at the top (``populate_every_table``, ``export_bytes``, ``leftovers``) are shared by
the restore tests, which import them from here.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakestore import exports
from bakestore.errors import ExportError
from bakestore.exports import MANIFEST, export_name, list_exports, prune_exports
from bakestore.registry import REGISTRY
from bakestore.store import Store

from .conftest import DEVICE_A, DEVICE_B

TS = "2025-12-01T10:00:00.000Z"


# --------------------------------------------------------------------------- shared helpers


def populate_every_table(store: Store, n: int = 1, tag: str = "") -> dict[str, int]:
    """Valid rows in every exported table, through the Store API; returns the counts.

    ``n`` copies of a small kitchen (ingredient tree, products, lots, recipes with a variant,
    finished units and goods, materials, an event with its plan, production and assembly
    ledgers, snapshots), plus one deleted recipient per copy so ``_tombstones`` has rows too.
    ``tag`` keeps names and slugs of two populations in one store apart.
    """
    ins = store.insert
    for k in range(n):
        s = f"{tag}{k}"
        root = ins("ingredients", {"display_name": f"Flour root {s}", "slug": f"flour_root_{s}", "category": "Flour",
                                   "hierarchy_level": 0})
        leaf = ins("ingredients", {"display_name": f"All-Purpose Flour {s}", "slug": f"ap_flour_{s}",
                                   "category": "Flour", "parent_ingredient_id": root["id"],
                                   "langual_terms": '["A0001"]', "density_volume_value": 1.0,
                                   "density_volume_unit": "cup", "density_weight_value": 4.25,
                                   "density_weight_unit": "oz", "allergens": '{"gluten":true}',
                                   "description": "", "notes": "Crème brûlée ✓ 🍪 \"quoted\" \\ back"})
        ins("ingredient_aliases", {"ingredient_id": leaf["id"], "alias": f"Plain flour {s}", "locale": "en-GB"})
        ins("ingredient_crosswalks", {"ingredient_id": leaf["id"], "system": "foodon", "code": f"F{s}",
                                      "meta": '{"x":1}'})
        sup = ins("suppliers", {"name": f"Costco {s}", "slug": f"costco_{s}", "city": "Boston", "state": "MA"})
        prod = ins("products", {"ingredient_id": leaf["id"], "brand": "King Arthur", "product_name": f"AP {s}",
                                "package_unit": "lb", "package_unit_quantity": 5.0, "slug": f"ka_ap_{s}",
                                "preferred_supplier_id": sup["id"], "preferred": True})
        ins("product_packaging", {"product_id": prod["id"], "packaging_level": "case", "qty_of_next_lower_level": 8})
        pur = ins("purchases", {"product_id": prod["id"], "supplier_id": sup["id"], "purchase_date": "2025-11-30",
                                "unit_price": 7.99, "quantity_purchased": 2})
        inv = ins("inventory_items", {"product_id": prod["id"], "purchase_id": pur["id"], "quantity": 2.0,
                                      "unit_cost": 7.99, "last_updated": TS, "purchase_date": "2025-11-30"})
        ins("inventory_depletions", {"inventory_item_id": inv["id"], "quantity_depleted": 0.5,
                                     "depletion_reason": "production", "depletion_date": TS, "cost": 2.0})
        snap = ins("inventory_snapshots", {"name": f"Count {s}", "snapshot_date": TS})
        ins("snapshot_ingredients", {"snapshot_id": snap["id"], "ingredient_id": leaf["id"], "quantity": 3.5})
        rec = ins("recipes", {"name": f"Sugar cookies {s}", "slug": f"sugar_cookies_{s}", "category": "Cookies"})
        var = ins("recipes", {"name": f"Sugar cookies {s}", "slug": f"sugar_cookies_iced_{s}", "category": "Cookies",
                              "base_recipe_id": rec["id"], "variant_name": "iced"})
        ins("recipe_ingredients", {"recipe_id": rec["id"], "ingredient_id": leaf["id"], "quantity": 2.5,
                                   "unit": "cup"})
        ins("recipe_components", {"recipe_id": var["id"], "component_recipe_id": rec["id"], "quantity": 1.0})
        fu = ins("finished_units", {"slug": f"sugar_cookie_{s}", "display_name": f"Sugar cookie {s}",
                                    "recipe_id": rec["id"], "items_per_batch": 24, "inventory_count": 10})
        fg = ins("finished_goods", {"slug": f"cookie_tin_{s}", "display_name": f"Cookie tin {s}",
                                    "inventory_count": 2})
        fg2 = ins("finished_goods", {"slug": f"bare_cookie_{s}", "display_name": f"Bare cookie {s}",
                                     "assembly_type": "bare"})
        pkg = ins("packages", {"name": f"Gift box {s}", "is_template": True})
        ins("package_finished_goods", {"package_id": pkg["id"], "finished_good_id": fg["id"], "quantity": 2})
        mc = ins("material_categories", {"name": f"Ribbons {s}", "slug": f"ribbons_{s}"})
        msc = ins("material_subcategories", {"category_id": mc["id"], "name": "Satin", "slug": f"satin_{s}"})
        mat = ins("materials", {"subcategory_id": msc["id"], "name": f"Red satin {s}", "slug": f"red_satin_{s}",
                                "base_unit_type": "linear_cm"})
        mp = ins("material_products", {"material_id": mat["id"], "supplier_id": sup["id"],
                                       "name": f"Red satin roll {s}", "slug": f"red_satin_roll_{s}",
                                       "package_quantity": 1.0, "package_unit": "roll",
                                       "quantity_in_base_units": 900.0})
        mu = ins("material_units", {"material_product_id": mp["id"], "name": "30 cm bow", "slug": "bow_30",
                                    "quantity_per_unit": 30.0})
        ins("compositions", {"assembly_id": fg["id"], "finished_unit_id": fu["id"], "component_quantity": 12.0})
        ins("compositions", {"assembly_id": fg["id"], "material_unit_id": mu["id"], "component_quantity": 1.0})
        gen = ins("compositions", {"package_id": pkg["id"], "packaging_product_id": prod["id"], "is_generic": True})
        ins("composition_assignments", {"composition_id": gen["id"], "inventory_item_id": inv["id"],
                                        "quantity_assigned": 1.0, "assigned_at": TS})
        mpur = ins("material_purchases", {"product_id": mp["id"], "supplier_id": sup["id"],
                                          "purchase_date": "2025-11-01", "packages_purchased": 1,
                                          "package_price": 9.0, "units_added": 900.0, "unit_cost": 0.01})
        minv = ins("material_inventory_items", {"material_product_id": mp["id"], "material_purchase_id": mpur["id"],
                                                "quantity_purchased": 900.0, "quantity_remaining": 870.0,
                                                "cost_per_unit": 0.01, "purchase_date": "2025-11-01"})
        ev = ins("events", {"name": f"Christmas {s}", "event_date": "2025-12-24", "year": 2025,
                            "output_mode": "bundled"})
        rcp = ins("recipients", {"name": f"Aunt May {s}", "address": None, "notes": ""})
        ins("event_recipient_packages", {"event_id": ev["id"], "recipient_id": rcp["id"], "package_id": pkg["id"]})
        ins("event_recipes", {"event_id": ev["id"], "recipe_id": rec["id"]})
        ins("event_finished_goods", {"event_id": ev["id"], "finished_good_id": fg["id"], "quantity": 3})
        ins("batch_decisions", {"event_id": ev["id"], "recipe_id": rec["id"], "finished_unit_id": fu["id"],
                                "batches": 2})
        ins("plan_amendments", {"event_id": ev["id"], "amendment_type": "add_fg", "amendment_data": '{"fg":1}'})
        ins("plan_snapshots", {"event_id": ev["id"], "snapshot_data": '{"plan":[]}'})
        ps = ins("planning_snapshots", {"event_id": ev["id"], "snapshot_type": "original", "snapshot_data": "{}"})
        ins("production_plan_snapshots", {"event_id": ev["id"], "calculated_at": TS})
        pr = ins("production_runs", {"recipe_id": rec["id"], "finished_unit_id": fu["id"], "event_id": ev["id"],
                                     "num_batches": 2, "expected_yield": 48, "actual_yield": 46, "produced_at": TS,
                                     "production_status": "partial_loss", "loss_quantity": 2})
        rs = ins("recipe_snapshots", {"recipe_id": rec["id"], "production_run_id": pr["id"], "snapshot_date": TS,
                                      "recipe_data": "{}", "ingredients_data": "[]"})
        store.update("production_runs", pr["id"], {"recipe_snapshot_id": rs["id"]})
        ins("production_consumptions", {"production_run_id": pr["id"], "ingredient_slug": f"ap_flour_{s}",
                                        "quantity_consumed": 5.0, "unit": "cup", "total_cost": 3.2})
        ins("production_losses", {"production_run_id": pr["id"], "finished_unit_id": fu["id"],
                                  "loss_category": "burnt", "loss_quantity": 2})
        ins("production_records", {"event_id": ev["id"], "recipe_id": rec["id"], "batches": 2, "produced_at": TS})
        ar = ins("assembly_runs", {"finished_good_id": fg["id"], "event_id": ev["id"], "quantity_assembled": 2,
                                   "assembled_at": TS})
        fgs = ins("finished_good_snapshots", {"finished_good_id": fg["id"], "assembly_run_id": ar["id"],
                                              "planning_snapshot_id": ps["id"], "snapshot_date": TS,
                                              "definition_data": "{}"})
        store.update("assembly_runs", ar["id"], {"finished_good_snapshot_id": fgs["id"]})
        ins("material_consumptions", {"assembly_run_id": ar["id"], "product_id": mp["id"],
                                      "inventory_item_id": minv["id"], "quantity_consumed": 30.0, "unit_cost": 0.01,
                                      "total_cost": 0.3, "product_name": "Red satin roll", "material_name": "Red satin",
                                      "subcategory_name": "Satin", "category_name": "Ribbons"})
        ins("assembly_finished_unit_consumptions", {"assembly_run_id": ar["id"], "finished_unit_id": fu["id"],
                                                    "quantity_consumed": 12, "unit_cost_at_consumption": 0.1,
                                                    "total_cost": 1.2})
        ins("assembly_finished_good_consumptions", {"assembly_run_id": ar["id"], "finished_good_id": fg2["id"],
                                                    "quantity_consumed": 1, "unit_cost_at_consumption": 0.5,
                                                    "total_cost": 0.5})
        ins("assembly_packaging_consumptions", {"assembly_run_id": ar["id"], "product_id": prod["id"],
                                                "quantity_consumed": 1.0, "unit": "each", "total_cost": 0.25})
        ins("finished_goods_adjustments", {"finished_unit_id": fu["id"], "quantity_change": -2,
                                           "previous_count": 12, "new_count": 10, "reason": "gift",
                                           "adjusted_at": TS})
        ins("event_production_targets", {"event_id": ev["id"], "recipe_id": rec["id"], "target_batches": 2,
                                         "recipe_snapshot_id": rs["id"]})
        ins("finished_unit_snapshots", {"finished_unit_id": fu["id"], "planning_snapshot_id": ps["id"],
                                        "snapshot_date": TS, "definition_data": "{}"})
        ins("event_assembly_targets", {"event_id": ev["id"], "finished_good_id": fg["id"], "target_quantity": 2,
                                       "finished_good_snapshot_id": fgs["id"]})
        ins("material_unit_snapshots", {"material_unit_id": mu["id"], "assembly_run_id": ar["id"],
                                        "snapshot_date": TS, "definition_data": "{}"})
        gone = ins("recipients", {"name": f"Moved away {s}"})
        store.delete("recipients", gone["id"])  # leaves a tombstone
    return {spec.name: store.count(spec.name) for spec in REGISTRY.exported_tables}


def export_bytes(folder: Path, *, tables_only: bool = False) -> dict[str, bytes]:
    """Every file of an export folder, name → bytes (optionally without the manifest)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())
            if p.is_file() and not (tables_only and p.name == MANIFEST)}


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders an operation might have left in ``folder`` (and restore points)."""
    found = [p.name for p in Path(folder).iterdir() if ".fresh-" in p.name or ".tmp-" in p.name]
    for sub in Path(folder).glob("*.restore-points"):
        found += [f"{sub.name}/{p.name}" for p in sub.iterdir() if ".tmp-" in p.name or p.name.startswith(".")]
    return found


# --------------------------------------------------------------------------- lossless round trip


def test_round_trip_every_table_is_byte_identical(store: Store, tmp_path: Path) -> None:
    counts = populate_every_table(store, n=2)
    empty = [t for t, c in counts.items() if c == 0]
    assert empty == [], f"the round trip must cover every table; empty: {empty}"
    first = store.export(tmp_path / "exports", name="first")
    assert first.total_rows == sum(counts.values())

    with Store(tmp_path / "other.db", device_id=DEVICE_B) as other:
        assert all(other.count(t) == 0 for t in counts if not REGISTRY[t].is_seed)
        other.restore(first.path)
        assert {t: other.count(t) for t in counts} == counts
        second = other.export(tmp_path / "exports", name="second")
    a, b = export_bytes(first.path), export_bytes(second.path)
    assert sorted(a) == sorted(b) == sorted([MANIFEST] + [f"{t}.ndjson" for t in counts])
    for name in a:
        assert a[name] == b[name], f"{name} differs after export → restore → export"


def test_export_format_is_canonical(store: Store, tmp_path: Path) -> None:
    populate_every_table(store)
    result = store.export(tmp_path, name="e")
    for spec in REGISTRY.exported_tables:
        lines = (result.path / f"{spec.name}.ndjson").read_text(encoding="utf-8").splitlines()
        ids = [json.loads(line)[spec.pk[0]] for line in lines]
        assert ids == sorted(ids), f"{spec.name}: rows are not in primary-key order"
        for line in lines:
            row = json.loads(line)
            assert list(row) == sorted(spec.column_names)
            assert line == json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    ingredient = next(json.loads(line) for line in (result.path / "ingredients.ndjson").read_text().splitlines()
                      if "Crème" in line)
    assert ingredient["description"] == "" and ingredient["moisture_pct"] is None  # NULL is not ""
    manifest = json.loads((result.path / MANIFEST).read_text())
    assert manifest["format"] == "bakestore-export" and manifest["format_version"] == 1
    assert manifest["source"]["db_id"] == store.db_id
    assert {e["name"] for e in manifest["tables"]} == {s.name for s in REGISTRY.exported_tables}
    assert "_bakestore_meta" not in {e["name"] for e in manifest["tables"]}


def test_encode_special_values_round_trip() -> None:
    columns = ("a", "b", "c", "d")
    line = exports.encode_row(columns, (float("inf"), float("-inf"), b"\x00\xff", None))
    assert line == '{"a":{"$float":"Infinity"},"b":{"$float":"-Infinity"},"c":{"$base64":"AP8="},"d":null}'
    row = exports.decode_row(line)
    assert row["a"] == math.inf and row["b"] == -math.inf and row["c"] == b"\x00\xff" and row["d"] is None
    assert exports.encode_row(("x",), (float("nan"),)) == '{"x":{"$float":"NaN"}}'
    with pytest.raises(ValueError, match="NaN cannot be stored"):
        exports.decode_row('{"x":{"$float":"NaN"}}')


_texts = st.text(max_size=40)  # any code point but surrogates: astral, combining, NUL, RTL …
_special_floats = st.sampled_from([-0.0, 0.0, 1e-300, 5e-324, 1.7976931348623157e308, -1e308, 0.1, 1 / 3])
_floats = st.one_of(st.none(), _special_floats, st.floats(allow_nan=False, allow_infinity=False))
_nullable_text = st.one_of(st.none(), st.just(""), _texts)
_large_text = st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=8),
                        st.integers(min_value=130_000, max_value=140_000))  # ~1 MB of UTF-8


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ingredients=st.lists(st.tuples(_texts, _nullable_text, _floats, _floats), min_size=1, max_size=4),
       recipe_notes=st.one_of(_nullable_text, _large_text),
       minutes=st.one_of(st.none(), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)),
       recipients=st.lists(st.tuples(_texts, _nullable_text), max_size=3))
def test_round_trip_generated_values(ingredients: list[tuple[str, str | None, float | None, float | None]],
                                     recipe_notes: str | None, minutes: int | None,
                                     recipients: list[tuple[str, str | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Store(folder / "a.db", device_id=DEVICE_A) as a:
            stored = a.insert_many("ingredients", [
                {"display_name": f"{i}:{name}"[:200], "category": "c", "description": description,
                 "density_volume_value": volume, "moisture_pct": moisture}
                for i, (name, description, volume, moisture) in enumerate(ingredients)])
            recipe = a.insert("recipes", {"name": "r", "slug": "r", "category": "Cakes", "notes": recipe_notes,
                                          "estimated_time_minutes": minutes})
            people = a.insert_many("recipients", [{"name": f"{i}{name}"[:200] or "x", "notes": notes}
                                                  for i, (name, notes) in enumerate(recipients)])
            first = a.export(folder / "x", name="first")
        with Store(folder / "b.db", device_id=DEVICE_B) as b:
            b.restore(first.path)
            second = b.export(folder / "x", name="second")
            for row in stored:
                got = b.get("ingredients", row["id"])
                assert got["display_name"] == row["display_name"]
                assert got["description"] == row["description"] and (got["description"] is None) == (
                    row["description"] is None)
                for column in ("density_volume_value", "moisture_pct"):
                    assert (got[column] is None) == (row[column] is None)
                    assert got[column] is None or got[column] == row[column]
            got_recipe = b.get("recipes", recipe["id"])
            assert got_recipe["notes"] == recipe_notes and got_recipe["estimated_time_minutes"] == minutes
            assert [b.get("recipients", p["id"])["notes"] for p in people] == [p["notes"] for p in people]
        assert export_bytes(first.path) == export_bytes(second.path)


# --------------------------------------------------------------------------- determinism, atomicity


def test_export_is_deterministic(store: Store, tmp_path: Path) -> None:
    populate_every_table(store)
    one = store.export(tmp_path, name="one")
    list(store.rows("ingredients"))  # reading changes nothing
    two = store.export(tmp_path)  # default, time-stamped name
    assert two.path.name.startswith("bakestore-export-")
    assert export_bytes(one.path) == export_bytes(two.path)
    store.update("recipients", next(store.rows("recipients"))["id"], {"notes": "changed"})
    three = store.export(tmp_path, name="three")
    assert export_bytes(three.path)["recipients.ndjson"] != export_bytes(one.path)["recipients.ndjson"]
    assert export_bytes(three.path)[MANIFEST] != export_bytes(one.path)[MANIFEST]


def test_manifest_is_written_last_then_the_folder_is_renamed(store: Store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    populate_every_table(store)
    written: list[str] = []
    renamed: list[tuple[str, str, bool]] = []
    real_open, real_replace = open, os.replace

    def recording_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            written.append(Path(file).name)
        return real_open(file, mode, *args, **kwargs)

    def recording_replace(src: Any, dst: Any) -> None:
        renamed.append((Path(src).name, Path(dst).name, (Path(src) / MANIFEST).exists()))
        real_replace(src, dst)

    monkeypatch.setattr(exports, "open", recording_open, raising=False)
    monkeypatch.setattr(exports.os, "replace", recording_replace)
    store.export(tmp_path, name="e")
    assert written[-1] == MANIFEST and written.count(MANIFEST) == 1
    assert len(written) == len(REGISTRY.exported_tables) + 1
    assert renamed == [(".e.tmp-" + str(os.getpid()), "e", True)]


@pytest.mark.parametrize("failure", [RuntimeError("boom"), OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()])
def test_failure_mid_export_leaves_nothing(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           failure: BaseException) -> None:
    populate_every_table(store)
    real_write_table = exports.write_table
    calls = {"n": 0}

    def failing_write_table(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 7:
            raise failure
        return real_write_table(*args, **kwargs)

    monkeypatch.setattr(exports, "write_table", failing_write_table)
    target = tmp_path / "exports"
    expected = ExportError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected) as caught:
        store.export(target, name="e")
    if isinstance(failure, OSError):
        assert "No space left on device" in str(caught.value) and "\n" not in str(caught.value)
    assert calls["n"] == 7
    assert list(target.iterdir()) == []  # no final folder, no temp folder
    assert list_exports(target) == []
    assert not store.db.conn.in_transaction


def test_export_never_overwrites(store: Store, tmp_path: Path) -> None:
    store.export(tmp_path, name="e")
    with pytest.raises(ExportError, match="already exists"):
        store.export(tmp_path, name="e")


def test_killed_export_leftover_is_never_complete_and_is_swept(store: Store, tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".bakestore-export-20250101T000000000Z.tmp-{dead_pid}"
    stale.mkdir()
    (stale / "ingredients.ndjson").write_text("{}\n")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        running = tmp_path / f".bakestore-export-20250101T000000001Z.tmp-{alive.pid}"
        running.mkdir()
        assert list_exports(tmp_path) == []  # neither looks like an export
        store.export(tmp_path, name="e")
        assert not stale.exists(), "a dead export's temp folder is swept by the next export"
        assert running.exists(), "a running export's temp folder is left alone"
    finally:
        alive.kill()
        alive.wait()


# --------------------------------------------------------------------------- retention


def _fake_export(folder: Path, when: _dt.datetime) -> Path:
    path = folder / export_name(when)
    path.mkdir(parents=True)
    (path / MANIFEST).write_text("{}")
    return path


def test_retention_keeps_last_n_and_one_per_day(tmp_path: Path) -> None:
    base = _dt.datetime(2026, 3, 10, 8, 0, tzinfo=_dt.timezone.utc)
    made = [_fake_export(tmp_path, base + _dt.timedelta(days=d, hours=h)) for d in range(6) for h in (0, 5, 9)]
    other = tmp_path / "my-hand-made-backup"
    other.mkdir()
    (other / MANIFEST).write_text("{}")
    removed = prune_exports(tmp_path, keep_last=2, keep_daily=3)
    kept = sorted(p.name for p in list_exports(tmp_path))
    newest_of_day = {d: made[d * 3 + 2].name for d in range(6)}
    expected = sorted({made[-1].name, made[-2].name, newest_of_day[3], newest_of_day[4], newest_of_day[5]}
                      | {other.name})
    assert kept == expected
    assert sorted(p.name for p in removed) == sorted(p.name for p in made if p.name not in expected)
    assert other.exists(), "folders bakestore did not name are never deleted"


def test_retention_never_deletes_the_newest(tmp_path: Path) -> None:
    base = _dt.datetime(2026, 3, 10, tzinfo=_dt.timezone.utc)
    made = [_fake_export(tmp_path, base + _dt.timedelta(minutes=m)) for m in range(4)]
    prune_exports(tmp_path, keep_last=0, keep_daily=0)
    assert [p.name for p in list_exports(tmp_path)] == [made[-1].name]
    assert prune_exports(tmp_path, keep_last=0, keep_daily=0) == []
    assert prune_exports(tmp_path / "missing") == []


@pytest.mark.parametrize("kwargs", [{"keep_last": -5}, {"keep_last": 2, "keep_daily": -1}, {"keep_last": "3"}])
def test_retention_refuses_negative_counts_and_deletes_nothing(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    base = _dt.datetime(2026, 3, 10, tzinfo=_dt.timezone.utc)
    made = [_fake_export(tmp_path, base + _dt.timedelta(minutes=m)) for m in range(4)]
    with pytest.raises(ExportError, match="nothing was pruned"):
        prune_exports(tmp_path, **kwargs)
    assert list_exports(tmp_path) == made


def test_retention_ignores_incomplete_exports(tmp_path: Path) -> None:
    base = _dt.datetime(2026, 3, 10, tzinfo=_dt.timezone.utc)
    complete = _fake_export(tmp_path, base)
    incomplete = tmp_path / export_name(base + _dt.timedelta(hours=1))
    incomplete.mkdir()  # no manifest: not an export, never counted as "the newest"
    prune_exports(tmp_path, keep_last=1, keep_daily=0)
    assert complete.exists() and incomplete.exists()


def test_incremental_reuse_links_files_and_carries_their_checksums(tmp_path: Path) -> None:
    from bakestore.errors import SourceError
    from bakestore.exports import ExportFolderSource, export_database

    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        store.insert("recipients", {"name": "Ann"})
        first = store.export(tmp_path / "x", name="first").path
        store.insert("recipients", {"name": "Bob"})
        names = [s.name for s in REGISTRY.exported_tables]
        reuse = {t: first / f"{t}.ndjson" for t in names if t != "recipients"}
        second = export_database(store.db, tmp_path / "x", db_id=store.db_id, name="second",
                                 tables=["recipients"], reuse=reuse).path
        full = store.export(tmp_path / "x", name="full").path
    for name in os.listdir(full):
        if name != MANIFEST:
            assert (second / name).read_bytes() == (full / name).read_bytes(), name
    assert os.stat(second / "units.ndjson").st_ino == os.stat(first / "units.ndjson").st_ino  # linked
    ExportFolderSource(second).verify()
    # A previous file damaged after it was written is never carried forward: modified after its
    # manifest, it is written fresh from the database…
    units = first / "units.ndjson"
    good = units.read_bytes()
    written = os.stat(first / MANIFEST).st_mtime_ns
    damaged = bytearray(good)
    damaged[10] ^= 0x01
    os.unlink(units)  # break the link so only the old export's copy is damaged first…
    units.write_bytes(bytes(damaged))
    os.utime(units, ns=(written + 10**9, written + 10**9))
    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        third = export_database(store.db, tmp_path / "x", db_id=store.db_id, name="third",
                                tables=["recipients"], reuse=reuse).path
    assert (third / "units.ndjson").read_bytes() == good
    ExportFolderSource(third).verify()
    # …and damage that left size and mtime alone (bit rot) keeps the old checksum, so it is
    # refused on verification: never blessed with a fresh, matching one.
    os.utime(units, ns=(written - 10**9, written - 10**9))
    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        fourth = export_database(store.db, tmp_path / "x", db_id=store.db_id, name="fourth",
                                 tables=["recipients"], reuse=reuse).path
    with pytest.raises(SourceError, match="units.ndjson: sha256 does not match"):
        ExportFolderSource(fourth).verify()


@pytest.mark.parametrize("damage", ["truncated", "no-manifest-entry", "replaced-by-a-folder"])
def test_incremental_reuse_never_carries_a_damaged_previous_file_forward(tmp_path: Path, damage: str) -> None:
    """A previous file whose size no longer matches its manifest (or that the manifest does not
    list) used to be re-hashed and reused: the new export verified, with rows missing."""
    from bakestore.exports import ExportFolderSource, export_database

    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        store.insert_many("suppliers", [{"name": f"S{i}", "slug": f"s{i}"} for i in range(5)])
        first = store.export(tmp_path / "x", name="first").path
        store.insert("recipients", {"name": "Grandma"})
        suppliers = first / "suppliers.ndjson"
        lines = suppliers.read_bytes().splitlines(keepends=True)
        os.unlink(suppliers)
        if damage == "truncated":
            suppliers.write_bytes(b"".join(lines[:2]))  # cut at a line boundary: still valid NDJSON
        elif damage == "replaced-by-a-folder":
            suppliers.mkdir()
        else:  # a truncated file that its manifest no longer lists
            suppliers.write_bytes(b"".join(lines[:2]))
            manifest = json.loads((first / MANIFEST).read_text(encoding="utf-8"))
            manifest["tables"] = [e for e in manifest["tables"] if e["name"] != "suppliers"]
            (first / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        names = [s.name for s in REGISTRY.exported_tables]
        reuse = {t: first / f"{t}.ndjson" for t in names if t != "recipients"}
        second = export_database(store.db, tmp_path / "x", db_id=store.db_id, name="second",
                                 tables=["recipients"], reuse=reuse)
        full = store.export(tmp_path / "x", name="full").path
    ExportFolderSource(second.path).verify()
    assert {e["name"]: e["rows"] for e in second.manifest["tables"]}["suppliers"] == 5
    for name in os.listdir(full):
        if name != MANIFEST:
            assert (second.path / name).read_bytes() == (full / name).read_bytes(), name


def test_stale_temp_sweep_leaves_other_programs_folders_alone(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345  # beyond pid_max on Linux: never a live process
    foreign = tmp_path / f".cache.tmp-{dead_pid}"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours", encoding="utf-8")
    ours = tmp_path / f".bakestore-export-20250101T000000000Z.tmp-{dead_pid}"
    ours.mkdir()
    (ours / "units.ndjson").write_text("{}\n", encoding="utf-8")
    removed = exports.remove_stale_temp_folders(tmp_path)
    assert removed == [ours]
    assert foreign.exists() and not ours.exists()


def test_batch_decoding_cannot_glue_rows_through_a_string() -> None:
    """A raw newline inside a string is not JSON: decoded as a batch, such lines must be refused
    exactly as line by line (they once decoded as one row ``ab,c`` plus two)."""
    from bakestore.exports import decode_lines, decode_row

    text = '{"a":"ab\nc"}\n{"b":1},{"c":2}\n'  # three lines, three objects: the counts agree
    with pytest.raises(ValueError):
        decode_lines(text, text.count("\n"))
    for line in text.splitlines(keepends=True):
        with pytest.raises(ValueError):
            decode_row(line)
    assert decode_lines('{"a":"x"}\n{"a":"y"}\n', 2) == [{"a": "x"}, {"a": "y"}]
