"""The value rules, reference rules and modes of the legacy importer, one behaviour per test.

Each test states an upstream quirk (formats page section in the docstring) and what bakestore
does with it instead: zero-as-null, enum NAMEs, time zones, raw ids, product keys, ambiguity,
skip-invalid, merge, dry run, the 4.2 spec-only arrays and the coordinated-only entities.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from bakestore import ConfigurationError, LegacyFormatError, ShrinkRefusedError, Store
from bakestore.legacy import import_legacy, translate
from bakestore.legacy.resolve import RefError, kebab_slug, parse_product_key
from bakestore.legacy.values import (
    RecordReader,
    ValueProblem,
    to_date,
    to_enum,
    to_int,
    to_real,
    to_timestamp,
    to_uuid,
)

from .legacy_files import FOLDER, SINGLE, edited, single, write

DEVICE = "4" * 32


def rows(store: Store, table: str, **where: Any) -> list[dict[str, Any]]:
    clause = " AND ".join(f'"{k}" IS ?' for k in where) or None
    return list(store.rows(table, where=clause, params=list(where.values())))


def slug_of(store: Store, table: str, row_id: str, column: str = "slug") -> Any:
    return rows(store, table, id=row_id)[0][column]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T11:23:10.061103+00:00Z", "2026-11-25T11:23:10.061Z"),  # header: aware UTC plus a Z
    ("2025-12-01T10:00:00Z", "2025-12-01T10:00:00.000Z"),
    ("2026-11-25T11:23:09.382014", "2026-11-25T11:23:09.382Z"),  # naive means UTC; truncated to ms
    ("2025-12-01T10:00:00+02:00", "2025-12-01T08:00:00.000Z"),  # other offsets convert to UTC
    ("2025-12-01 10:00:00", "2025-12-01T10:00:00.000Z"),
    ("2025-12-01", "2025-12-01T00:00:00.000Z"),  # a bare date is midnight UTC
])
def test_timestamps_become_canonical_utc(text: str, expected: str) -> None:
    assert to_timestamp(text, "at") == expected


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01T00:00:00", 1733047200, None])
def test_bad_timestamps_are_refused(bad: Any) -> None:
    with pytest.raises(ValueProblem):
        to_timestamp(bad, "at")


def test_dates_numbers_enums_uuids() -> None:
    assert to_date("2025-11-01", "d") == "2025-11-01"
    for bad in ("2025-11-01T00:00:00", "11/01/2025", "2025-02-30", 20251101):
        with pytest.raises(ValueProblem):
            to_date(bad, "d")
    assert to_real("12.9900", "p") == 12.99 and to_real(5, "p") == 5.0
    for bad in ("12,99", "abc", True, float("nan")):
        with pytest.raises(ValueProblem):
            to_real(bad, "p")
    assert to_int(24.0, "n") == 24
    for bad in (24.5, "24", True):
        with pytest.raises(ValueProblem):
            to_int(bad, "n")
    # Export value or database NAME, any case, stored in bakestore's spelling.
    assert to_enum("LOCKED", "s", ("draft", "locked")) == "locked"
    assert to_enum("In_Production", "s", ("in_production",)) == "in_production"
    assert to_enum("ea", "t", ("EA", "SERVING")) == "EA"
    with pytest.raises(ValueProblem, match="'frozen' is not one of"):
        to_enum("frozen", "s", ("draft", "locked"))
    assert to_uuid("BA565AC1-73EA-41D4-871F-E93285F63955", "uuid") == "ba565ac1-73ea-41d4-871f-e93285f63955"
    with pytest.raises(ValueProblem):
        to_uuid("ba565ac173ea41d4871fe93285f63955x", "uuid")


def test_zero_as_null_money_is_read_as_zero_and_noted() -> None:
    notes: list[tuple[str, str]] = []
    reader = RecordReader({"unit_price": None}, lambda f, r: notes.append((f, r)))
    assert reader.money("unit_price") == 0.0
    assert reader.money("per_unit_cost") == 0.0  # left out entirely by the single-file exporter
    assert [f for f, _ in notes] == ["unit_price", "per_unit_cost"]
    assert reader.unused() == []


def test_product_keys() -> None:
    key = parse_product_key("sugar:C&H:2.0:lb", "k")
    assert (key.ingredient_slug, key.brands, key.quantity, key.unit) == ("sugar", ("C&H",), 2.0, "lb")
    assert parse_product_key("flour:A:B Mills:10.0:lb", "k").brands == ("A:B Mills",)  # a ':' in the brand
    assert parse_product_key("flour:None:5.0:lb", "k").brands == (None, "None")  # a missing brand
    assert parse_product_key("oil::1.0:fl oz", "k").unit == "fl oz"
    for bad in ("sugar:C&H:lb", "sugar:C&H:two:lb", 42):
        with pytest.raises(RefError):
            parse_product_key(bad, "k")
    assert kebab_slug("Crème Brûlée Cookies!") == "creme-brulee-cookies"


# --------------------------------------------------------------------------- references


def test_purchases_land_on_the_right_product_whatever_the_order_and_gaps(tmp_path: Path, store: Store) -> None:
    """M1: raw product ids are not positions. Reordering the products must not move purchases."""
    def change(data: dict[str, Any]) -> None:
        data["products"].reverse()
    import_legacy(store, edited(tmp_path, change))
    src = single()
    for purchase in src["purchases"]:
        row = rows(store, "purchases", id=purchase["uuid"])[0]
        product = rows(store, "products", id=row["product_id"])[0]
        assert product["brand"] == purchase["product_brand"]
        assert product["product_name"] == purchase.get("product_name")


def test_a_purchase_takes_the_package_size_of_its_lot(tmp_path: Path, store: Store) -> None:
    """Two sizes of one brand with the same description: the purchase's lot says which size."""
    def change(data: dict[str, Any]) -> None:
        for product in data["products"]:
            product.pop("product_name", None)
        for item in data["purchases"] + data["inventory_items"]:
            item.pop("product_name", None)
    report, _ = import_legacy(store, edited(tmp_path, change))
    flour = rows(store, "ingredients", slug="ap_flour")[0]
    ten_lb = rows(store, "products", ingredient_id=flour["id"], package_unit_quantity=10.0)[0]
    assert rows(store, "purchases", id=single()["purchases"][0]["uuid"])[0]["product_id"] == ten_lb["id"]
    assert any("lot" in note for note in report.entities["purchases"].notes)


