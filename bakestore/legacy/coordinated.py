"""The coordinated backup folder: ``manifest.json`` plus one ``<entity>.json`` per entity type.

Integrity comes first: every listed file must exist and match the manifest's sha256, and only
then is each parsed and its record count compared with the manifest — before a single record is
translated. The upstream restore checked neither (formats page §4.5 C1).

What this reader does that the upstream restore did not (§4.2–4.4): purchases resolve their
supplier by ``supplier_slug`` (S1) and their product by the full product key, package size
included (M2); material lots find their purchase by uuid (R3); every record keeps its uuid
(S6); run timestamps keep their time of day (S5); a composition whose parent the exporter did
not write is refused by name, not inserted half-empty (R6). Lots carry no purchase reference in
this format; a link is restored only where the product and purchase date single out one purchase.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import LegacyFormatError
from ..sources import MemorySource
from .detect import LegacyInput, read_json_bytes
from .resolve import RefError
from .translate import Rec, Translator
from .values import RecordReader, ValueProblem

#: Entity files this reader knows (formats page §3.4), each with the bakestore table it feeds.
#: It describes the upstream folder, which never changes; a test checks the tables against the
#: registry.
FILES: tuple[tuple[str, str], ...] = (
    ("suppliers", "suppliers"), ("ingredients", "ingredients"), ("products", "products"), ("recipes", "recipes"),
    ("finished_units", "finished_units"), ("purchases", "purchases"), ("inventory_items", "inventory_items"),
    ("material_categories", "material_categories"), ("material_subcategories", "material_subcategories"),
    ("materials", "materials"), ("material_products", "material_products"), ("material_units", "material_units"),
    ("material_purchases", "material_purchases"), ("material_inventory_items", "material_inventory_items"),
    ("recipe_categories", "recipe_categories"), ("finished_goods", "finished_goods"),
    ("compositions", "compositions"), ("events", "events"), ("production_runs", "production_runs"),
    ("inventory_depletions", "inventory_depletions"), ("recipe_snapshots", "recipe_snapshots"),
    ("finished_good_snapshots", "finished_good_snapshots"), ("material_unit_snapshots", "material_unit_snapshots"),
    ("finished_unit_snapshots", "finished_unit_snapshots"),
)
ENTITY_TYPES: frozenset[str] = frozenset(entity for entity, _ in FILES)


def load_verified(src: LegacyInput, *, skip_invalid: bool = False) -> tuple[dict[str, list[Any]], list[str]]:
    """Verify sha256 of every listed file, then record counts; return records per entity type.

    Raises :class:`LegacyFormatError` naming the file on the first kind of failure found (all
    changed files are named at once). An entity file bakestore knows (``purchases.json``) that
    sits in the folder but is not in the manifest is refused like records under an unknown key
    of a single file: it is data, and importing without it would lose it silently; with
    ``skip_invalid`` nothing is read from it and the warnings say so. Other unlisted ``.json``
    files are returned as warnings.
    """
    folder = src.folder or src.path.parent
    name = folder.name
    entries = src.data["files"]
    checked: list[tuple[dict[str, Any], Path, bytes]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise LegacyFormatError(f"{src.label}: files[{index}] must be an object")
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename or PurePosixPath(filename).name != filename \
                or filename in (".", "..") or "\\" in filename:
            raise LegacyFormatError(f"{src.label}: files[{index}].filename must be a plain file name, got {filename!r}")
        for key, kind in (("sha256", str), ("record_count", int), ("entity_type", str)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise LegacyFormatError(f"{src.label}: files[{index}] ({filename}) has no valid {key!r}")
        path = folder / filename
        if not path.is_file():
            raise LegacyFormatError(f"{name}/{filename}: listed in the manifest but missing from the folder")
        checked.append((entry, path, path.read_bytes()))

    changed = [f"{name}/{entry['filename']}" for entry, _, raw in checked
               if hashlib.sha256(raw).hexdigest() != entry["sha256"].strip().lower()]
    if changed:
        raise LegacyFormatError(f"{changed[0]}: sha256 does not match the manifest: the file was changed after the "
                                f"backup was made" + (f" (also changed: {', '.join(changed[1:])})" if changed[1:] else ""))

    records: dict[str, list[Any]] = {}
    for entry, path, raw in checked:
        label = f"{name}/{entry['filename']}"
        data = read_json_bytes(raw, label)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise LegacyFormatError(f"{label}: expected an object with a 'records' list")
        if data.get("entity_type") not in (None, entry["entity_type"]):
            raise LegacyFormatError(f"{label}: entity_type {data.get('entity_type')!r} does not match the manifest's "
                                    f"{entry['entity_type']!r}")
        if len(data["records"]) != entry["record_count"]:
            raise LegacyFormatError(f"{label}: holds {len(data['records'])} records but the manifest says "
                                    f"{entry['record_count']}")
        if entry["entity_type"] in records:
            raise LegacyFormatError(f"{label}: entity type {entry['entity_type']!r} is listed twice in the manifest")
        records[entry["entity_type"]] = data["records"]

    listed = {entry["filename"] for entry, _, _ in checked} | {"manifest.json"}
    unlisted = [p.name for p in sorted(folder.glob("*.json")) if p.name not in listed]
    known = [f for f in unlisted if f[:-len(".json")] in ENTITY_TYPES]
    if known and not skip_invalid and checked:
        # (A manifest that lists no file at all is refused as a whole: it holds no records, W2.)
        shown = ", ".join(f"{name}/{f}" for f in known)
        raise LegacyFormatError(f"{shown}: entity file{'s' if len(known) > 1 else ''} in the backup folder that the "
                                "manifest does not list (not verified, not counted); refusing so that nothing is "
                                "lost (--skip-invalid imports the listed files and leaves these out)")
    warnings = [f"{name}/{f} is an entity file the manifest does not list: skipped, nothing imported from it "
                "(--skip-invalid)" if f in known else f"{name}/{f} is not listed in the manifest and was not read"
                for f in unlisted]
    return records, warnings


class CoordinatedTranslator(Translator):
    """Translates a verified coordinated backup folder into bakestore rows."""

    def translate(self) -> MemorySource:
        files, warnings = load_verified(self.src, skip_invalid=self.report.skip_invalid)
        self.report.warnings.extend(warnings)
        d = files.get
        for entity_type, records in files.items():
            if entity_type not in ENTITY_TYPES:
                rep = self.report.entity(entity_type)
                for index, _record in enumerate(records if isinstance(records, list) else []):
                    rep.read += 1
                    self.refuse(Rec(entity_type, index, f"{entity_type}[{index}]", None, RecordReader({}), {}), None, f"bakestore does not know the upstream entity type {entity_type!r}",
                                kind="unsupported")
        self.run("suppliers", "suppliers", d("suppliers"), self.supplier)
        self.ingredients("ingredients", d("ingredients"), dated=True)
        self.run("products", "products", d("products"), self.product)
        self.recipes(d("recipes"), nested=self.RECIPE_NESTED)
        self.run("finished_units", "finished_units", d("finished_units"), self.finished_unit)
        self.run("purchases", "purchases", d("purchases"), self.purchase)
        self.run("inventory_items", "inventory_items", d("inventory_items"), self.lot)
        self.link_lots_to_purchases()
        self.material_chain(d)
        self.run("material_purchases", "material_purchases", d("material_purchases"), self.material_purchase)
        self.run("material_inventory_items", "material_inventory_items", d("material_inventory_items"),
                 self.material_lot)
        self.run("recipe_categories", "recipe_categories", d("recipe_categories"), self.recipe_category)
        self.run("finished_goods", "finished_goods", d("finished_goods"), self.finished_good)
        self.run("compositions", "compositions", d("compositions"), self.composition)
        events_nested = {"production_targets": ("events[].production_targets", "event_production_targets"),
                         "assembly_targets": ("events[].assembly_targets", "event_assembly_targets")}
        self.run("events", "events", d("events"), self.event, nested=events_nested)
        if d("events"):
            self.report.warnings.append("events: the coordinated format carries no plan_state or expected_attendees; "
                                        "events were imported as draft with no expected attendees")
        self.run("production_runs", "production_runs", d("production_runs"), self.production_run)
        self.run("inventory_depletions", "inventory_depletions", d("inventory_depletions"), self.depletion)
        self.run("recipe_snapshots", "recipe_snapshots", d("recipe_snapshots"), self.recipe_snapshot)
        self.run("finished_good_snapshots", "finished_good_snapshots", d("finished_good_snapshots"),
                 lambda rec: self.definition_snapshot(rec, "finished_good_snapshots", "finished_good_id",
                                                      "finished_goods", "finished_good_slug"))
        self.run("material_unit_snapshots", "material_unit_snapshots", d("material_unit_snapshots"),
                 lambda rec: self.definition_snapshot(rec, "material_unit_snapshots", "material_unit_id",
                                                      "material_units", "material_unit_slug"))
        self.run("finished_unit_snapshots", "finished_unit_snapshots", d("finished_unit_snapshots"),
                 lambda rec: self.definition_snapshot(rec, "finished_unit_snapshots", "finished_unit_id",
                                                      "finished_units", "finished_unit_slug"))
        return self.finish()

    # ------------------------------------------------------------------ catalog and stock

    def product(self, rec: Rec) -> None:
        r = rec.r
        values = self.product_values(rec)
        values["preferred_supplier_id"] = self.ref(rec, "suppliers", "slug", "preferred_supplier_slug", required=False)
        created, updated = self.timestamps(rec, dated=True)
        self.add(rec, "products", values, uuid=r.uuid(), created=created, updated=updated)

    def finished_unit(self, rec: Rec) -> None:
        recipe_id = self.recipe_ref(rec)
        self.add(rec, "finished_units", self.finished_unit_values(rec, str(recipe_id)), uuid=rec.r.uuid(),
                 created=rec.r.timestamp("created_at"), updated=rec.r.timestamp("updated_at"))

    def purchase(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "purchases", {
            "product_id": self.product_by_key(rec, "product_slug"),
            "supplier_id": self.ref(rec, "suppliers", "slug", "supplier_slug"),
            "purchase_date": r.date("purchase_date", required=True), "unit_price": r.money("unit_price"),
            "quantity_purchased": r.integer("quantity_purchased", required=True), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def lot(self, rec: Rec) -> None:
        r = rec.r
        purchase_id = None
        if r.has("purchase_uuid"):
            purchase_id = r.uuid("purchase_uuid")
            if purchase_id is None or not self.exists("purchases", purchase_id):
                raise RefError("missing", "purchase_uuid", f"no purchase with uuid {purchase_id}",
                               target="purchase uuids", key=str(purchase_id))
        created, updated = self.timestamps(rec, dated=False)
        last_updated = r.timestamp("last_updated")
        self.add(rec, "inventory_items", {
            "product_id": self.product_by_key(rec, "product_slug"), "purchase_id": purchase_id,
            "quantity": r.real("quantity", default=0.0), "unit_cost": r.real("unit_cost"),
            "purchase_date": r.date("purchase_date"), "expiration_date": r.date("expiration_date"),
            "opened_date": r.date("opened_date"), "location": r.text("location"),
            "lot_or_batch": r.text("lot_or_batch"), "notes": r.text("notes"),
            "last_updated": last_updated or updated or created or self.import_time,
        }, uuid=r.uuid(), created=created or last_updated, updated=updated or last_updated)

    def link_lots_to_purchases(self) -> None:
        """Restore lot→purchase links where product and purchase date single out one purchase.

        The format writes no purchase reference for lots (§3.4). A link is set only when exactly
        one purchase of the file matches the lot's product and date *and* no other lot matches
        that purchase; everything else stays unlinked. Either way the report says how many.
        """
        lots = self.rows.get("inventory_items", {})
        candidates: dict[str, list[str]] = {}
        claims: dict[str, int] = {}
        for lot_id, lot in lots.items():
            if lot.get("purchase_id") is not None or lot.get("purchase_date") is None:
                continue
            found = self.resolver.file_matches("purchases", "product_date", (lot["product_id"], lot["purchase_date"]))
            candidates[lot_id] = found
            for purchase_id in found:
                claims[purchase_id] = claims.get(purchase_id, 0) + 1
        rep = self.report.entity("inventory_items")
        for lot_id, found in candidates.items():
            if len(found) == 1 and claims[found[0]] == 1:
                lots[lot_id]["purchase_id"] = found[0]
                rep.notes["purchase_id: not in the format: linked by product and purchase date"] += 1
            else:
                rep.notes["purchase_id: not in the format and no single matching purchase: left unlinked"] += 1

    def material_purchase(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "material_purchases", {
            "product_id": self.ref(rec, "material_products", "slug", "product_slug"),
            "supplier_id": self.ref(rec, "suppliers", "slug", "supplier_slug"),
            "purchase_date": r.date("purchase_date", required=True),
            "packages_purchased": r.integer("packages_purchased", required=True),
            "package_price": r.money("package_price"), "units_added": r.real("units_added", required=True),
            "unit_cost": r.money("unit_cost"), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def material_lot(self, rec: Rec) -> None:
        r = rec.r
        product_id = self.ref(rec, "material_products", "slug", "product_slug")
        purchase_id = r.uuid("purchase_uuid")
        if purchase_id is None:
            raise ValueProblem("purchase_uuid", "missing")
        purchase = self.row("material_purchases", purchase_id)
        if purchase is None:
            where = self.resolver.refused_where("material_purchases", "u:id", (purchase_id,))
            raise RefError("dependent" if where else "missing", "purchase_uuid",
                           f"no material purchase with uuid {purchase_id}", target="material purchase uuids",
                           key=purchase_id)
        if purchase.get("product_id") != product_id:
            raise RefError("conflict", "purchase_uuid", "the lot is for another material product than its purchase")
        self.add(rec, "material_inventory_items", {
            "material_product_id": product_id, "material_purchase_id": purchase_id,
            "quantity_purchased": r.real("quantity_purchased", required=True),
            "quantity_remaining": r.real("quantity_remaining", required=True),
            "cost_per_unit": r.money("cost_per_unit"), "purchase_date": r.date("purchase_date", required=True),
            "location": r.text("location"), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    # ------------------------------------------------------------------ goods and events

    def composition(self, rec: Rec) -> None:
        r = rec.r
        parent = self.ref(rec, "finished_goods", "slug", "assembly_slug", required=False)
        if parent is None:
            raise RefError("unsupported", "assembly_slug", "no parent: the upstream exporter does not write a "
                           "package parent, so this line's package is unknown")
        components = {
            "finished_unit_id": self.ref(rec, "finished_units", "slug", "finished_unit_slug", required=False),
            "finished_good_id": self.ref(rec, "finished_goods", "slug", "finished_good_slug", required=False),
            "material_unit_id": self.ref(rec, "material_units", "slug", "material_unit_slug", required=False),
            "packaging_product_id": self.ref(rec, "products", "slug", "packaging_product_slug", required=False),
        }
        if sum(v is not None for v in components.values()) != 1:
            raise ValueProblem("finished_unit_slug", "needs exactly one component (finished unit, finished good, "
                               "material unit or packaging product)")
        self.add(rec, "compositions", {
            "assembly_id": parent, "package_id": None, **components,
            "component_quantity": r.real("component_quantity", default=1.0),
            "component_notes": r.text("component_notes"), "sort_order": r.integer("sort_order", default=0),
            "is_generic": r.boolean("is_generic", default=False),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def event(self, rec: Rec) -> None:
        created, updated = self.timestamps(rec, dated=True)
        event_id = self.add(rec, "events", self.event_values(rec), uuid=rec.r.uuid(), created=created,
                            updated=updated)
        nested = {"production_targets": ("events[].production_targets", "event_production_targets"),
                  "assembly_targets": ("events[].assembly_targets", "event_assembly_targets")}
        if rec.existing:
            self.skip_nested(rec, nested, "", existing=True)
            return

        def production_target(target: Rec) -> None:
            t = target.r
            self.add(target, "event_production_targets", {
                "event_id": event_id, "recipe_id": self.recipe_ref(target),
                "target_batches": t.integer("target_batches", required=True), "notes": t.text("notes"),
            }, uuid=t.uuid())

        def assembly_target(target: Rec) -> None:
            t = target.r
            self.add(target, "event_assembly_targets", {
                "event_id": event_id,
                "finished_good_id": self.ref(target, "finished_goods", "slug", "finished_good_slug"),
                "target_quantity": t.integer("target_quantity", required=True), "notes": t.text("notes"),
            }, uuid=t.uuid())

        self.run_nested(rec, "production_targets", "events[].production_targets", "event_production_targets",
                        production_target)
        self.run_nested(rec, "assembly_targets", "events[].assembly_targets", "event_assembly_targets",
                        assembly_target)

    def depletion(self, rec: Rec) -> None:
        """``inventory_item_ref`` is a product key: it names a lot only when the product has one lot."""
        r = rec.r
        product_id = self.product_by_key(rec, "inventory_item_ref")
        lots = self.resolver.candidates("inventory_items", "product", product_id)
        if len(lots) != 1:
            key = str(rec.record.get("inventory_item_ref"))
            raise RefError("missing" if not lots else "ambiguous", "inventory_item_ref",
                           f"product key {key!r} names {len(lots)} inventory lots; a depletion needs exactly one",
                           target="inventory lots", key=key)
        r.note("depletion_date", "upstream local time, read as UTC (the offset was never written)")
        self.add(rec, "inventory_depletions", {
            "inventory_item_id": lots[0], "quantity_depleted": r.money("quantity_depleted"),
            "depletion_reason": r.enum("depletion_reason", ("production", "assembly", "spoilage", "gift", "correction",
                                                            "ad_hoc_usage", "other"), required=True),
            "depletion_date": r.timestamp("depletion_date", required=True), "notes": r.text("notes"),
            "cost": r.money("cost"), "created_by": r.text("created_by"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def recipe_snapshot(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "recipe_snapshots", {
            "recipe_id": self.recipe_ref(rec), "production_run_id": None,
            "scale_factor": r.real("scale_factor", default=1.0),
            "snapshot_date": r.timestamp("snapshot_date", required=True),
            "recipe_data": r.blob("recipe_data", required=True),
            "ingredients_data": r.blob("ingredients_data", required=True),
            "is_backfilled": r.boolean("is_backfilled", default=False),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def definition_snapshot(self, rec: Rec, table: str, column: str, target: str, key_field: str) -> None:
        r = rec.r
        self.add(rec, table, {
            column: self.ref(rec, target, "slug", key_field),
            "snapshot_date": r.timestamp("snapshot_date", required=True),
            "is_backfilled": r.boolean("is_backfilled", default=False),
            "definition_data": r.blob("definition_data", required=True),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))


__all__ = ["ENTITY_TYPES", "FILES", "CoordinatedTranslator", "load_verified"]
