"""The upstream sample files import completely, field by field, and survive bakestore's own round trip.

Expected values are read from the sample files themselves (never copied from the importer's
output), so a test fails when the importer drops, mangles or misattaches anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bakestore import LegacyFormatError, Store
from bakestore.legacy import import_legacy

from .conftest import LEGACY_SAMPLES as LEGACY

SINGLE = LEGACY / "sample_single_v4.json"
FOLDER = LEGACY / "sample_coordinated_backup"
MINIMAL = LEGACY / "sample_data_min.json"
DEVICE = "1" * 32


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def records(name: str) -> list[dict[str, Any]]:
    return load(FOLDER / f"{name}.json")["records"]


def ts(text: str) -> str:
    """The canonical form of an upstream naive-UTC timestamp: milliseconds kept, a Z added."""
    text = text.removesuffix("Z")
    date, _, time = text.partition("T")
    whole, _, fraction = time.partition(".")
    return f"{date}T{whole}.{(fraction + '000')[:3]}Z"


def one(store: Store, table: str, **where: Any) -> dict[str, Any]:
    clause = " AND ".join(f'"{k}" IS ?' for k in where)
    rows = list(store.rows(table, where=clause, params=list(where.values())))
    assert len(rows) == 1, f"{table} {where}: {len(rows)} rows"
    return rows[0]


def by_id(store: Store, table: str, row_id: str) -> dict[str, Any]:
    return one(store, table, id=row_id)


# --------------------------------------------------------------------------- single-file v4.1


def test_single_file_counts_equal_the_source(store: Store) -> None:
    src = load(SINGLE)
    report, result = import_legacy(store, SINGLE)
    assert not result.dry_run and result.audit_id and result.restore_point
    for key in ("suppliers", "ingredients", "products", "purchases", "inventory_items", "recipes", "finished_units",
                "finished_goods", "compositions", "packages", "package_finished_goods", "recipients", "events",
                "event_recipient_packages", "event_production_targets", "event_assembly_targets",
                "production_records", "production_runs", "assembly_runs", "material_categories",
                "material_subcategories", "materials", "material_products", "material_units", "recipe_categories",
                "event_recipes", "event_finished_goods", "batch_decisions", "plan_amendments"):
        assert store.count(key) == len(src[key]), key
    assert store.count("recipe_ingredients") == sum(len(r["ingredients"]) for r in src["recipes"])
    assert store.count("recipe_components") == sum(len(r["components"]) for r in src["recipes"])
    # No invented rows: no BARE finished goods, default finished units or extra compositions (S10).
    assert store.count("finished_goods") == 1 and store.count("compositions") == 2
    assert not report.problems
    for entity in report.entities.values():
        assert entity.accounted == entity.read, entity.entity


def test_single_file_fields(store: Store) -> None:
    src = load(SINGLE)
    import_legacy(store, SINGLE)

    suppliers_by_raw = {s["id"]: s for s in src["suppliers"]}
    for s in src["suppliers"]:
        row = one(store, "suppliers", slug=s["slug"])
        assert row["id"] == s["uuid"]
        assert (row["name"], row["city"], row["state"], row["zip_code"], row["supplier_type"]) == \
            (s["name"], s["city"], s["state"], s["zip_code"], s["supplier_type"])
        assert row["is_active"] == int(s["is_active"])
        assert row["created_at"] == ts(s["created_at"]) and row["updated_at"] == ts(s["updated_at"])

    for ing in src["ingredients"]:
        row = one(store, "ingredients", slug=ing["slug"])
        assert (row["display_name"], row["category"], row["hierarchy_level"]) == \
            (ing["display_name"], ing["category"], ing["hierarchy_level"])
        if ing.get("parent_slug"):
            assert by_id(store, "ingredients", row["parent_ingredient_id"])["slug"] == ing["parent_slug"]
        else:
            assert row["parent_ingredient_id"] is None

    for p in src["products"]:
        ingredient = one(store, "ingredients", slug=p["ingredient_slug"])
        row = one(store, "products", ingredient_id=ingredient["id"], brand=p.get("brand"),
                  package_unit_quantity=p["package_unit_quantity"])
        assert row["product_name"] == p.get("product_name") and row["package_unit"] == p["package_unit"]
        if p.get("preferred_supplier_slug"):
            assert by_id(store, "suppliers", row["preferred_supplier_id"])["slug"] == p["preferred_supplier_slug"]
        else:
            assert row["preferred_supplier_id"] is None

    # Purchases land on the right product (M1): the file's raw product ids are not array positions,
    # so the expected product is the one whose description and lot package size match.
    lots_by_purchase = {lot["purchase_id"]: lot for lot in src["inventory_items"]}
    for pur in src["purchases"]:
        row = by_id(store, "purchases", pur["uuid"])
        product = by_id(store, "products", row["product_id"])
        lot = lots_by_purchase[pur["id"]]
        assert by_id(store, "ingredients", product["ingredient_id"])["slug"] == pur["ingredient_slug"]
        assert product["brand"] == pur["product_brand"]
        assert product["product_name"] == pur.get("product_name")
        assert product["package_unit_quantity"] == lot["package_unit_quantity"]
        assert row["unit_price"] == float(pur["unit_price"])
        assert row["quantity_purchased"] == pur["quantity_purchased"]
        assert row["purchase_date"] == pur["purchase_date"]
        assert by_id(store, "suppliers", row["supplier_id"])["slug"] == suppliers_by_raw[pur["supplier_id"]]["slug"]
        assert row["created_at"] == ts(pur["created_at"])

    purchases_by_raw = {p["id"]: p for p in src["purchases"]}
    for lot in src["inventory_items"]:
        purchase = purchases_by_raw[lot["purchase_id"]]
        row = one(store, "inventory_items", purchase_id=purchase["uuid"])  # the lot↔purchase link survives
        product = by_id(store, "products", row["product_id"])
        assert product["package_unit_quantity"] == lot["package_unit_quantity"]
        assert (row["quantity"], row["purchase_date"]) == (lot["quantity"], lot["purchase_date"])

    recipes = {r["name"]: r for r in src["recipes"]}
    for name, rec in recipes.items():
        row = one(store, "recipes", name=name)
        assert row["category"] == rec["category"] and row["variant_name"] == rec["variant_name"]
        assert row["is_production_ready"] == int(rec["is_production_ready"])
        if rec["base_recipe_slug"]:
            base = by_id(store, "recipes", row["base_recipe_id"])
            assert base["name"].lower().replace(" ", "_") == rec["base_recipe_slug"]
        lines = list(store.rows("recipe_ingredients", where="recipe_id = ?", params=[row["id"]]))
        assert sorted((by_id(store, "ingredients", l["ingredient_id"])["slug"], l["quantity"], l["unit"])
                      for l in lines) == sorted((l["ingredient_slug"], l["quantity"], l["unit"])
                                                for l in rec["ingredients"])
        components = list(store.rows("recipe_components", where="recipe_id = ?", params=[row["id"]]))
        assert sorted((by_id(store, "recipes", c["component_recipe_id"])["name"], c["quantity"])
                      for c in components) == sorted((c["recipe_name"], c["quantity"]) for c in rec["components"])

    for fu in src["finished_units"]:
        row = one(store, "finished_units", slug=fu["slug"])
        assert by_id(store, "recipes", row["recipe_id"])["name"] == fu["recipe_name"]
        assert (row["display_name"], row["yield_mode"], row["yield_type"], row["items_per_batch"], row["item_unit"]) \
            == (fu["display_name"], fu["yield_mode"], fu["yield_type"], fu["items_per_batch"], fu["item_unit"])

    for fg in src["finished_goods"]:
        row = one(store, "finished_goods", slug=fg["slug"])
        assert (row["display_name"], row["assembly_type"]) == (fg["display_name"], fg["assembly_type"])

    for comp in src["compositions"]:
        parent = one(store, "finished_goods", slug=comp["finished_good_slug"])
        if comp["material_unit_slug"]:
            unit = one(store, "material_units", slug=comp["material_unit_slug"])
            row = one(store, "compositions", assembly_id=parent["id"], material_unit_id=unit["id"])
        else:
            unit = one(store, "finished_units", slug=comp["finished_unit_slug"])
            row = one(store, "compositions", assembly_id=parent["id"], finished_unit_id=unit["id"])
        assert (row["component_quantity"], row["sort_order"]) == (comp["component_quantity"], comp["sort_order"])

    event_src = src["events"][0]
    event = one(store, "events", name=event_src["name"])
    assert event["plan_state"] == event_src["plan_state"] == "locked"  # plan state survives (S3)
    assert event["expected_attendees"] == event_src["expected_attendees"]
    assert (event["event_date"], event["year"], event["output_mode"]) == \
        (event_src["event_date"], event_src["year"], event_src["output_mode"])

    erp_src = src["event_recipient_packages"][0]
    erp = one(store, "event_recipient_packages", event_id=event["id"])
    assert by_id(store, "recipients", erp["recipient_id"])["name"] == erp_src["recipient_name"]
    assert by_id(store, "packages", erp["package_id"])["name"] == erp_src["package_name"]
    assert (erp["quantity"], erp["status"], erp["fulfillment_status"]) == \
        (erp_src["quantity"], erp_src["status"], erp_src["fulfillment_status"])

    target = one(store, "event_production_targets", event_id=event["id"])
    assert by_id(store, "recipes", target["recipe_id"])["name"] == src["event_production_targets"][0]["recipe_name"]
    assert target["target_batches"] == src["event_production_targets"][0]["target_batches"]

    efg_src = src["event_finished_goods"][0]
    efg = one(store, "event_finished_goods", event_id=event["id"])
    assert by_id(store, "finished_goods", efg["finished_good_id"])["display_name"] == efg_src["finished_good_name"]
    assert efg["quantity"] == efg_src["quantity"] and efg["created_at"] == ts(efg_src["created_at"])

    bd_src = src["batch_decisions"][0]
    bd = one(store, "batch_decisions", event_id=event["id"])
    assert by_id(store, "finished_units", bd["finished_unit_id"])["display_name"] == bd_src["finished_unit_name"]
    assert by_id(store, "recipes", bd["recipe_id"])["name"] == bd_src["recipe_name"]
    assert bd["batches"] == bd_src["batches"]

    assert by_id(store, "recipes", one(store, "event_recipes", event_id=event["id"])["recipe_id"])["name"] == \
        src["event_recipes"][0]["recipe_name"]

    run_src = src["production_runs"][0]
    run = one(store, "production_runs", event_id=event["id"])
    recipe = by_id(store, "recipes", run["recipe_id"])
    assert recipe["name"] == run_src["recipe_name"]
    # No finished unit in this format (R5): the recipe's only one.
    only_unit = [fu["slug"] for fu in src["finished_units"] if fu["recipe_name"] == run_src["recipe_name"]]
    assert [by_id(store, "finished_units", run["finished_unit_id"])["slug"]] == only_unit
    assert (run["num_batches"], run["actual_yield"]) == (run_src["num_batches"], run_src["actual_yield"])
    assert run["produced_at"] == ts(run_src["produced_at"])

    asm_src = src["assembly_runs"][0]
    asm = one(store, "assembly_runs", event_id=event["id"])
    assert by_id(store, "finished_goods", asm["finished_good_id"])["slug"] == asm_src["finished_good_slug"]
    assert asm["quantity_assembled"] == asm_src["quantity_assembled"]
    assert asm["assembled_at"] == ts(asm_src["assembled_at"])

    for key, table in (("material_categories", "material_categories"), ("material_subcategories",
                       "material_subcategories"), ("materials", "materials"), ("material_products",
                       "material_products"), ("material_units", "material_units"),
                       ("recipe_categories", "recipe_categories")):
        for item in src[key]:
            row = by_id(store, table, item["uuid"])  # upstream uuids are kept as ids
            assert row["slug"] == item["slug"] and row["name"] == item["name"]
    mp = src["material_products"][0]
    assert by_id(store, "suppliers", by_id(store, "material_products", mp["uuid"])["supplier_id"])["slug"] == \
        mp["supplier_slug"]


# --------------------------------------------------------------------------- coordinated backup


def test_coordinated_counts_equal_the_manifest(store: Store) -> None:
    manifest = load(FOLDER / "manifest.json")
    report, _ = import_legacy(store, FOLDER)
    for entry in manifest["files"]:
        assert store.count(entry["entity_type"]) == entry["record_count"], entry["entity_type"]
    events = records("events")
    assert store.count("event_production_targets") == sum(len(e["production_targets"]) for e in events)
    assert store.count("event_assembly_targets") == sum(len(e["assembly_targets"]) for e in events)
    assert store.count("recipe_ingredients") == sum(len(r["ingredients"]) for r in records("recipes"))
    assert store.count("recipe_components") == sum(len(r["components"]) for r in records("recipes"))
    assert not report.problems


def test_coordinated_fields(store: Store) -> None:
    import_legacy(store, FOLDER / "manifest.json")  # the manifest path works as well as the folder
    manifest = load(FOLDER / "manifest.json")
    for entry in manifest["files"]:
        for item in records(entry["entity_type"]):
            by_id(store, entry["entity_type"], item["uuid"])  # every record keeps its uuid (S6)

    for p in records("products"):
        row = by_id(store, "products", p["uuid"])
        assert by_id(store, "ingredients", row["ingredient_id"])["slug"] == p["ingredient_slug"]
        for key in ("brand", "product_name", "package_unit", "package_unit_quantity", "brand_owner", "off_id",
                    "country_of_sale", "gtin"):
            assert row[key] == p[key], key
        assert row["created_at"] == ts(p["date_added"]) and row["updated_at"] == ts(p["last_modified"])

    products_by_key = {}
    for p in records("products"):
        products_by_key[f"{p['ingredient_slug']}:{p['brand']}:{p['package_unit_quantity']}:{p['package_unit']}"] = p
    for pur in records("purchases"):
        row = by_id(store, "purchases", pur["uuid"])
        # The product key includes the package size: two KA flour sizes are told apart (M2).
        assert row["product_id"] == products_by_key[pur["product_slug"]]["uuid"]
        assert by_id(store, "suppliers", row["supplier_id"])["slug"] == pur["supplier_slug"]  # not dropped (S1)
        assert row["unit_price"] == float(pur["unit_price"])
    for lot in records("inventory_items"):
        row = by_id(store, "inventory_items", lot["uuid"])
        assert row["product_id"] == products_by_key[lot["product_slug"]]["uuid"]
        assert (row["lot_or_batch"], row["unit_cost"], row["quantity"]) == \
            (lot["lot_or_batch"], lot["unit_cost"], lot["quantity"])
        assert row["last_updated"] == ts(lot["last_updated"])
        # No purchase reference in this format; the one purchase of that product and day is linked.
        same_day = [p["uuid"] for p in records("purchases")
                    if p["product_slug"] == lot["product_slug"] and p["purchase_date"] == lot["purchase_date"]]
        assert row["purchase_id"] == (same_day[0] if len(same_day) == 1 else None)

    for rec in records("recipes"):
        row = by_id(store, "recipes", rec["uuid"])
        assert row["slug"] == rec["slug"]
        if rec["base_recipe_slug"]:
            assert by_id(store, "recipes", row["base_recipe_id"])["slug"] == rec["base_recipe_slug"]
        for comp in rec["components"]:
            target = one(store, "recipes", slug=comp["component_recipe_slug"])
            one(store, "recipe_components", recipe_id=row["id"], component_recipe_id=target["id"])

    mp = records("material_purchases")[0]
    row = by_id(store, "material_purchases", mp["uuid"])
    assert (row["package_price"], row["unit_cost"], row["units_added"]) == \
        (float(mp["package_price"]), float(mp["unit_cost"]), mp["units_added"])
    mlot = records("material_inventory_items")[0]
    assert by_id(store, "material_inventory_items", mlot["uuid"])["material_purchase_id"] == mlot["purchase_uuid"]

    run_src = records("production_runs")[0]
    run = by_id(store, "production_runs", run_src["uuid"])
    assert run["produced_at"] == ts(run_src["produced_at"])  # time of day kept (S5)
    assert by_id(store, "finished_units", run["finished_unit_id"])["slug"] == run_src["finished_unit_slug"]
    assert (run["total_ingredient_cost"], run["per_unit_cost"], run["expected_yield"]) == \
        (float(run_src["total_ingredient_cost"]), float(run_src["per_unit_cost"]), run_src["expected_yield"])
    assert by_id(store, "events", run["event_id"])["name"] == run_src["event_name"]

    for sub in records("material_subcategories"):
        assert by_id(store, "material_subcategories", sub["uuid"])["sort_order"] == sub["sort_order"]


# --------------------------------------------------------------------------- sample_data_min.json


def referenced_slugs() -> list[str]:
    src = load(MINIMAL)
    slugs = [p["ingredient_slug"] for p in src["products"]]
    slugs += [line["ingredient_slug"] for r in src["recipes"] for line in r["ingredients"]]
    return list(dict.fromkeys(slugs))


def test_minimal_file_is_refused_into_an_empty_store_naming_the_missing_slugs(store: Store) -> None:
    slugs = referenced_slugs()
    assert len(slugs) == 50
    before = store.counts()
    with pytest.raises(LegacyFormatError) as caught:
        import_legacy(store, MINIMAL)
    message = str(caught.value)
    assert "sample_data_min.json" in message and "50 ingredient slugs" in message
    for slug in slugs[:10]:
        assert slug in message
    assert "+40 more" in message and "\n" not in message
    assert store.counts() == before


def test_minimal_file_merges_completely_into_a_store_with_its_ingredients(store: Store) -> None:
    src = load(MINIMAL)
    store.insert_many("ingredients", [{"slug": s, "display_name": s.replace("_", " ").title(), "category": "Pantry"}
                                      for s in referenced_slugs()])
    report, result = import_legacy(store, MINIMAL, merge=True)
    assert not report.problems
    assert store.count("ingredients") == 50
    assert store.count("products") == len(src["products"])
    assert store.count("recipes") == len(src["recipes"])
    assert store.count("recipe_ingredients") == sum(len(r["ingredients"]) for r in src["recipes"])
    assert store.count("finished_units") == sum(len(r["finished_units"]) for r in src["recipes"])
    assert store.count("events") == len(src["events"])
    assert result.diff["products"].added == len(src["products"])
    for rec in src["recipes"]:
        row = one(store, "recipes", slug=rec["slug"])  # the file's real slugs are used
        if rec["base_recipe_slug"]:
            assert by_id(store, "recipes", row["base_recipe_id"])["slug"] == rec["base_recipe_slug"]
        for unit in rec["finished_units"]:
            fu = one(store, "finished_units", slug=unit["slug"])
            assert fu["recipe_id"] == row["id"] and fu["display_name"] == unit["name"]
            assert fu["items_per_batch"] == unit["unit_yield_quantity"] and fu["item_unit"] == unit["unit_yield_unit"]
    for p in src["products"]:
        ingredient = one(store, "ingredients", slug=p["ingredient_slug"])
        row = one(store, "products", ingredient_id=ingredient["id"], brand=p["brand"])
        assert (row["upc_code"], row["package_unit"], row["package_unit_quantity"]) == \
            (p.get("upc_code"), p["package_unit"], p["package_unit_quantity"])
    for ev in src["events"]:
        row = one(store, "events", name=ev["name"])
        assert row["event_date"] == ev["event_date"] and row["year"] == int(ev["event_date"][:4])
        assert row["notes"] == ev["notes"]
        assert row["output_mode"] == (ev["output_mode"] if ev["output_mode"] in ("bulk_count", "bundled") else None)
    # The lossy rules applied are reported, not silent.
    notes = {n for e in report.entities.values() for n in e.notes}
    assert any("packaged" in n for n in notes) and any("year" in n for n in notes)
    assert report.entities["events"].unused_keys["slug"] == len(src["events"])

    # Merging the same file again adds nothing: every record is recognised as already there.
    again, result2 = import_legacy(store, MINIMAL, merge=True)
    assert all(d.added == 0 for d in result2.diff.values())
    assert again.entities["products"].existing == len(src["products"])


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("sample", [SINGLE, FOLDER], ids=["single", "coordinated"])
def test_legacy_import_export_restore_export_is_byte_identical(tmp_path: Path, sample: Path) -> None:
    with Store(tmp_path / "a.db", device_id=DEVICE) as first:
        import_legacy(first, sample)
        one_export = first.export(tmp_path / "exports", name="one").path
    with Store(tmp_path / "b.db", device_id="2" * 32) as second:
        second.restore(one_export)
        two_export = second.export(tmp_path / "exports", name="two").path
    names = sorted(p.name for p in one_export.iterdir())
    assert names == sorted(p.name for p in two_export.iterdir())
    for name in names:
        assert (one_export / name).read_bytes() == (two_export / name).read_bytes(), name