def test_raw_ids_that_contradict_each_other_are_refused(tmp_path: Path, store: Store) -> None:
    """Two purchases naming the same raw product id must be the same product."""
    def change(data: dict[str, Any]) -> None:
        data["purchases"][1]["product_id"] = data["purchases"][0]["product_id"]
    with pytest.raises(LegacyFormatError, match="raw product_id 2 does not fit"):
        import_legacy(store, edited(tmp_path, change))


def test_lot_and_purchase_must_agree_on_the_product(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        data["inventory_items"][0]["purchase_id"] = 2
    with pytest.raises(LegacyFormatError, match="inventory_items\\[0\\].*another product than its purchase"):
        import_legacy(store, edited(tmp_path, change))


def test_preferred_supplier_slug_and_raw_id_must_agree(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        data["products"][0]["preferred_supplier_id"] = 2
    with pytest.raises(LegacyFormatError, match="preferred_supplier_id.*name different suppliers"):
        import_legacy(store, edited(tmp_path, change))


def test_preferred_supplier_by_display_name_when_nothing_else(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        product = data["products"][0]
        product.pop("preferred_supplier_id")
        product["preferred_supplier_slug"] = None
    import_legacy(store, edited(tmp_path, change))
    product = rows(store, "products", product_name="AP 5lb")[0]
    assert slug_of(store, "suppliers", product["preferred_supplier_id"]) == "costco_boston_ma"


def test_recipes_with_the_same_name_get_distinct_slugs_and_ambiguous_references_refuse(
        tmp_path: Path, store: Store) -> None:
    def twin(data: dict[str, Any]) -> None:
        copy_ = dict(data["recipes"][0], finished_units=[], ingredients=[], components=[])
        data["recipes"].append(copy_)
        for key in ("event_production_targets", "event_recipes", "batch_decisions", "production_runs"):
            data[key] = []
        data["recipes"][2]["components"] = []
    import_legacy(store, edited(tmp_path, twin))
    assert sorted(r["slug"] for r in rows(store, "recipes", name="Royal Icing")) == ["royal-icing", "royal-icing-2"]

    def ambiguous(data: dict[str, Any]) -> None:
        data["recipes"].append(dict(data["recipes"][0], finished_units=[], ingredients=[], components=[]))
    with pytest.raises(LegacyFormatError, match="recipe 'Royal Icing' is ambiguous"):
        translate(edited(tmp_path, ambiguous), device_id=DEVICE)


def test_batch_decision_unit_is_found_within_its_recipe(tmp_path: Path, store: Store) -> None:
    """M3: FU display names are not unique; the decision's recipe narrows them down."""
    def change(data: dict[str, Any]) -> None:
        data["finished_units"][1]["display_name"] = "Sugar Cookie"  # same name, other recipe
        data["recipes"][2]["finished_units"][0]["name"] = "Sugar Cookie"
    import_legacy(store, edited(tmp_path, change))
    decision = rows(store, "batch_decisions")[0]
    assert slug_of(store, "finished_units", decision["finished_unit_id"]) == "sugar-cookie"


def test_hand_made_keys_the_upstream_importer_expected(tmp_path: Path, store: Store) -> None:
    """S7: the importer wanted ``recipe_slug`` (pseudo-slug style) and ``event_slug``; both resolve here."""
    def change(data: dict[str, Any]) -> None:
        unit = data["finished_units"][1]
        unit["recipe_slug"] = unit.pop("recipe_name").lower().replace(" ", "_")
        data["events"][0]["slug"] = "xmas-2025"
        erp = data["event_recipient_packages"][0]
        erp.pop("event_name")
        erp["event_slug"] = "xmas-2025"
    report, _ = import_legacy(store, edited(tmp_path, change))
    unit = rows(store, "finished_units", slug="iced-sugar-cookie")[0]
    assert slug_of(store, "recipes", unit["recipe_id"], "name") == "Sugar Cookies Iced"
    assert rows(store, "event_recipient_packages")[0]["event_id"] == rows(store, "events")[0]["id"]
    assert report.entities["events"].unused_keys["slug"] == 1  # used as a reference, but not stored


def test_extra_top_level_keys_are_tolerated_and_reported(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        data["transformation_notes"] = "moved from 3.x by hand"
        data["_meta"] = {"by": "script"}
    report, _ = import_legacy(store, edited(tmp_path, change))
    assert report.extra_keys == ["transformation_notes", "_meta"]
    assert "transformation_notes" in report.format_text()


def test_enum_names_time_zones_and_zero_prices(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        data["events"][0]["plan_state"] = "IN_PRODUCTION"
        data["finished_goods"][0]["assembly_type"] = "BUNDLE"
        data["event_recipient_packages"][0]["status"] = "DELIVERED"
        data["production_runs"][0]["produced_at"] = "2025-12-01T10:00:00-05:00"
        data["purchases"][1]["unit_price"] = None
    report, _ = import_legacy(store, edited(tmp_path, change))
    assert rows(store, "events")[0]["plan_state"] == "in_production"
    assert rows(store, "finished_goods")[0]["assembly_type"] == "bundle"
    assert rows(store, "event_recipient_packages")[0]["status"] == "delivered"
    assert rows(store, "production_runs")[0]["produced_at"] == "2025-12-01T15:00:00.000Z"
    assert rows(store, "purchases", id=single()["purchases"][1]["uuid"])[0]["unit_price"] == 0.0
    assert report.entities["purchases"].notes["unit_price: null read as 0 (upstream writes zero as null)"] == 1


def test_versions_4_0_and_4_2_with_spec_only_material_stock(tmp_path: Path, store: Store) -> None:
    data = single()
    data["version"] = "4.0"
    import_legacy(store, write(tmp_path, data, "v40.json"))

    data["version"] = "4.2"
    data["material_purchases"] = [{"id": 7, "material_product_slug": "red-satin:None:1.0:roll",
                                   "supplier_slug": "amazon", "purchase_date": "2025-11-05",
                                   "packages_purchased": 2, "package_price": "8.0000", "units_added": 2000.0,
                                   "unit_cost": None}]
    data["material_inventory_items"] = [{"material_product_slug": "red-satin-10m", "material_purchase_id": 7,
                                         "quantity_purchased": 2000.0, "quantity_remaining": 1500.0,
                                         "cost_per_unit": "0.0040", "purchase_date": "2025-11-05"}]
    report, _ = import_legacy(store, write(tmp_path, data, "v42.json"))
    purchase = rows(store, "material_purchases")[0]
    assert (purchase["package_price"], purchase["unit_cost"]) == (8.0, 0.0)
    assert slug_of(store, "material_products", purchase["product_id"]) == "red-satin-10m"
    lot = rows(store, "material_inventory_items")[0]
    assert lot["material_purchase_id"] == purchase["id"] and lot["cost_per_unit"] == 0.004
    assert report.format.endswith("v4.2 JSON")


# --------------------------------------------------------------------------- modes


def test_skip_invalid_imports_the_rest_and_lists_what_was_skipped(tmp_path: Path, store: Store) -> None:
    def change(data: dict[str, Any]) -> None:
        data["purchases"][1]["quantity_purchased"] = 0  # CHECK quantity_purchased > 0
    path = edited(tmp_path, change)
    with pytest.raises(LegacyFormatError, match="purchases\\[1\\]"):
        import_legacy(store, path)
    report, _ = import_legacy(store, path, skip_invalid=True)
    assert store.count("purchases") == 1 and store.count("inventory_items") == 1
    skipped = [p.place for p in report.problems]
    assert skipped == ["purchases[1]", "inventory_items[1]"]  # the lot made by that purchase goes too
    assert report.problems[1].kind == "dependent"
    assert "2 record(s) skipped" in report.format_text()
    assert store.count("suppliers") == 2  # everything else is there


def test_skip_invalid_still_meets_the_shrink_guard(tmp_path: Path, store: Store) -> None:
    import_legacy(store, SINGLE)

    def change(data: dict[str, Any]) -> None:
        for recipe in data["recipes"]:
            recipe["category"] = None  # every recipe refused, and all that hangs off them
    with pytest.raises(ShrinkRefusedError):
        import_legacy(store, edited(tmp_path, change), skip_invalid=True)
    assert store.count("recipes") == 3


def test_dry_run_and_confirmation(tmp_path: Path, store: Store) -> None:
    before = store.counts()
    report, preview = import_legacy(store, SINGLE, dry_run=True)
    assert preview.dry_run and preview.diff["suppliers"].added == 2 and store.counts() == before
    from bakestore.errors import CancelledError

    with pytest.raises(CancelledError):
        import_legacy(store, SINGLE, yes=False, confirm=lambda rep, res: False)
    assert store.counts() == before
    _, applied = import_legacy(store, SINGLE, yes=False, confirm=lambda rep, res: res.diff["suppliers"].added == 2)
    assert not applied.dry_run and store.count("suppliers") == 2


def test_translate_without_a_store_needs_a_device_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        translate(SINGLE)
    translation = translate(SINGLE, device_id=DEVICE, import_time="2026-01-01T00:00:00.000Z")
    rows_ = translation.source.rows_by_table
    assert len(rows_["suppliers"]) == 2
    packages = rows_["packages"][0]
    assert packages["created_at"] == packages["updated_at"] == "2026-01-01T00:00:00.000Z"
    assert all(r["row_version"].endswith(DEVICE) for table in rows_.values() for r in table)


def test_merge_recognises_what_is_already_there(tmp_path: Path, store: Store) -> None:
    """The single file merged into the same data restored from the coordinated backup adds no catalog rows."""
    import_legacy(store, FOLDER)
    catalog = ("suppliers", "ingredients", "products", "recipes", "recipe_ingredients", "recipe_components",
               "finished_units", "finished_goods", "compositions", "material_categories", "material_subcategories",
               "materials", "material_products", "material_units", "recipe_categories", "purchases", "events")
    before = {t: store.count(t) for t in catalog}
    report, result = import_legacy(store, SINGLE, merge=True)
    assert {t: store.count(t) for t in catalog} == before
    assert report.entities["products"].existing == 4 and report.entities["recipes"].existing == 3
    # What only the single file has is added: recipients, packages, assignments, planning rows.
    for table in ("recipients", "packages", "event_recipient_packages", "event_recipes", "event_finished_goods",
                  "batch_decisions", "assembly_runs"):
        assert result.diff[table].added == 1, table


def test_coordinated_only_entities_depletions_and_snapshots(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "backup"
    shutil.copytree(FOLDER, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    extra = {
        "inventory_depletions": [{"uuid": "0f6b3d51-7d3b-4f0f-9b1e-2f8c9c1f0a01", "inventory_item_ref": "sugar:C&H:2.0:lb",
                                  "quantity_depleted": "1.000", "depletion_reason": "production",
                                  "depletion_date": "2025-12-01T09:00:00", "notes": None, "cost": None,
                                  "created_by": None, "created_at": "2025-12-01T09:00:00"}],
        "recipe_snapshots": [{"uuid": "0f6b3d51-7d3b-4f0f-9b1e-2f8c9c1f0a02", "recipe_slug": "sugar-cookies",
                              "snapshot_date": "2025-12-01T09:00:00", "scale_factor": 1.0, "is_backfilled": False,
                              "recipe_data": "{\"name\": \"Sugar Cookies\"}", "ingredients_data": "[]"}],
        "finished_unit_snapshots": [{"uuid": "0f6b3d51-7d3b-4f0f-9b1e-2f8c9c1f0a03",
                                     "finished_unit_slug": "sugar-cookie", "snapshot_date": "2025-12-01T09:00:00",
                                     "is_backfilled": True, "definition_data": {"slug": "sugar-cookie"}}],
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["entity_type"] in extra:
            raw = json.dumps({"version": "1.0", "entity_type": entry["entity_type"],
                              "records": extra[entry["entity_type"]]}, indent=2).encode()
            (folder / entry["filename"]).write_bytes(raw)
            entry["sha256"] = hashlib.sha256(raw).hexdigest()
            entry["record_count"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    report, _ = import_legacy(store, folder)
    depletion = rows(store, "inventory_depletions")[0]
    assert depletion["cost"] == 0.0 and depletion["quantity_depleted"] == 1.0
    lot = rows(store, "inventory_items", id=depletion["inventory_item_id"])[0]
    assert lot["quantity"] == 4.0  # the one C&H lot
    snapshot = rows(store, "finished_unit_snapshots")[0]
    assert json.loads(snapshot["definition_data"]) == {"slug": "sugar-cookie"} and snapshot["is_backfilled"] == 1
    assert rows(store, "recipe_snapshots")[0]["recipe_data"] == "{\"name\": \"Sugar Cookies\"}"
    assert any("local time" in n for n in report.entities["inventory_depletions"].notes)


def test_a_coordinated_composition_without_parent_is_refused_by_name(tmp_path: Path, store: Store) -> None:
    """R6: a package parent is not written; bakestore names the record instead of failing the CHECK."""
    folder = tmp_path / "backup"
    shutil.copytree(FOLDER, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    comp_path = folder / "compositions.json"
    data = json.loads(comp_path.read_text())
    data["records"][1]["assembly_slug"] = None
    raw = json.dumps(data, indent=2).encode()
    comp_path.write_bytes(raw)
    manifest = json.loads((folder / "manifest.json").read_text())
    next(e for e in manifest["files"] if e["entity_type"] == "compositions")["sha256"] = hashlib.sha256(raw).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with pytest.raises(LegacyFormatError, match="compositions\\[1\\].*assembly_slug.*package parent"):
        import_legacy(store, folder)
    report, _ = import_legacy(store, folder, skip_invalid=True)
    assert store.count("compositions") == 1 and report.problems[0].kind == "unsupported"


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


def test_mutated_files_are_imported_consistently_or_refused_never_crash(tmp_path: Path) -> None:
    """Any field of the sample set to a wrong value or removed: a LegacyFormatError, or rows whose
    foreign keys all point at rows of the same source (skip-invalid included)."""
    import random

    from bakestore.registry import REGISTRY

    rnd = random.Random(20260208)
    src = single()
    paths = list(_paths(src))
    for case in range(150):
        data = copy.deepcopy(src)
        path = rnd.choice(paths)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if rnd.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rnd.choice([None, 0, -3, 2.5, "x", "", [], {}, True, "2025-02-30", "LOCKED"])
        file = write(tmp_path, data, f"case{case}.json")
        for skip in (False, True):
            try:
                translation = translate(file, device_id=DEVICE, skip_invalid=skip)
            except LegacyFormatError:
                continue
            source = translation.source.rows_by_table
            ids = {t: {r["id"] for r in rows_} for t, rows_ in source.items()}
            for table, rows_ in source.items():
                for fk in REGISTRY[table].foreign_keys:
                    for row in rows_:
                        assert row[fk.column] is None or row[fk.column] in ids.get(fk.other_table, ()), (path, table)
            report = translation.report
            assert all(e.accounted == e.read for e in report.entities.values()), path


def test_the_upstream_format_maps_name_only_registry_tables() -> None:
    """The upstream key lists describe the upstream files; the tables they feed must be real ones."""
    from bakestore.legacy.coordinated import FILES
    from bakestore.legacy.single import ARRAYS
    from bakestore.registry import REGISTRY

    assert len(ARRAYS) == 31 and len(FILES) == 24
    for _key, table in ARRAYS + FILES:
        assert table in REGISTRY, table
    manifest = json.loads((FOLDER / "manifest.json").read_text(encoding="utf-8"))
    assert {e["entity_type"] for e in manifest["files"]} == {entity for entity, _ in FILES}
    src = single()
    assert [k for k in src if k not in ("version", "exported_at", "application")] == [k for k, _ in ARRAYS][:29]


def test_records_under_an_unknown_key_are_refused_unless_skip_invalid(tmp_path: Path, store: Store) -> None:
    data = single()
    data["shopping_lists"] = [{"name": "Christmas", "items": 12}]
    data["transformation_notes"] = "renamed two slugs by hand"  # loose notes stay tolerated
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LegacyFormatError, match="'shopping_lists' \\(1\\)"):
        translate(path, store=store)
    translation = translate(path, store=store, skip_invalid=True)
    assert any("shopping_lists" in w for w in translation.report.warnings)
    assert "transformation_notes" in translation.report.extra_keys
