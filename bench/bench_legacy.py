"""Benchmark: ``import-legacy`` of a realistic upstream v4.1 single-file export of ~1,000 records.

The file is synthetic but shaped exactly like the upstream exporter's output (formats page §2):
raw integer ids on suppliers and purchases, products without ids (so purchases are resolved by
their description and lot package size), name references for recipes/events/recipients/packages,
pseudo-slugs for variant bases, nested recipe lines, components and finished-unit copies,
zero prices written as null, naive timestamps and the ``+00:00Z`` header.

Measured: JSON parse (the floor any importer pays), translation (detect, value rules, reference
resolution, per-record validation), the restore pipeline (fresh file, validation, shrink guard,
restore point, swap, audit), and the total against the **2 s target**.

Run: ``.venv/bin/python bench/bench_legacy.py [--records 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import print_header, print_line, scratch_dir, timer  # noqa: E402

from bakestore.legacy import apply, translate  # noqa: E402
from bakestore.store import Store  # noqa: E402

TARGET_SECONDS = 2.0
DEVICE = "c" * 32

#: Share of the top-level records per entity (the nested arrays come on top).
MIX = {
    "suppliers": 0.008, "ingredients": 0.10, "products": 0.15, "purchases": 0.15, "inventory_items": 0.15,
    "recipes": 0.06, "finished_units": 0.06, "finished_goods": 0.02, "compositions": 0.04, "packages": 0.01,
    "package_finished_goods": 0.01, "recipients": 0.025, "events": 0.004, "event_recipient_packages": 0.04,
    "event_production_targets": 0.02, "event_assembly_targets": 0.01, "production_runs": 0.03,
    "assembly_runs": 0.01, "material_products": 0.012, "material_units": 0.016, "event_recipes": 0.02,
    "event_finished_goods": 0.01, "batch_decisions": 0.02, "plan_amendments": 0.005,
}


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _ts(rnd: random.Random) -> str:
    return f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:" \
           f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}.{rnd.randint(0, 999999):06d}"


def _date(rnd: random.Random) -> str:
    return f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"


def generate(records: int, seed: int = 11) -> dict[str, Any]:
    """A v4.1 export with about ``records`` top-level records, every reference resolvable."""
    rnd = random.Random(seed)
    n = {k: max(1, round(records * share)) for k, share in MIX.items()}
    units = ["lb", "oz", "g", "kg", "cup", "count"]
    out: dict[str, Any] = {"version": "4.1", "exported_at": "2026-11-25T11:23:10.061103+00:00Z",
                           "application": "bake-tracker"}

    suppliers = []
    for i in range(n["suppliers"]):
        online = i % 3 == 0
        suppliers.append({"id": i * 2 + 1, "uuid": _uuid(rnd), "slug": f"store_{i}", "name": f"Store {i}",
                          "supplier_type": "online" if online else "physical",
                          "city": None if online else "Boston", "state": None if online else "MA",
                          "zip_code": None if online else "02101", "is_active": True,
                          "created_at": _ts(rnd), "updated_at": _ts(rnd)})
    out["suppliers"] = suppliers

    roots = [{"display_name": f"Group {g}", "slug": f"group_{g}", "category": f"Group {g}", "hierarchy_level": 0}
             for g in range(3)]
    mids = [{"display_name": f"Family {m}", "slug": f"family_{m}", "category": "Mixed", "hierarchy_level": 1,
             "parent_slug": f"group_{m % 3}"} for m in range(9)]
    leaves = [{"display_name": f"Ingredient {i}", "slug": f"ingredient_{i}", "category": "Mixed", "hierarchy_level": 2,
               "parent_slug": f"family_{i % 9}", "density_volume_value": 1.0, "density_volume_unit": "cup",
               "density_weight_value": 4.25, "density_weight_unit": "oz", "allergens": ["gluten"] if i % 7 == 0 else []}
              for i in range(max(1, n["ingredients"] - 12))]
    out["ingredients"] = roots + mids + leaves

    products = []
    for i in range(n["products"]):
        leaf = leaves[i % len(leaves)]
        # Every third product is a second package size of the one before: same description.
        same_as_previous = i % 3 == 2 and products and products[-1]["ingredient_slug"] == leaf["slug"]
        if same_as_previous:
            product = dict(products[-1], package_unit_quantity=products[-1]["package_unit_quantity"] * 2)
        else:
            product = {"ingredient_slug": leaf["slug"], "package_unit": units[i % len(units)],
                       "package_unit_quantity": float(1 + i % 10), "brand": f"Brand {i % 17}",
                       "preferred_supplier_slug": None, "preferred_supplier_name": None, "is_hidden": False}
            if i % 4 == 0:
                product["product_name"] = f"Product {i}"
            if i % 5 == 0:
                supplier = suppliers[i % len(suppliers)]
                product.update(preferred_supplier_id=supplier["id"], preferred_supplier_slug=supplier["slug"])
        products.append(product)
    out["products"] = products

    purchases, lots = [], []
    for i in range(n["purchases"]):
        product = products[i % len(products)]
        supplier = suppliers[i % len(suppliers)]
        price = None if i % 25 == 0 else f"{rnd.uniform(1, 40):.4f}"  # zero written as null
        purchase = {"id": 100 + i * 3, "uuid": _uuid(rnd), "product_id": 1000 + (i % len(products)) * 2,
                    "supplier_id": supplier["id"], "ingredient_slug": product["ingredient_slug"],
                    "product_brand": product.get("brand", ""), "purchase_date": _date(rnd),
                    "quantity_purchased": 1 + i % 4, "unit_price": price, "package_unit": product["package_unit"],
                    "created_at": _ts(rnd)}
        if product.get("product_name"):
            purchase["product_name"] = product["product_name"]
        purchases.append(purchase)
        if len(lots) < n["inventory_items"]:
            lot = {"ingredient_slug": product["ingredient_slug"], "product_brand": product.get("brand", ""),
                   "quantity": float(1 + i % 6), "purchase_date": purchase["purchase_date"],
                   "package_unit": product["package_unit"], "package_unit_quantity": product["package_unit_quantity"],
                   "purchase_id": purchase["id"]}
            if product.get("product_name"):
                lot["product_name"] = product["product_name"]
            lots.append(lot)
    out["purchases"], out["inventory_items"] = purchases, lots

    recipes, finished_units = [], []
    for i in range(n["recipes"]):
        name = f"Recipe {i}"
        unit_slug = f"recipe-{i}-unit"
        base = f"recipe_{i - 1}" if i % 6 == 5 else None  # the exporter's pseudo-slug
        recipe = {"name": name, "category": ["Cookies", "Cakes", "Breads", "Bars"][i % 4],
                  "base_recipe_slug": base, "variant_name": "Variant" if base else None,
                  "is_production_ready": i % 2 == 0,
                  "finished_units": [{"slug": unit_slug, "name": f"Unit {i}", "yield_mode": "discrete_count",
                                      "unit_yield_quantity": 24, "unit_yield_unit": "cookie"}],
                  "ingredients": [{"ingredient_slug": leaves[(i * 7 + k) % len(leaves)]["slug"],
                                   "quantity": 0.5 + k, "unit": "cup"} for k in range(6)],
                  "components": [{"recipe_name": f"Recipe {i - 1}", "quantity": 1.0}] if i % 10 == 9 else []}
        recipes.append(recipe)
        finished_units.append({"slug": unit_slug, "recipe_name": name, "display_name": f"Unit {i}",
                               "yield_mode": "discrete_count", "yield_type": "EA" if i % 2 else "SERVING",
                               "items_per_batch": 24, "item_unit": "cookie"})
    out["recipes"], out["finished_units"] = recipes, finished_units[:n["finished_units"]]

    goods = [{"slug": f"box-{i}", "display_name": f"Box {i}", "assembly_type": "bundle"}
             for i in range(n["finished_goods"])]
    out["finished_goods"] = goods

    out["material_categories"] = [{"uuid": _uuid(rnd), "name": f"Material group {i}", "slug": f"mat-group-{i}",
                                   "description": None, "sort_order": i} for i in range(2)]
    out["material_subcategories"] = [{"uuid": _uuid(rnd), "category_slug": f"mat-group-{i % 2}",
                                      "name": f"Sub {i}", "slug": f"mat-sub-{i}", "description": None,
                                      "sort_order": i} for i in range(4)]
    out["materials"] = [{"uuid": _uuid(rnd), "subcategory_slug": f"mat-sub-{i % 4}", "name": f"Material {i}",
                         "slug": f"material-{i}", "base_unit_type": "linear_cm", "description": None}
                        for i in range(8)]
    out["material_products"] = [{"uuid": _uuid(rnd), "material_slug": f"material-{i % 8}", "name": f"Roll {i}",
                                 "slug": f"roll-{i}", "brand": None, "package_quantity": 1.0, "package_unit": "roll",
                                 "quantity_in_base_units": 1000.0, "supplier_slug": suppliers[0]["slug"],
                                 "sku": None, "is_hidden": False, "notes": None}
                                for i in range(n["material_products"])]
    out["material_units"] = [{"uuid": _uuid(rnd), "material_product_slug": f"roll-{i % n['material_products']}",
                              "name": f"Bow {i}", "slug": f"bow-{i}", "quantity_per_unit": 30.0, "description": None}
                             for i in range(n["material_units"])]

    compositions = []
    for i in range(n["compositions"]):
        good = goods[i % len(goods)]
        comp = {"component_quantity": 1.0 + i % 3, "sort_order": i % 4, "finished_good_slug": good["slug"],
                "package_name": None, "finished_unit_slug": None, "finished_good_component_slug": None,
                "packaging_product_id": None, "material_unit_slug": None, "is_generic": False}
        if i % 2:
            comp["material_unit_slug"] = f"bow-{(i // len(goods)) % n['material_units']}"
        else:
            comp["finished_unit_slug"] = finished_units[(i // len(goods)) % len(finished_units)]["slug"]
        compositions.append(comp)
    # Keep (parent, component) pairs unique, as the schema requires.
    seen, unique = set(), []
    for comp in compositions:
        key = (comp["finished_good_slug"], comp["finished_unit_slug"], comp["material_unit_slug"])
        if key not in seen:
            seen.add(key)
            unique.append(comp)
    out["compositions"] = unique

    out["packages"] = [{"name": f"Tin {i}", "is_template": i == 0} for i in range(n["packages"])]
    out["package_finished_goods"] = [{"package_name": f"Tin {i % n['packages']}",
                                      "finished_good_slug": goods[i % len(goods)]["slug"], "quantity": 1 + i % 3}
                                     for i in range(n["package_finished_goods"])]
    out["recipients"] = [{"name": f"Friend {i}", "household_name": f"House {i // 2}"} for i in range(n["recipients"])]
    events = [{"name": f"Event {i}", "event_date": f"2025-{1 + i % 12:02d}-{1 + i // 12 % 28:02d}", "year": 2025,
               "output_mode": "bundled" if i % 2 else "bulk_count", "plan_state": "locked", "expected_attendees": 20}
              for i in range(n["events"])]
    out["events"] = events
    out["event_recipient_packages"] = [
        {"event_name": events[i % len(events)]["name"], "recipient_name": f"Friend {i % n['recipients']}",
         "package_name": f"Tin {i % n['packages']}", "quantity": 1, "status": "pending",
         "fulfillment_status": "pending"} for i in range(n["event_recipient_packages"])]

    def pairs(count: int, width: int) -> list[tuple[int, int]]:
        return [(e, r) for e in range(len(events)) for r in range(width)][:count]

    out["event_production_targets"] = [{"event_name": events[e]["name"], "recipe_name": f"Recipe {r}",
                                        "target_batches": 1 + r % 3}
                                       for e, r in pairs(n["event_production_targets"], len(recipes))]
    out["event_assembly_targets"] = [{"event_name": events[e]["name"], "finished_good_slug": goods[g]["slug"],
                                      "target_quantity": 1 + g % 4}
                                     for e, g in pairs(n["event_assembly_targets"], len(goods))]
    out["production_records"] = []
    out["production_runs"] = [{"event_name": events[i % len(events)]["name"], "recipe_name": f"Recipe {i % len(recipes)}",
                               "num_batches": 1 + i % 2, "actual_yield": 24, "produced_at": _ts(rnd)[:19] + "Z"}
                              for i in range(n["production_runs"])]
    out["assembly_runs"] = [{"event_name": events[i % len(events)]["name"], "finished_good_slug": goods[i % len(goods)]["slug"],
                             "quantity_assembled": 1 + i % 3, "assembled_at": _ts(rnd)[:19] + "Z"}
                            for i in range(n["assembly_runs"])]
    out["recipe_categories"] = [{"uuid": _uuid(rnd), "name": name, "slug": name.lower(), "sort_order": 10 * (i + 1),
                                 "description": None}
                                for i, name in enumerate(["Cakes", "Cookies", "Candies", "Brownies", "Bars", "Breads",
                                                          "Other"])]
    out["event_recipes"] = [{"event_name": events[e]["name"], "recipe_name": f"Recipe {r}", "created_at": _ts(rnd)}
                            for e, r in pairs(n["event_recipes"], len(recipes))]
    out["event_finished_goods"] = [{"event_name": events[e]["name"], "finished_good_name": goods[g]["display_name"],
                                    "quantity": 2, "created_at": _ts(rnd), "updated_at": _ts(rnd)}
                                   for e, g in pairs(n["event_finished_goods"], len(goods))]
    out["batch_decisions"] = [{"event_name": events[e]["name"], "recipe_name": f"Recipe {r}", "batches": 2,
                               "finished_unit_name": f"Unit {r}", "created_at": _ts(rnd), "updated_at": _ts(rnd)}
                              for e, r in pairs(n["batch_decisions"], len(recipes))]
    out["plan_amendments"] = [{"event_name": events[i % len(events)]["name"], "amendment_type": "modify_batch",
                               "amendment_data": {"recipe": f"Recipe {i}", "from": 2, "to": 3}, "reason": "more guests",
                               "created_at": _ts(rnd)} for i in range(n["plan_amendments"])]
    return out


def count_records(data: dict[str, Any]) -> tuple[int, int]:
    top = sum(len(v) for v in data.values() if isinstance(v, list))
    nested = sum(len(r["ingredients"]) + len(r["components"]) + len(r["finished_units"]) for r in data["recipes"])
    return top, nested


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", "--rows", type=int, default=1000, help="top-level records (default 1000)")
    args, _unknown = parser.parse_known_args(argv)
    print_header(f"legacy import: upstream v4.1 single file, ~{args.records} records")
    with scratch_dir("bakestore-bench-legacy-") as tmp:
        os.environ.setdefault("BAKESTORE_HOME", str(tmp / "home"))
        data = generate(args.records)
        path = tmp / "baketracker_export.json"
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        top, nested = count_records(data)
        print(f"   file: {path.stat().st_size / 1024:.0f} KiB, {top} top-level + {nested} nested records")
        with timer() as parse:
            json.loads(path.read_text(encoding="utf-8"))
        with Store(tmp / "live.db", device_id=DEVICE) as store:
            with timer() as total:
                with timer() as step1:
                    translation = translate(path, store=store)
                with timer() as step2:
                    result = apply(store, translation)
            rows = sum(d.after for d in result.diff.values())
        refused = len(translation.report.problems)
        print_line("json parse (floor)", parse.seconds)
        print_line("translate", step1.seconds, translation.report.total_rows)
        print_line("restore pipeline", step2.seconds, translation.report.total_rows)
        print_line("import-legacy total", total.seconds, translation.report.total_rows,
                   f"target < {TARGET_SECONDS:.1f} s: {'OK' if total.seconds < TARGET_SECONDS else 'MISSED'}")
        print(f"   {translation.report.total_rows} rows imported ({rows} in the store incl. seeds), {refused} refused")
        return 0 if total.seconds < TARGET_SECONDS and refused == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
