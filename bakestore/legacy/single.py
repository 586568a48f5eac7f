"""The single-file v4 JSON (``version`` 4.0–4.2): 29 entity arrays plus the spec-only 4.2 arrays.

What this reader does that the upstream importer did not (formats page §4):

* purchases are matched to their product by the product's description *and* package size — the
  raw ``product_id`` is meaningless outside the source database (M1) — and a purchase whose
  description fits several package sizes takes the size of the inventory lot created from it;
* every raw integer id (``supplier_id``, ``purchase_id``, ``preferred_supplier_id``, assignment
  ``inventory_item_id``) is resolved only within the file, and checked against the other
  reference written next to it;
* top-level ``finished_units``, ``event_recipient_packages`` and ``package_finished_goods`` are read
  from the keys the exporter actually writes (S7); no BARE finished good, composition or default
  finished unit is invented (S10, R4); production runs get the recipe's only finished unit (R5);
* recipients, packages, event assignments, planning rows, lot↔purchase links and plan state are
  kept (S2–S4).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from ..errors import LegacyFormatError
from ..sources import MemorySource
from .resolve import RefError, blank
from .translate import Rec, Translator
from .values import RecordReader, ValueProblem, to_int, to_real, to_timestamp

HEADER_KEYS: tuple[str, ...] = ("version", "exported_at", "application")

#: The upstream format's arrays, in the exporter's order, each with the bakestore table it feeds
#: (formats page §2.2; the last two are the 4.2 spec-only arrays, §2.6). This describes the
#: *upstream* file, which never changes; bakestore's own tables always come from the registry
#: (a test checks every table named here is a registry table).
ARRAYS: tuple[tuple[str, str], ...] = (
    ("suppliers", "suppliers"), ("ingredients", "ingredients"), ("products", "products"),
    ("purchases", "purchases"), ("inventory_items", "inventory_items"), ("recipes", "recipes"),
    ("finished_units", "finished_units"), ("finished_goods", "finished_goods"), ("compositions", "compositions"),
    ("packages", "packages"), ("package_finished_goods", "package_finished_goods"), ("recipients", "recipients"),
    ("events", "events"), ("event_recipient_packages", "event_recipient_packages"),
    ("event_production_targets", "event_production_targets"), ("event_assembly_targets", "event_assembly_targets"),
    ("production_records", "production_records"), ("production_runs", "production_runs"),
    ("assembly_runs", "assembly_runs"), ("material_categories", "material_categories"),
    ("material_subcategories", "material_subcategories"), ("materials", "materials"),
    ("material_products", "material_products"), ("material_units", "material_units"),
    ("recipe_categories", "recipe_categories"), ("event_recipes", "event_recipes"),
    ("event_finished_goods", "event_finished_goods"), ("batch_decisions", "batch_decisions"),
    ("plan_amendments", "plan_amendments"), ("material_purchases", "material_purchases"),
    ("material_inventory_items", "material_inventory_items"),
)
ENTITY_KEYS: frozenset[str] = frozenset(key for key, _ in ARRAYS)

PRODUCT_FIELDS = ("ingredient_slug", "product_brand", "product_name", "package_size", "package_unit")


class SingleFileTranslator(Translator):
    """Translates a parsed single-file v4 export into bakestore rows."""

    def translate(self) -> MemorySource:
        data = self.src.data
        self.report.extra_keys = [k for k in data if k not in HEADER_KEYS and k not in ENTITY_KEYS]
        # Notes and other loose keys are tolerated; a list of *records* under a key we do not know
        # is data (a newer upstream version?) and "losing nothing" means not importing without it.
        unknown_records = {k: len(data[k]) for k in self.report.extra_keys
                           if isinstance(data[k], list) and any(isinstance(item, dict) for item in data[k])}
        if unknown_records and not self.report.skip_invalid:
            listed = ", ".join(f"'{k}' ({n})" for k, n in unknown_records.items())
            raise LegacyFormatError(f"{self.label}: records under keys bakestore does not know: {listed}; "
                                    "refusing so that nothing is lost (--skip-invalid imports the rest and "
                                    "lists what was left out)")
        for key, count in unknown_records.items():
            self.report.warnings.append(f"skipped {count} record(s) under the unknown key '{key}' (--skip-invalid)")
        for key, _table in ARRAYS:
            if key in data and data[key] is not None and not isinstance(data[key], list):
                raise LegacyFormatError(f"{self.label}: '{key}' must be a list of records, got "
                                        f"{type(data[key]).__name__}")
        application = data.get("application")
        if application is not None and application != "bake-tracker":
            self.report.warnings.append(f"'application' is {application!r}, not 'bake-tracker'")
        if data.get("exported_at") is not None:
            try:
                to_timestamp(data["exported_at"], "exported_at")
            except ValueProblem as problem:
                self.report.warnings.append(f"header {problem}")
        self._learned_products: dict[int, str] = {}
        self._learned_raw: dict[str, int] = {}
        self._lots_by_purchase: dict[int, list[Mapping[str, Any]]] = {}
        for lot in data.get("inventory_items") or []:
            if isinstance(lot, dict) and isinstance(lot.get("purchase_id"), int):
                self._lots_by_purchase.setdefault(lot["purchase_id"], []).append(lot)

        d = data.get
        self.run("suppliers", "suppliers", d("suppliers"), self.supplier)
        self.ingredients("ingredients", d("ingredients"), dated=True)
        self.run("products", "products", d("products"), self.product)
        self.run("purchases", "purchases", d("purchases"), self.purchase)
        self.run("inventory_items", "inventory_items", d("inventory_items"), self.lot)
        nested = {**self.RECIPE_NESTED, "finished_units": ("recipes[].finished_units", "finished_units")}
        recipes = self.recipes(d("recipes"), nested=nested)
        self.run("finished_units", "finished_units", d("finished_units"), self.finished_unit)
        for rec, recipe_id in recipes:
            self.run_nested(rec, "finished_units", "recipes[].finished_units", "finished_units",
                            functools.partial(self.nested_unit, recipe_id=recipe_id))
        self.run("finished_goods", "finished_goods", d("finished_goods"), self.finished_good)
        self.run("packages", "packages", d("packages"), self.package)
        self.material_chain(d)
        self.run("compositions", "compositions", d("compositions"), self.composition,
                 nested={"assignments": ("compositions[].assignments", "composition_assignments")})
        self.run("package_finished_goods", "package_finished_goods", d("package_finished_goods"),
                 self.package_finished_good)
        self.run("recipients", "recipients", d("recipients"), self.recipient)
        self.run("events", "events", d("events"), self.event)
        self.run("event_recipient_packages", "event_recipient_packages", d("event_recipient_packages"),
                 self.assignment_of_package)
        self.run("event_production_targets", "event_production_targets", d("event_production_targets"),
                 self.production_target)
        self.run("event_assembly_targets", "event_assembly_targets", d("event_assembly_targets"),
                 self.assembly_target)
        self.run("production_records", "production_records", d("production_records"), self.production_record)
        self.run("production_runs", "production_runs", d("production_runs"), self.production_run)
        self.run("assembly_runs", "assembly_runs", d("assembly_runs"), self.assembly_run)
        self.run("recipe_categories", "recipe_categories", d("recipe_categories"), self.recipe_category)
        self.run("event_recipes", "event_recipes", d("event_recipes"), self.event_recipe)
        self.run("event_finished_goods", "event_finished_goods", d("event_finished_goods"), self.event_finished_good)
        self.run("batch_decisions", "batch_decisions", d("batch_decisions"), self.batch_decision)
        self.run("plan_amendments", "plan_amendments", d("plan_amendments"), self.plan_amendment)
        self.run("material_purchases", "material_purchases", d("material_purchases"), self.material_purchase)
        self.run("material_inventory_items", "material_inventory_items", d("material_inventory_items"),
                 self.material_lot)
        return self.finish()

    # ------------------------------------------------------------------ catalog

    def product(self, rec: Rec) -> None:
        r = rec.r
        raw_id = self.claim_raw(rec, "products")
        values = self.product_values(rec)
        values["preferred_supplier_id"] = self.preferred_supplier(rec)
        created, updated = self.timestamps(rec, dated=True)
        row_id = self.add(rec, "products", values, uuid=r.uuid(), created=created, updated=updated)
        self.resolver.add_raw("products", raw_id, row_id)

    def slug_and_raw(self, rec: Rec, table: str, slug_field: str, raw_field: str) -> str | None:
        """A reference written both as a slug and as a raw id of the source file: both must agree.

        A raw id the file cannot resolve at all (its suppliers carry no ids, or none with that
        id) leaves the slug to decide, noted; any other failure of either refuses the record.
        """
        r = rec.r
        slug = r.text(slug_field)
        raw = r.raw(raw_field)
        by_slug = self.resolver.one(table, "slug", slug, field=slug_field) if slug else None
        by_raw = None
        if raw is not None:
            try:
                by_raw = self.resolver.raw_one(table, raw, field=raw_field)
            except RefError as err:
                if by_slug is None or err.kind != "missing":
                    raise
                r.note(raw_field, "raw id not resolvable in this file: the slug was used")
        if by_slug and by_raw and by_slug != by_raw:
            raise RefError("conflict", raw_field, f"raw id {raw} and slug {slug!r} name different {table} "
                           f"({self.describe_row(table, by_raw)} and {self.describe_row(table, by_slug)})")
        return by_slug or by_raw

    def describe_row(self, table: str, row_id: str) -> str:
        row = self.row(table, row_id) or {}
        return repr(row.get("slug") or row.get("name") or row_id)

    def preferred_supplier(self, rec: Rec) -> str | None:
        """Slug first; the raw id must agree with it; the display name is the last resort."""
        r = rec.r
        found = self.slug_and_raw(rec, "suppliers", "preferred_supplier_slug", "preferred_supplier_id")
        name = r.text("preferred_supplier_name")
        if found:
            return found
        if name:
            try:
                return self.resolver.one("suppliers", "display", name, field="preferred_supplier_name")
            except RefError as err:
                if err.kind != "missing":
                    raise
            return self.resolver.one("suppliers", "name", name, field="preferred_supplier_name")
        return None

    # ------------------------------------------------------------------ purchases and lots

    def match_products(self, ingredient_id: str, brand: Any, name: Any, size: Any, unit: Any,
                       quantity: float | None) -> list[str]:
        """Products of one ingredient and brand whose written description fits exactly.

        Fields the single-file exporter omits when falsy are compared as null; a missing unit or
        quantity (never falsy for a product) is not compared.
        """
        found = []
        for candidate in self.resolver.candidates("products", "brand", (ingredient_id, blank(brand))):
            row = self.row("products", candidate) or {}
            if blank(row.get("product_name")) != blank(name) or blank(row.get("package_size")) != blank(size):
                continue
            if unit is not None and row.get("package_unit") != unit:
                continue
            if quantity is not None and float(row.get("package_unit_quantity") or 0) != float(quantity):
                continue
            found.append(candidate)
        return found

    def _described_product(self, r: RecordReader) -> tuple[list[str], str]:
        """Products matching a purchase's or lot's written description; the key shown in messages."""
        ingredient = r.text("ingredient_slug", required=True)
        ingredient_id = self.resolver.one("ingredients", "slug", ingredient, field="ingredient_slug")
        brand = r.text("product_brand")
        name, size, unit = r.text("product_name"), r.text("package_size"), r.text("package_unit")
        quantity = r.real("package_unit_quantity")
        shown = f"{ingredient}:{brand}:{name or ''}:{size or ''}:{quantity if quantity is not None else ''}:{unit}"
        return self.match_products(ingredient_id, brand, name, size, unit, quantity), shown

    def purchase(self, rec: Rec) -> None:
        r = rec.r
        raw_id = self.claim_raw(rec, "purchases")
        product_id = self.purchase_product(rec, raw_id)
        supplier_id = self.slug_and_raw(rec, "suppliers", "supplier_slug", "supplier_id")
        if supplier_id is None:
            raise ValueProblem("supplier_id", "missing")
        values = {
            "product_id": product_id, "supplier_id": supplier_id,
            "purchase_date": r.date("purchase_date", required=True), "unit_price": r.money("unit_price"),
            "quantity_purchased": r.integer("quantity_purchased", required=True), "notes": r.text("notes"),
        }
        row_id = self.add(rec, "purchases", values, uuid=r.uuid(), created=r.timestamp("created_at"),
                          updated=r.timestamp("updated_at"))
        self.resolver.add_raw("purchases", raw_id, row_id)

    def purchase_product(self, rec: Rec, raw_id: Any) -> str:
        """The product of a purchase, from its description; the raw ``product_id`` is only a check.

        Products carry no id in this format, so the raw id cannot be looked up; but every
        purchase naming one raw id must land on one product, and different ids on different ones.
        """
        r = rec.r
        raw_product = r.raw("product_id")
        if r.has("product_slug"):
            product_id = self.product_by_key(rec, "product_slug")
        elif raw_product is not None and self.resolver.raw.get("products"):
            product_id = self.resolver.raw_one("products", raw_product, field="product_id")
            r.touch(*PRODUCT_FIELDS)
        else:
            found, shown = self._described_product(r)
            if len(found) > 1 and isinstance(raw_id, int):
                sizes = self._sizes_from_lots(raw_id, found)
                if len(sizes) == 1:
                    r.note("product", "package size taken from the inventory lot made by this purchase")
                    found = sizes
            if not found:
                raise RefError("missing", "product_id", f"no product matches the purchase's description {shown!r} "
                               "(ingredient, brand, name, size, unit)", target="products", key=shown)
            if len(found) > 1:
                raise RefError("ambiguous", "product_id", f"{len(found)} products match the purchase's description "
                               f"{shown!r} (they differ only in package size) and no inventory lot tells which; "
                               "bakestore does not guess", target="products", key=shown)
            product_id = found[0]
        if isinstance(raw_product, int) and not isinstance(raw_product, bool):
            known = self._learned_products.setdefault(raw_product, product_id)
            other = self._learned_raw.setdefault(product_id, raw_product)
            if known != product_id or other != raw_product:
                raise RefError("conflict", "product_id", f"raw product_id {raw_product} does not fit: the file's "
                               "purchases name one product with two ids, or two products with one id")
        return product_id

    def _sizes_from_lots(self, raw_purchase: int, candidates: list[str]) -> list[str]:
        sizes: list[str] = []
        for lot in self._lots_by_purchase.get(raw_purchase, []):
            reader = RecordReader(lot)
            try:
                found, _ = self._described_product(reader)
            except (ValueProblem, RefError):
                # This lot cannot tell the size; it is refused with its own reason when its turn comes.
                continue
            for product_id in found:
                if product_id in candidates and product_id not in sizes:
                    sizes.append(product_id)
        return sizes

    def lot(self, rec: Rec) -> None:
        """A lot: product by its six-field variant key, purchase by the raw ``purchase_id``."""
        r = rec.r
        raw_id = self.claim_raw(rec, "inventory_items")
        purchase_id = purchase_product = None
        if r.raw("purchase_id") is not None:
            purchase_id = self.resolver.raw_one("purchases", r.raw("purchase_id"), field="purchase_id")
            purchase_product = (self.row("purchases", purchase_id) or {}).get("product_id")
        if r.has("product_slug"):
            product_id = self.product_by_key(rec, "product_slug")
        else:
            found, shown = self._described_product(r)
            if len(found) > 1 and purchase_product in found:
                # No package quantity written: the lot's own purchase says which size it is.
                r.note("product", "package size taken from the lot's purchase")
                found = [str(purchase_product)]
            if len(found) != 1:
                kind = "missing" if not found else "ambiguous"
                raise RefError(kind, "product", f"{'no' if not found else len(found)} product(s) match the lot's "
                               f"variant key {shown!r}", target="product variant keys", key=shown)
            product_id = found[0]
        if purchase_id is not None:
            if purchase_product != product_id:
                raise RefError("conflict", "purchase_id", f"the lot is for another product than its purchase "
                               f"(id {r.raw('purchase_id')})")
        created, updated = self.timestamps(rec, dated=False)
        values = {
            "product_id": product_id, "purchase_id": purchase_id, "quantity": r.real("quantity", default=0.0),
            "unit_cost": r.real("unit_cost"), "purchase_date": r.date("purchase_date"),
            "expiration_date": r.date("expiration_date"), "opened_date": r.date("opened_date"),
            "location": r.text("location"), "lot_or_batch": r.text("lot_or_batch"), "notes": r.text("notes"),
            "last_updated": r.timestamp("last_updated") or updated or created or self.import_time,
        }
        uuid = r.uuid()
        if self.merge and uuid is None and purchase_id is not None and self.resolver.in_store("purchases", purchase_id):
            self.lot_of_stored_purchase(rec, values, purchase_id, raw_id)
            return
        row_id = self.add(rec, "inventory_items", values, uuid=uuid, created=created, updated=updated)
        self.resolver.add_raw("inventory_items", raw_id, row_id)

    def lot_of_stored_purchase(self, rec: Rec, values: dict[str, Any], purchase_id: str, raw_id: Any) -> None:
        """Merge: a lot whose purchase is already in the store is already there too (one lot per purchase).

        Single-file lots carry no uuid, so this is their identity: adding them again would count the
        stock twice. The store's lot of that purchase is the one references resolve to; when the
        store no longer has one (used up and deleted), the lot is not brought back.
        """
        lots = self.resolver.store_matches("inventory_items", "purchase", purchase_id)
        if len(lots) > 1:
            raise RefError("conflict", "purchase_id", f"its purchase is already in the store with {len(lots)} lots; "
                           "cannot tell which one this is")
        self.report.entity(rec.entity).existing += 1
        rec.existing = True
        if lots:
            self.resolver.register("inventory_items", values, lots[0])
            self.resolver.add_raw("inventory_items", raw_id, lots[0])
            return
        rec.r.note("purchase_id", "the purchase is already in the store, which has no lot for it any more: "
                   "not added again")
        self.resolver.absent_raw("inventory_items", raw_id, "was not added again: its purchase is already in the "
                                 "store, which has no lot for it any more")

    # ------------------------------------------------------------------ recipes, units, goods

    def finished_unit(self, rec: Rec) -> None:
        recipe_id = self.recipe_ref(rec)
        values = self.finished_unit_values(rec, str(recipe_id))
        self.add(rec, "finished_units", values, uuid=rec.r.uuid(), created=rec.r.timestamp("created_at"),
                 updated=rec.r.timestamp("updated_at"))

    def nested_unit(self, rec: Rec, recipe_id: str) -> None:
        """``recipes[].finished_units[]``: a copy of a top-level unit is folded into it, else created."""
        r = rec.r
        slug = r.text("slug", required=True)
        same = self.resolver.file_matches("finished_units", "slug", slug)
        if same:
            unit = self.row("finished_units", same[0]) or {}
            if unit.get("recipe_id") != recipe_id:
                raise RefError("conflict", "slug", f"finished unit {slug!r} belongs to another recipe in the "
                               "top-level finished_units")
            r.touch(*rec.record)
            self.report.entity(rec.entity).folded += 1
            rec.existing = True
            return
        refused_at = self.resolver.refused_where("finished_units", "slug", slug)
        if refused_at is not None:
            raise RefError("dependent", "slug", f"its top-level copy ({refused_at}) was refused")
        quantity = r.raw("unit_yield_quantity")
        mode = self.yield_mode(rec, "yield_mode", quantity)
        unit_text = r.text("unit_yield_unit")
        discrete = mode == "discrete_count"
        values = {
            "slug": slug, "display_name": r.text("name", required=True), "recipe_id": recipe_id,
            "yield_mode": mode, "yield_type": self.yield_type(rec),
            "items_per_batch": to_int(quantity, "unit_yield_quantity") if discrete and quantity is not None else None,
            "item_unit": unit_text if discrete else None,
            "batch_percentage": to_real(quantity, "unit_yield_quantity") if not discrete and quantity is not None
            else None,
            "portion_description": None if discrete else unit_text,
            "description": r.text("description"), "category": r.text("category"), "notes": r.text("notes"),
        }
        self.add(rec, "finished_units", values, uuid=r.uuid())

    def package(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "packages", {"name": r.text("name", required=True), "description": r.text("description"),
                                   "is_template": r.boolean("is_template", default=False), "notes": r.text("notes")},
                 uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def composition(self, rec: Rec) -> None:
        r = rec.r
        if r.has("material_slug"):
            r.touch("material_slug")
            raise RefError("unsupported", "material_slug", "a generic material component (before upstream F084) "
                           "names no material unit and cannot be represented")
        parent_fg = self.ref(rec, "finished_goods", "slug", "finished_good_slug", required=False)
        parent_package = self.ref(rec, "packages", "name", "package_name", required=False)
        if (parent_fg is None) == (parent_package is None):
            raise ValueProblem("finished_good_slug", "needs exactly one parent: finished_good_slug or package_name")
        components = {
            "finished_unit_id": self.ref(rec, "finished_units", "slug", "finished_unit_slug", required=False),
            "finished_good_id": self.ref(rec, "finished_goods", "slug", "finished_good_component_slug",
                                         required=False),
            "material_unit_id": self.ref(rec, "material_units", "slug", "material_unit_slug", required=False),
            "packaging_product_id": self.packaging_product(rec),
        }
        if sum(v is not None for v in components.values()) != 1:
            raise ValueProblem("finished_unit_slug", "needs exactly one component (finished unit, finished good, "
                               "material unit or packaging product)")
        notes = r.text("component_notes")
        values = {
            "assembly_id": parent_fg, "package_id": parent_package, **components,
            "component_quantity": r.real("component_quantity", default=1.0),
            "component_notes": notes if notes is not None else r.text("notes"),
            "sort_order": r.integer("sort_order", default=0), "is_generic": r.boolean("is_generic", default=False),
        }
        composition_id = self.add(rec, "compositions", values, uuid=r.uuid())
        nested = {"assignments": ("compositions[].assignments", "composition_assignments")}
        if rec.existing:
            self.skip_nested(rec, nested, "", existing=True)
            return
        self.run_nested(rec, "assignments", "compositions[].assignments", "composition_assignments",
                        lambda item: self.composition_assignment(item, composition_id))

    def packaging_product(self, rec: Rec) -> str | None:
        """A packaging component: raw id (checked) and/or ingredient + brand, or a product slug."""
        r = rec.r
        if r.has("packaging_product_slug"):
            return self.ref(rec, "products", "slug", "packaging_product_slug")
        raw = r.raw("packaging_product_id")
        ingredient = r.text("packaging_ingredient_slug")
        brand = r.text("packaging_product_brand", empty_as_null=True)
        if raw is None and ingredient is None:
            return None
        by_raw = None
        if raw is not None:
            if self.resolver.raw.get("products"):
                by_raw = self.resolver.raw_one("products", raw, field="packaging_product_id")
            elif isinstance(raw, int) and raw in self._learned_products:
                by_raw = self._learned_products[raw]
        described: list[str] | None = None
        if ingredient is not None:
            ingredient_id = self.resolver.one("ingredients", "slug", ingredient, field="packaging_ingredient_slug")
            described = self.resolver.candidates("products", "brand", (ingredient_id, brand))
        if by_raw is not None:
            if described is not None and by_raw not in described:
                raise RefError("conflict", "packaging_product_id", f"raw id {raw} and ingredient/brand "
                               f"{ingredient}/{brand} name different products")
            return by_raw
        shown = f"{ingredient}:{brand}"
        if not described:
            raise RefError("missing", "packaging_product_id", f"packaging product {raw if raw is not None else shown!r} "
                           "cannot be resolved (raw product ids mean nothing outside the source database)",
                           target="packaging products", key=str(raw if raw is not None else shown))
        if len(described) > 1:
            raise RefError("ambiguous", "packaging_product_id", f"{len(described)} products of {shown!r}; "
                           "bakestore does not guess", target="packaging products", key=shown)
        return described[0]

    def composition_assignment(self, rec: Rec, composition_id: str) -> None:
        r = rec.r
        item = self.resolver.raw_one("inventory_items", r.raw("inventory_item_id"), field="inventory_item_id")
        assigned_at = r.timestamp("assigned_at")
        if assigned_at is None:
            r.note("assigned_at", "not in the file: the import time")
        self.add(rec, "composition_assignments", {
            "composition_id": composition_id, "inventory_item_id": item,
            "quantity_assigned": r.real("quantity_assigned", required=True),
            "assigned_at": assigned_at or self.import_time,
        }, uuid=r.uuid())

    def package_finished_good(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "package_finished_goods", {
            "package_id": self.ref(rec, "packages", "name", "package_name"),
            "finished_good_id": self.ref(rec, "finished_goods", "slug", "finished_good_slug"),
            "quantity": r.integer("quantity", default=1),
        }, uuid=r.uuid())

    # ------------------------------------------------------------------ events and planning

    def recipient(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "recipients", {"name": r.text("name", required=True), "household_name": r.text("household_name"),
                                     "address": r.text("address"), "notes": r.text("notes")},
                 uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def event(self, rec: Rec) -> None:
        created, updated = self.timestamps(rec, dated=True)
        event_id = self.add(rec, "events", self.event_values(rec), uuid=rec.r.uuid(), created=created,
                            updated=updated)
        slug = rec.record.get("slug")
        if isinstance(slug, str):
            # Not stored (bakestore events have no slug), so it stays listed as "not imported".
            # A slug given twice names no single event ("" marks it ambiguous).
            self.event_slugs[slug] = event_id if slug not in self.event_slugs else ""

    def assignment_of_package(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "event_recipient_packages", {
            "event_id": self.event_ref(rec),
            "recipient_id": self.ref(rec, "recipients", "name", "recipient_name"),
            "package_id": self.ref(rec, "packages", "name", "package_name"),
            "quantity": r.integer("quantity", default=1), "notes": r.text("notes"),
            "status": r.enum("status", ("pending", "assembled", "delivered"), default="pending"),
            "delivered_to": r.text("delivered_to"),
            "fulfillment_status": r.enum("fulfillment_status", ("pending", "ready", "delivered"), default="pending"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def production_target(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "event_production_targets", {
            "event_id": self.event_ref(rec), "recipe_id": self.recipe_ref(rec),
            "target_batches": r.integer("target_batches", required=True), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def assembly_target(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "event_assembly_targets", {
            "event_id": self.event_ref(rec),
            "finished_good_id": self.ref(rec, "finished_goods", "slug", "finished_good_slug"),
            "target_quantity": r.integer("target_quantity", required=True), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def production_record(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "production_records", {
            "event_id": self.event_ref(rec), "recipe_id": self.recipe_ref(rec),
            "batches": r.integer("batches", required=True), "actual_cost": r.money("actual_cost"),
            "produced_at": r.timestamp("produced_at", required=True), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def assembly_run(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "assembly_runs", {
            "finished_good_id": self.ref(rec, "finished_goods", "slug", "finished_good_slug"),
            "event_id": self.event_ref(rec, required=False),
            "quantity_assembled": r.integer("quantity_assembled", required=True),
            "assembled_at": r.timestamp("assembled_at", required=True), "notes": r.text("notes"),
            "total_component_cost": r.money("total_component_cost"), "per_unit_cost": r.money("per_unit_cost"),
            "packaging_bypassed": r.boolean("packaging_bypassed", default=False),
            "packaging_bypass_notes": r.text("packaging_bypass_notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def event_recipe(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "event_recipes", {"event_id": self.event_ref(rec), "recipe_id": self.recipe_ref(rec)},
                 uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def event_finished_good(self, rec: Rec) -> None:
        r = rec.r
        finished_good = self.ref_first(rec, "finished_goods", [("finished_good_slug", "slug"),
                                                               ("finished_good_name", "display_name")])
        self.add(rec, "event_finished_goods", {
            "event_id": self.event_ref(rec), "finished_good_id": finished_good,
            "quantity": r.integer("quantity", required=True),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def batch_decision(self, rec: Rec) -> None:
        """The finished unit is named by display name, which is only unique within its recipe."""
        r = rec.r
        recipe_id = self.recipe_ref(rec)
        if r.has("finished_unit_slug"):
            r.touch("finished_unit_name")
            unit_id = self.ref(rec, "finished_units", "slug", "finished_unit_slug")
        else:
            name = r.text("finished_unit_name", required=True)
            unit_id = self.resolver.one("finished_units", "recipe_display", (recipe_id, name),
                                        field="finished_unit_name", shown=str(name))
        self.add(rec, "batch_decisions", {
            "event_id": self.event_ref(rec), "recipe_id": recipe_id, "finished_unit_id": unit_id,
            "batches": r.integer("batches", required=True),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def plan_amendment(self, rec: Rec) -> None:
        r = rec.r
        if not r.has("amendment_data"):
            raise ValueProblem("amendment_data", "missing")
        self.add(rec, "plan_amendments", {
            "event_id": self.event_ref(rec),
            "amendment_type": r.enum("amendment_type", ("drop_fg", "add_fg", "modify_batch"), required=True),
            "amendment_data": r.json("amendment_data"), "reason": r.text("reason"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    # ------------------------------------------------------------------ 4.2 spec-only material stock

    def material_product_ref(self, rec: Rec, key_field: str) -> str:
        """A material product slug, or the spec's ``{material}:{brand}:{qty}:{unit}`` key."""
        text = rec.r.text(key_field, required=True)
        try:
            return self.resolver.one("material_products", "slug", text, field=key_field)
        except RefError as err:
            if err.kind != "missing" or ":" not in str(text):
                raise
        parts = str(text).split(":")
        if len(parts) < 4:
            raise RefError("missing", key_field, f"no material product {text!r}", target="material product slugs",
                           key=str(text))
        material_id = self.resolver.one("materials", "slug", parts[0], field=key_field)
        brand = ":".join(parts[1:-2])
        try:
            quantity = float(parts[-2])
        except ValueError:
            raise RefError("invalid", key_field, f"{text!r}: quantity {parts[-2]!r} is not a number") from None
        brands = (None, "None") if brand in ("None", "") else (brand,)
        found = [c for b in brands for c in self.resolver.candidates("material_products", "key",
                                                                     (material_id, b, quantity, parts[-1]))]
        if len(found) != 1:
            kind = "missing" if not found else "ambiguous"
            raise RefError(kind, key_field, f"{len(found)} material products match {text!r}",
                           target="material product keys", key=str(text))
        return found[0]

    def material_purchase(self, rec: Rec) -> None:
        r = rec.r
        raw_id = self.claim_raw(rec, "material_purchases")
        row_id = self.add(rec, "material_purchases", {
            "product_id": self.material_product_ref(rec, "material_product_slug"),
            "supplier_id": self.ref(rec, "suppliers", "slug", "supplier_slug"),
            "purchase_date": r.date("purchase_date", required=True),
            "packages_purchased": r.integer("packages_purchased", required=True),
            "package_price": r.money("package_price"), "units_added": r.real("units_added", required=True),
            "unit_cost": r.money("unit_cost"), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))
        self.resolver.add_raw("material_purchases", raw_id, row_id)

    def material_lot(self, rec: Rec) -> None:
        r = rec.r
        product_id = self.material_product_ref(rec, "material_product_slug")
        purchase_date = r.date("purchase_date", required=True)
        raw = r.raw("material_purchase_id")
        if raw is not None and self.resolver.raw.get("material_purchases"):
            purchase_id = self.resolver.raw_one("material_purchases", raw, field="material_purchase_id")
            if (self.row("material_purchases", purchase_id) or {}).get("product_id") != product_id:
                raise RefError("conflict", "material_purchase_id", f"the lot is for another material product than "
                               f"its purchase (id {raw})")
        else:
            purchase_id = self.resolver.one("material_purchases", "product_date", (product_id, purchase_date),
                                            field="material_purchase_id", shown=f"{product_id}@{purchase_date}")
            r.note("material_purchase_id", "purchase found by product and purchase date")
        self.add(rec, "material_inventory_items", {
            "material_product_id": product_id, "material_purchase_id": purchase_id,
            "quantity_purchased": r.real("quantity_purchased", required=True),
            "quantity_remaining": r.real("quantity_remaining", required=True),
            "cost_per_unit": r.money("cost_per_unit"), "purchase_date": purchase_date,
            "location": r.text("location"), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))


__all__ = ["ARRAYS", "ENTITY_KEYS", "HEADER_KEYS", "SingleFileTranslator"]
