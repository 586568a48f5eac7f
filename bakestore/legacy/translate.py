"""The translation machinery shared by both upstream formats: records in, complete bakestore rows out.

A :class:`Translator` walks the upstream records entity by entity (in dependency order), reads
each field with the value rules of :mod:`.values`, resolves references with :mod:`.resolve`, and
turns each record into one complete registry row (id, created_at, updated_at, row_version
included) that has already passed the table's model. A record that cannot be translated is
*refused* with a :class:`~.report.Problem`; it is never dropped silently and never guessed.

Rows are validated here, record by record, so a refusal names the upstream record (file, entity,
index, slug, field) rather than a bakestore row id — and so ``--skip-invalid`` can leave out
exactly the refused records (and, by a final sweep, whatever depended on them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..clock import HybridLogicalClock, uuid7
from ..errors import LegacyFormatError, ValidationError
from ..registry import REGISTRY
from ..sources import MemorySource
from ..store import validate_row
from .detect import LegacyInput
from .report import ImportReport, Problem
from .resolve import RefError, Resolver, identity_kinds, kebab_slug, key_funcs, parse_product_key
from .values import RecordReader, ValueProblem, to_enum

if TYPE_CHECKING:
    from ..store import Store


class Refused(Exception):
    """Raised inside a record handler after the refusal was already reported."""


@dataclass
class Rec:
    """One upstream record being translated: where it is (for messages) and its field reader."""

    entity: str
    index: int
    place: str
    label: str | None
    r: RecordReader
    record: Mapping[str, Any]
    table: str | None = None
    existing: bool = False
    done: set[str] = field(default_factory=set)


Handler = Callable[[Rec], None]


def record_label(record: Mapping[str, Any]) -> str | None:
    """A short human handle for a record: its slug, name or key, for messages."""
    for key in ("slug", "name", "display_name", "product_slug", "event_name", "recipe_name", "ingredient_slug",
                "uuid"):
        value = record.get(key)
        if isinstance(value, str) and value:
            if key == "ingredient_slug" and "package_unit_quantity" in record:
                brand = record.get("brand", record.get("product_brand"))
                return f"{value}:{brand}:{record.get('package_unit_quantity')}:{record.get('package_unit')}"
            if key == "ingredient_slug" and "product_brand" in record:
                return ":".join(str(p) for p in (value, record["product_brand"], record.get("product_name")) if p)
            return value
    if isinstance(record.get("id"), int):
        return f"id {record['id']}"
    return None


def _type_name(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class Translator:
    """Shared state and helpers of one translation; subclasses walk one format's entities."""

    def __init__(self, source: LegacyInput, *, store: "Store | None", merge: bool, clock: HybridLogicalClock,
                 import_time: str, skip_invalid: bool) -> None:
        self.src = source
        self.label = source.label
        self.store = store
        self.merge = merge
        self.clock = clock
        self.import_time = import_time
        self.resolver = Resolver(store if merge else None)
        self.report = ImportReport(path=str(source.path), label=source.label, format=source.description,
                                   sha256=source.sha256, mode="merge" if merge else "restore",
                                   skip_invalid=skip_invalid)
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        #: Slugs that hand-made files give events (not a bakestore column), for ``event_slug``.
        self.event_slugs: dict[str, str] = {}
        #: Recipe slugs taken (the file's own, and the store's in merge mode), for generated slugs.
        self._recipe_slugs: set[str] = set()
        self.origin: dict[tuple[str, str], tuple[str, str]] = {}
        self._funcs = {spec.name: key_funcs(spec.name) for spec in REGISTRY.domain_tables}

    # ------------------------------------------------------------------ walking records

    def records(self, entity: str, value: Any, *, table: str | None) -> list[tuple[int, Mapping[str, Any]]]:
        """The records of one array; a non-list is a file-level refusal, a non-object a record one."""
        if value is None:
            # Absent from the file: nothing read, and nothing to list in the report.
            return []
        rep = self.report.entity(entity, table)
        if not isinstance(value, list):
            raise LegacyFormatError(f"{self.label}: '{entity}' must be a list of records, got {_type_name(value)}")
        rep.read += len(value)
        out: list[tuple[int, Mapping[str, Any]]] = []
        for index, record in enumerate(value):
            if isinstance(record, dict):
                out.append((index, record))
            else:
                rep.refused.append(Problem(entity, index, None, None,
                                           f"expected an object, got {_type_name(record)}", place=f"{entity}[{index}]"))
        return out

    def run(self, entity: str, table: str | None, value: Any, handler: Handler, *,
            nested: Mapping[str, tuple[str, str]] | None = None) -> list[Rec]:
        """Translate every record of a top-level array; returns the records that succeeded."""
        done: list[Rec] = []
        for index, record in self.records(entity, value, table=table):
            rec = self.make_rec(entity, index, f"{entity}[{index}]", record, table)
            if self.run_one(rec, handler, nested=nested):
                done.append(rec)
        return done

    def make_rec(self, entity: str, index: int, place: str, record: Mapping[str, Any],
                 table: str | None = None) -> Rec:
        rep = self.report.entity(entity)

        def note(field_name: str, rule: str) -> None:
            rep.notes[f"{field_name}: {rule}"] += 1

        return Rec(entity, index, place, record_label(record), RecordReader(record, note), record, table)

    def run_one(self, rec: Rec, handler: Handler, *, nested: Mapping[str, tuple[str, str]] | None = None) -> bool:
        ok = False
        try:
            handler(rec)
            ok = True
        except ValueProblem as problem:
            self.refuse(rec, problem.field, problem.reason)
        except RefError as err:
            self.refuse(rec, err.field, err.reason, kind=err.kind, target=err.target, key=err.key)
        except Refused:
            pass
        if ok:
            # Keys of a translated record that nothing read: listed, so nothing vanishes unreported.
            rep = self.report.entity(rec.entity)
            nested_keys = set(nested or ())
            for key in rec.r.unused():
                if key not in nested_keys:
                    rep.unused_keys[key] += 1
        else:
            if rec.table is not None:
                # References to a refused record then say "was refused", not "missing".
                self.resolver.mark_refused(rec.table, rec.record, rec.place)
                self.resolver.refuse_raw(rec.entity, rec.record.get("id"), rec.place)
            self.skip_nested(rec, nested, f"its parent record {rec.place} was refused")
        return ok

    def run_nested(self, parent: Rec, key: str, entity: str, table: str | None, handler: Handler) -> list[Rec]:
        """Translate a nested array (e.g. ``recipes[].ingredients``) of one parent record."""
        parent.done.add(key)
        parent.r.touch(key)
        value = parent.record.get(key)
        if value is None:
            return []
        rep = self.report.entity(entity, table)
        if not isinstance(value, list):
            rep.read += 1
            rep.refused.append(Problem(entity, parent.index, parent.label, key,
                                       f"must be a list, got {_type_name(value)}", place=f"{parent.place}.{key}"))
            return []
        rep.read += len(value)
        done: list[Rec] = []
        for index, record in enumerate(value):
            place = f"{parent.place}.{key}[{index}]"
            if not isinstance(record, dict):
                rep.refused.append(Problem(entity, index, None, None, f"expected an object, got {_type_name(record)}",
                                           place=place))
                continue
            rec = self.make_rec(entity, index, place, record, table)
            if self.run_one(rec, handler):
                done.append(rec)
        return done

    def skip_nested(self, parent: Rec, nested: Mapping[str, tuple[str, str]] | None, reason: str, *,
                    existing: bool = False) -> None:
        """Account for nested records of a parent that was refused (or, in merge mode, kept as is)."""
        for key, (entity, table) in (nested or {}).items():
            if key in parent.done:
                continue
            parent.done.add(key)
            parent.r.touch(key)
            value = parent.record.get(key)
            if not isinstance(value, list):
                continue
            rep = self.report.entity(entity, table)
            rep.read += len(value)
            if existing:
                rep.existing += len(value)
                continue
            for index, record in enumerate(value):
                label = record_label(record) if isinstance(record, dict) else None
                rep.refused.append(Problem(entity, index, label, None, reason, kind="dependent",
                                           place=f"{parent.place}.{key}[{index}]"))

    # ------------------------------------------------------------------ refusing

    def refuse(self, rec: Rec, field_name: str | None, reason: str, *, kind: str = "invalid",
               target: str | None = None, key: str | None = None) -> None:
        self.report.entity(rec.entity).refused.append(
            Problem(rec.entity, rec.index, rec.label, field_name, reason, kind=kind, target=target, key=key,
                    place=rec.place))

    def drop(self, table: str, row_id: str, rec: Rec, field_name: str | None, reason: str, *,
             kind: str = "invalid", target: str | None = None, key: str | None = None) -> None:
        """Refuse a record whose row was already added (a second-pass reference failed)."""
        row = self.rows.get(table, {}).pop(row_id, None)
        self.origin.pop((table, row_id), None)
        if row is not None:
            self.resolver.mark_refused(table, row, rec.place)
        self.refuse(rec, field_name, reason, kind=kind, target=target, key=key)

    # ------------------------------------------------------------------ adding rows

    def add(self, rec: Rec, table: str, values: dict[str, Any], *, uuid: str | None = None,
            created: str | None = None, updated: str | None = None,
            unindexed: frozenset[str] = frozenset()) -> str:
        """Turn translated values into a complete, validated row; returns its id.

        In merge mode a record that is already in the store (same id, or same unique / natural
        key) is not written: its references resolve to the store's row and it counts as
        ``existing``. Raises :class:`Refused` after reporting when the row is invalid or a
        duplicate of an earlier record of the file.
        """
        spec = REGISTRY[table]
        funcs = self._funcs[table]
        if self.merge:
            existing = self._existing(rec, table, values, uuid)
            if existing is not None:
                self.resolver.register(table, values, existing, skip=unindexed)
                self.report.entity(rec.entity).existing += 1
                rec.existing = True
                return existing
        row_id = uuid or uuid7()
        if (table, row_id) in self.origin:
            self.refuse(rec, "uuid", f"duplicate uuid {row_id}: also used by {self.origin[(table, row_id)][1]}",
                        kind="duplicate")
            raise Refused
        created_at = created or self.import_time
        row = {**values, "id": row_id, "created_at": created_at, "updated_at": updated or created_at,
               "row_version": self.clock.now()}
        try:
            clean = validate_row(spec, row, complete=True, label_from_data=False)
        except ValidationError as exc:
            field_name = exc.field.split(".")[0] if exc.field else None
            message = str(exc)
            prefix = f"{table}.{exc.field}: " if exc.field else f"{table}: "
            if message.startswith(prefix):
                message = message[len(prefix):]
            self.refuse(rec, field_name, message)
            self.resolver.mark_refused(table, {**values, "id": row_id}, rec.place)
            raise Refused from None
        for kind in identity_kinds(table, merge=False):
            try:
                key = funcs[kind](clean)
            except (KeyError, TypeError):
                key = None  # the row lacks a column of this key: it cannot collide on it
            if key is None:
                continue
            hits = self.resolver.file_matches(table, kind, key)
            if hits:
                first = self.origin.get((table, hits[0]), ("", "an earlier record"))[1]
                what = kind[2:] if kind.startswith("u:") else kind
                self.refuse(rec, what.split(",")[0], f"duplicate: same {what} {_show(key)} as {first}",
                            kind="duplicate")
                raise Refused
        self.rows.setdefault(table, {})[row_id] = clean
        self.origin[(table, row_id)] = (rec.entity, rec.place)
        self.resolver.register(table, clean, skip=unindexed)
        return row_id

    def _existing(self, rec: Rec, table: str, values: Mapping[str, Any], uuid: str | None) -> str | None:
        candidates: dict[str, str] = {}
        if uuid is not None and self.resolver.in_store(table, uuid):
            candidates[uuid] = "id"
        funcs = self._funcs[table]
        for kind in identity_kinds(table, merge=True):
            try:
                key = funcs[kind](values)
            except (KeyError, TypeError):
                key = None  # the values lack a column of this key: no match on it
            if key is None:
                continue
            for store_id in self.resolver.store_matches(table, kind, key):
                candidates.setdefault(store_id, kind)
        if len(candidates) > 1:
            raise RefError("conflict", "", f"matches {len(candidates)} different {table} rows already in the store "
                           f"(by {', '.join(sorted(set(candidates.values())))}); cannot tell which one it is")
        return next(iter(candidates), None)

    def row(self, table: str, row_id: str) -> Mapping[str, Any] | None:
        """A row by id: the file's translation first, then (merge mode) the store's."""
        found = self.rows.get(table, {}).get(row_id)
        if found is None and self.merge:
            found = self.resolver.store_rows(table).get(row_id)
        return found

    def exists(self, table: str, row_id: str) -> bool:
        return row_id in self.rows.get(table, {}) or (self.merge and self.resolver.in_store(table, row_id))

    # ------------------------------------------------------------------ shared reference helpers

    def claim_raw(self, rec: Rec, entity: str) -> Any:
        """The record's raw integer ``id`` (single files), checked to be an integer and not reused."""
        raw_id = rec.r.raw("id")
        if raw_id is None:
            return None
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            raise ValueProblem("id", f"expected an integer id, got {raw_id!r}")
        self.resolver.claim_raw(entity, raw_id, rec.place)
        return raw_id

    def ref(self, rec: Rec, table: str, kind: str, key_field: str, *, required: bool = True,
            empty_as_null: bool = True) -> str | None:
        """Resolve a textual reference field (slug or name) of ``rec``."""
        text = rec.r.text(key_field, required=required, empty_as_null=empty_as_null)
        if text is None:
            return None
        return self.resolver.one(table, kind, text, field=key_field)

    def ref_first(self, rec: Rec, table: str, options: list[tuple[str, str]], *, required: bool = True) -> str | None:
        """The first present field among ``(field, kind)`` options decides (e.g. slug before name)."""
        for key_field, kind in options:
            if rec.r.has(key_field):
                for other, _ in options:
                    rec.r.touch(other)
                return self.ref(rec, table, kind, key_field)
        if required:
            names = " or ".join(f for f, _ in options)
            raise ValueProblem(options[0][0], f"missing (expected {names})")
        for other, _ in options:
            rec.r.touch(other)
        return None

    def event_ref(self, rec: Rec, *, required: bool = True) -> str | None:
        """Events are referenced by name, which upstream never made unique: ambiguity is reported.

        Hand-made files may give events a ``slug`` (bakestore events have none) and refer to it
        as ``event_slug``; such a slug resolves within the file only.
        """
        slug = rec.record.get("event_slug")
        if isinstance(slug, str) and slug in self.event_slugs:
            rec.r.touch("event_slug", "event_name")
            if not self.event_slugs[slug]:
                raise RefError("ambiguous", "event_slug", f"event slug {slug!r} is given to several events in the "
                               "file; bakestore does not guess", target="event slugs", key=slug)
            return self.event_slugs[slug]
        try:
            return self.ref_first(rec, "events", [("event_name", "name")], required=required)
        except RefError as err:
            if err.kind != "ambiguous":
                raise
            raise self._ambiguous_event(str(rec.r.text("event_name")), err) from None

    def _ambiguous_event(self, name: str, err: RefError) -> RefError:
        """Recurring events ("Christmas" every year): say which events and what the user can do.

        The single file's planning rows and runs name their event by ``event_name`` only — no
        date, no year — so which of two same-named events a row belongs to is not in the file,
        and no field of the row can safely decide it.
        """
        matches = self.resolver.candidates("events", "name", name)
        shown = []
        for match in matches:
            row = self.row("events", match) or {}
            place = self.origin.get(("events", match), ("", "the store"))[1]
            shown.append(f"{place} on {row.get('event_date')}")
        return RefError("ambiguous", "event_name",
                        f"event {name!r} is ambiguous: {len(matches)} events have that name ({', '.join(shown)}) and "
                        "this record names its event only by name (the format writes no date or year here), so "
                        "which one it belongs to is not in the file and bakestore does not guess; give the events "
                        "distinct names in BakeTracker (e.g. add the year) and export again, or use --skip-invalid "
                        "to import everything else", target=err.target, key=err.key)

    def recipe_ref(self, rec: Rec, *, required: bool = True) -> str | None:
        """A recipe by ``recipe_slug`` (a real slug, or the exporter's name-derived pseudo-slug) or name."""
        if rec.r.has("recipe_slug"):
            rec.r.touch("recipe_name")
            return self._base_recipe(str(rec.r.text("recipe_slug", required=True)), field="recipe_slug")
        return self.ref_first(rec, "recipes", [("recipe_name", "name")], required=required)

    def product_by_key(self, rec: Rec, field_name: str) -> str:
        """Resolve the coordinated product key ``ingredient:brand:qty:unit`` — package size included.

        Upstream matched ingredient + brand + unit and ignored the quantity, so with two sizes of
        one brand the first product won (§4.4 M2). Here all four parts must match one product.
        """
        key = parse_product_key(rec.r.raw(field_name), field_name)
        ingredient = self.resolver.one("ingredients", "slug", key.ingredient_slug, field=field_name)
        found: list[str] = []
        for brand in key.brands:
            for candidate in self.resolver.candidates("products", "key", (ingredient, brand, key.quantity, key.unit)):
                if candidate not in found:
                    found.append(candidate)
        if len(found) == 1:
            return found[0]
        if found:
            raise RefError("ambiguous", field_name, f"product key {key.text!r} matches {len(found)} products; "
                           "bakestore does not guess", target="product keys", key=key.text)
        raise RefError("missing", field_name, f"no product matches the product key {key.text!r} "
                       "(ingredient, brand, package quantity and unit)", target="product keys", key=key.text)

    # ------------------------------------------------------------------ shared entities

    def supplier(self, rec: Rec) -> None:
        r = rec.r
        raw_id = self.claim_raw(rec, "suppliers")
        values = {
            "name": r.text("name", required=True), "slug": r.text("slug", required=True),
            "supplier_type": r.enum("supplier_type", ("physical", "online"), default="physical"),
            "website_url": r.text("website_url"), "street_address": r.text("street_address"),
            "city": r.text("city"), "state": r.text("state"), "zip_code": r.text("zip_code"),
            "notes": r.text("notes"), "is_active": r.boolean("is_active", default=True),
        }
        row_id = self.add(rec, "suppliers", values, uuid=r.uuid(), created=r.timestamp("created_at"),
                          updated=r.timestamp("updated_at"))
        self.resolver.add_raw("suppliers", raw_id, row_id)

    def ingredients(self, entity: str, value: Any, *, dated: bool) -> None:
        """Two passes, as the parent may come after the child: rows first, then ``parent_slug``."""
        parents: list[tuple[Rec, str, str]] = []

        def first_pass(rec: Rec) -> None:
            r = rec.r
            values = {
                "display_name": r.text("display_name", required=True), "slug": r.text("slug"),
                "category": r.text("category", required=True),
                "hierarchy_level": r.integer("hierarchy_level", default=2),
                "description": r.text("description"), "notes": r.text("notes"),
                "foodon_id": r.text("foodon_id"), "foodex2_code": r.text("foodex2_code"),
                "langual_terms": r.json("langual_terms"), "fdc_ids": r.json("fdc_ids"),
                "density_volume_value": r.real("density_volume_value"),
                "density_volume_unit": r.text("density_volume_unit"),
                "density_weight_value": r.real("density_weight_value"),
                "density_weight_unit": r.text("density_weight_unit"),
                "moisture_pct": r.real("moisture_pct"), "allergens": r.json("allergens"),
            }
            parent = r.text("parent_slug")
            created, updated = self.timestamps(rec, dated=dated)
            row_id = self.add(rec, "ingredients", values, uuid=r.uuid(), created=created, updated=updated)
            if parent is not None and not rec.existing:
                parents.append((rec, row_id, parent))

        self.run(entity, "ingredients", value, first_pass)
        for rec, row_id, parent in parents:
            if row_id not in self.rows.get("ingredients", {}):
                continue
            try:
                parent_id = self.resolver.one("ingredients", "slug", parent, field="parent_slug")
            except RefError as err:
                self.drop("ingredients", row_id, rec, err.field, err.reason, kind=err.kind, target=err.target,
                          key=err.key)
                continue
            if parent_id == row_id:
                self.drop("ingredients", row_id, rec, "parent_slug", "an ingredient cannot be its own parent")
                continue
            self.rows["ingredients"][row_id]["parent_ingredient_id"] = parent_id

    def timestamps(self, rec: Rec, *, dated: bool) -> tuple[str | None, str | None]:
        """created_at/updated_at, falling back to the legacy date_added/last_modified columns."""
        r = rec.r
        created = r.timestamp("created_at")
        updated = r.timestamp("updated_at")
        if dated:
            created = created or r.timestamp("date_added")
            updated = updated or r.timestamp("last_modified")
        return created, updated

    def product_values(self, rec: Rec) -> dict[str, Any]:
        r = rec.r
        return {
            "ingredient_id": self.ref(rec, "ingredients", "slug", "ingredient_slug"),
            "brand": r.text("brand", empty_as_null=True), "product_name": r.text("product_name"),
            "package_size": r.text("package_size"), "package_type": r.text("package_type"),
            "package_unit": r.text("package_unit", required=True),
            "package_unit_quantity": r.real("package_unit_quantity", required=True),
            "upc_code": r.text("upc_code"), "slug": r.text("slug"), "supplier": r.text("supplier"),
            "supplier_sku": r.text("supplier_sku"), "gtin": r.text("gtin"), "brand_owner": r.text("brand_owner"),
            "gpc_brick_code": r.text("gpc_brick_code"), "net_content_value": r.real("net_content_value"),
            "net_content_uom": r.text("net_content_uom"), "country_of_sale": r.text("country_of_sale"),
            "off_id": r.text("off_id"), "preferred": r.boolean("preferred", default=False),
            "is_hidden": r.boolean("is_hidden", default=False),
            "is_provisional": r.boolean("is_provisional", default=False), "notes": r.text("notes"),
        }

    def material_chain(self, data: Callable[[str], Any]) -> None:
        """The five material levels have the same shape in both formats (slugs and uuids)."""

        def category(rec: Rec) -> None:
            r = rec.r
            self.add(rec, "material_categories", {
                "name": r.text("name", required=True), "slug": r.text("slug", required=True),
                "description": r.text("description"), "sort_order": r.integer("sort_order", default=0),
            }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

        def subcategory(rec: Rec) -> None:
            r = rec.r
            self.add(rec, "material_subcategories", {
                "category_id": self.ref(rec, "material_categories", "slug", "category_slug"),
                "name": r.text("name", required=True), "slug": r.text("slug", required=True),
                "description": r.text("description"), "sort_order": r.integer("sort_order", default=0),
            }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

        def material(rec: Rec) -> None:
            r = rec.r
            self.add(rec, "materials", {
                "subcategory_id": self.ref(rec, "material_subcategories", "slug", "subcategory_slug"),
                "name": r.text("name", required=True), "slug": r.text("slug", required=True),
                "base_unit_type": r.enum("base_unit_type", ("each", "linear_cm", "square_cm"), required=True),
                "description": r.text("description"), "notes": r.text("notes"),
            }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

        def product(rec: Rec) -> None:
            r = rec.r
            self.add(rec, "material_products", {
                "material_id": self.ref(rec, "materials", "slug", "material_slug"),
                "supplier_id": self.ref(rec, "suppliers", "slug", "supplier_slug", required=False),
                "name": r.text("name", required=True), "slug": r.text("slug"), "brand": r.text("brand"),
                "sku": r.text("sku"), "package_quantity": r.real("package_quantity", required=True),
                "package_unit": r.text("package_unit", required=True),
                "quantity_in_base_units": r.real("quantity_in_base_units", required=True),
                "is_hidden": r.boolean("is_hidden", default=False),
                "is_provisional": r.boolean("is_provisional", default=False), "notes": r.text("notes"),
            }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

        def unit(rec: Rec) -> None:
            r = rec.r
            self.add(rec, "material_units", {
                "material_product_id": self.ref(rec, "material_products", "slug", "material_product_slug"),
                "name": r.text("name", required=True), "slug": r.text("slug", required=True),
                "quantity_per_unit": r.real("quantity_per_unit", required=True),
                "description": r.text("description"),
            }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

        self.run("material_categories", "material_categories", data("material_categories"), category)
        self.run("material_subcategories", "material_subcategories", data("material_subcategories"), subcategory)
        self.run("materials", "materials", data("materials"), material)
        self.run("material_products", "material_products", data("material_products"), product)
        self.run("material_units", "material_units", data("material_units"), unit)

    def recipe_category(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "recipe_categories", {
            "name": r.text("name", required=True), "slug": r.text("slug", required=True),
            "description": r.text("description"), "sort_order": r.integer("sort_order", default=0),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def finished_good(self, rec: Rec) -> None:
        r = rec.r
        self.add(rec, "finished_goods", {
            "slug": r.text("slug", required=True), "display_name": r.text("display_name", required=True),
            "description": r.text("description"),
            "assembly_type": r.enum("assembly_type", ("bare", "bundle"), default="bundle"),
            "packaging_instructions": r.text("packaging_instructions"),
            "inventory_count": r.integer("inventory_count", default=0), "notes": r.text("notes"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def finished_unit_values(self, rec: Rec, recipe_id: str) -> dict[str, Any]:
        r = rec.r
        return {
            "slug": r.text("slug", required=True), "display_name": r.text("display_name", required=True),
            "recipe_id": recipe_id, "description": r.text("description"),
            "yield_mode": self.yield_mode(rec, "yield_mode", r.raw("items_per_batch")),
            "yield_type": self.yield_type(rec),
            "items_per_batch": r.integer("items_per_batch"), "item_unit": r.text("item_unit"),
            "batch_percentage": r.real("batch_percentage"), "portion_description": r.text("portion_description"),
            "inventory_count": r.integer("inventory_count", default=0), "category": r.text("category"),
            "production_notes": r.text("production_notes"), "notes": r.text("notes"),
        }

    def yield_type(self, rec: Rec) -> str:
        """``EA`` or ``SERVING``; files before 2026-02-08 (and nested units) carry none: SERVING, noted."""
        value = rec.r.enum("yield_type", ("EA", "SERVING"))
        if value is None:
            rec.r.note("yield_type", "missing: SERVING (upstream default)")
            return "SERVING"
        return value

    def yield_mode(self, rec: Rec, key: str, quantity: Any) -> str:
        """A yield mode; a spec-era mode upstream code never defined (``weight``) is read by shape.

        A whole-number yield quantity with a unit ("1 pie") is what ``discrete_count`` stores, so
        such a record is read as ``discrete_count`` and the report notes it. Anything else refuses.
        """
        value = rec.r.raw(key)
        if value is None:
            return "discrete_count"
        try:
            return to_enum(value, key, ("discrete_count", "batch_portion"))
        except ValueProblem:
            if isinstance(value, str) and value.strip().lower() == "weight" and isinstance(quantity, int):
                rec.r.note(key, f"{value!r} (never defined by upstream code) read as discrete_count")
                return "discrete_count"
            raise

    def output_mode(self, rec: Rec) -> str | None:
        """``packaged`` exists only in the upstream spec: kept as "not set" (null) and noted."""
        value = rec.r.raw("output_mode")
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() == "packaged":
            rec.r.note("output_mode", "'packaged' (spec-only, never defined by upstream code) read as null")
            return None
        return to_enum(value, "output_mode", ("bulk_count", "bundled"))

    def event_values(self, rec: Rec) -> dict[str, Any]:
        r = rec.r
        if "plan_state" not in rec.record:
            r.note("plan_state", "not in the file: draft")
        event_date = r.date("event_date", required=True)
        year = r.integer("year")
        if year is None:
            year = int(str(event_date)[:4])
            r.note("year", "missing: taken from event_date")
        return {"name": r.text("name", required=True), "event_date": event_date, "year": year,
                "notes": r.text("notes"), "output_mode": self.output_mode(rec),
                "expected_attendees": r.integer("expected_attendees"),
                "plan_state": r.enum("plan_state", ("draft", "locked", "in_production", "completed"),
                                     default="draft")}

    def production_run(self, rec: Rec) -> None:
        """A production run; both upstream formats write it the same way."""
        r = rec.r
        recipe_id = str(self.recipe_ref(rec))
        unit_id = self.ref(rec, "finished_units", "slug", "finished_unit_slug", required=False)
        if unit_id is None:
            unit_id = self.only_unit_of(rec, recipe_id)
        batches = r.integer("num_batches", required=True)
        actual = r.integer("actual_yield", required=True)
        self.add(rec, "production_runs", {
            "recipe_id": recipe_id, "finished_unit_id": unit_id, "event_id": self.event_ref(rec, required=False),
            "num_batches": batches, "expected_yield": self.expected_yield(rec, unit_id, batches, actual),
            "actual_yield": actual, "produced_at": r.timestamp("produced_at", required=True),
            "notes": r.text("notes"),
            "production_status": r.enum("production_status", ("complete", "partial_loss", "total_loss"),
                                        default="complete"),
            "loss_quantity": r.integer("loss_quantity", default=0),
            "total_ingredient_cost": r.money("total_ingredient_cost"), "per_unit_cost": r.money("per_unit_cost"),
        }, uuid=r.uuid(), created=r.timestamp("created_at"), updated=r.timestamp("updated_at"))

    def expected_yield(self, rec: Rec, unit_id: str, num_batches: int | None, actual: int | None) -> int | None:
        """Upstream's service rule: num_batches × items_per_batch; else the actual yield (noted)."""
        value = rec.r.integer("expected_yield")
        if value is not None:
            return value
        unit = self.row("finished_units", unit_id) or {}
        per_batch = unit.get("items_per_batch")
        if unit.get("yield_mode") == "discrete_count" and per_batch and num_batches:
            rec.r.note("expected_yield", "not in the file: num_batches x items_per_batch")
            return int(num_batches) * int(per_batch)
        rec.r.note("expected_yield", "not in the file: set to actual_yield")
        return actual

    def only_unit_of(self, rec: Rec, recipe_id: str) -> str:
        """The finished unit of a run that names none: the recipe's only one, else refused."""
        units = self.resolver.candidates("finished_units", "recipe", recipe_id)
        if len(units) == 1:
            rec.r.note("finished_unit", "not in the file: the recipe's only finished unit")
            return units[0]
        if not units:
            raise RefError("missing", "recipe_name", "the run names no finished unit and its recipe has none")
        raise RefError("ambiguous", "recipe_name", f"the run names no finished unit and its recipe has "
                       f"{len(units)}; bakestore does not guess which one was produced")

    # ------------------------------------------------------------------ recipes (both formats)

    RECIPE_NESTED: dict[str, tuple[str, str]] = {
        "ingredients": ("recipes[].ingredients", "recipe_ingredients"),
        "components": ("recipes[].components", "recipe_components"),
    }

    def recipes(self, value: Any, *, nested: Mapping[str, tuple[str, str]]) -> list[tuple[Rec, str]]:
        """Recipes in two passes (a variant may precede its base), then their lines and components.

        Returns the recipes translated as new rows, with their ids, for format-specific nested
        arrays (the single file's ``finished_units``). Recipes already in the store (merge) have
        all their nested records counted as existing.
        """
        records = value if isinstance(value, list) else []
        self._recipe_slugs = {r["slug"] for r in records if isinstance(r, dict) and isinstance(r.get("slug"), str)}
        if self.merge:
            self._recipe_slugs.update(str(r["slug"]) for r in self.resolver.store_rows("recipes").values())
        bases: dict[int, str | None] = {}
        ids: dict[int, str] = {}

        def first_pass(rec: Rec) -> None:
            r = rec.r
            name = r.text("name", required=True)
            given = r.text("slug")
            slug = given or self._recipe_slug(rec, str(name))
            if not r.has("is_production_ready"):
                r.note("is_production_ready", "missing: true (the upstream import default)")
            values = {
                "name": name, "slug": slug, "previous_slug": r.text("previous_slug"),
                "category": r.text("category", required=True), "source": r.text("source"),
                "estimated_time_minutes": r.integer("estimated_time_minutes"), "notes": r.text("notes"),
                "is_archived": r.boolean("is_archived", default=False), "base_recipe_id": None,
                "variant_name": r.text("variant_name"),
                "is_production_ready": r.boolean("is_production_ready", default=True),
            }
            bases[id(rec)] = r.text("base_recipe_slug")
            created, updated = self.timestamps(rec, dated=True)
            # A slug bakestore made up is no reference: the file cannot name it (finding it by that
            # slug is how "Pie Crust"'s kebab slug once caught a variant of "Pie-Crust").
            ids[id(rec)] = self.add(rec, "recipes", values, uuid=r.uuid(), created=created, updated=updated,
                                    unindexed=frozenset() if given else frozenset({"slug"}))

        translated: list[tuple[Rec, str]] = []
        for rec in self.run("recipes", "recipes", value, first_pass, nested=nested):
            recipe_id = ids[id(rec)]
            if rec.existing:
                self.skip_nested(rec, nested, "", existing=True)
                continue
            base = bases.get(id(rec))
            if base is not None:
                try:
                    base_id = self._base_recipe(base)
                except RefError as err:
                    self.drop("recipes", recipe_id, rec, "base_recipe_slug", err.reason, kind=err.kind,
                              target=err.target, key=err.key)
                    self.skip_nested(rec, nested, f"its recipe {rec.place} was refused")
                    continue
                if base_id == recipe_id:
                    self.drop("recipes", recipe_id, rec, "base_recipe_slug", "a recipe cannot be its own base")
                    self.skip_nested(rec, nested, f"its recipe {rec.place} was refused")
                    continue
                self.rows["recipes"][recipe_id]["base_recipe_id"] = base_id
            self.run_nested(rec, "ingredients", "recipes[].ingredients", "recipe_ingredients",
                            functools.partial(self._recipe_line, recipe_id=recipe_id))
            self.run_nested(rec, "components", "recipes[].components", "recipe_components",
                            functools.partial(self._recipe_component, recipe_id=recipe_id))
            translated.append((rec, recipe_id))
        return translated

    def _recipe_slug(self, rec: Rec, name: str) -> str:
        """A recipe without a slug: in merge mode the store's recipe of that name, else a new kebab slug."""
        if self.merge:
            matches = self.resolver.store_matches("recipes", "name", name)
            if len(matches) == 1:
                return str(self.resolver.store_rows("recipes")[matches[0]]["slug"])
            if len(matches) > 1:
                raise RefError("ambiguous", "name", f"the file gives no slug and {len(matches)} recipes in the "
                               f"store are named {name!r}; bakestore does not guess which one this is")
        base = kebab_slug(name, fallback="unknown-recipe")
        slug, n = base, 2
        while slug in self._recipe_slugs:
            slug, n = f"{base}-{n}", n + 1
        self._recipe_slugs.add(slug)
        rec.r.note("slug", "not in the file: generated from the name (kebab case)")
        return slug

    def _base_recipe(self, base: str, *, field: str = "base_recipe_slug") -> str:
        """A recipe slug that is real (coordinated, hand-made) or a pseudo-slug (single-file exporter).

        Both readings are looked up together — the file's recipes first, in merge mode the store's
        when the file has neither — and must agree on one recipe: ``pie-crust`` is the real slug
        of "Pie Crust" in a store and the pseudo-slug of "Pie-Crust" in a file, and bakestore does
        not guess which was meant. Slugs bakestore generated are not indexed (see ``recipes``).
        """
        found: list[str] = []
        lookups = [self.resolver.file_matches]
        if self.resolver.store is not None:
            lookups.append(self.resolver.store_matches)
        for lookup in lookups:
            for kind in ("slug", "pseudo"):
                for candidate in lookup("recipes", kind, base):
                    if candidate not in found:
                        found.append(candidate)
            if found:
                break
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(repr(str((self.row("recipes", c) or {}).get("name"))) for c in found)
            raise RefError("ambiguous", field,
                           f"recipe {base!r} is ambiguous: it is the slug or name-derived pseudo-slug of "
                           f"{len(found)} recipes ({names}); bakestore does not guess",
                           target="recipe slugs", key=base)
        for kind in ("slug", "pseudo"):
            where = self.resolver.refused_where("recipes", kind, base)
            if where is not None:
                raise RefError("dependent", field, f"refers to recipe {base!r}, which was refused ({where})",
                               target="recipe slugs", key=base)
        scope = "the file or the store" if self.merge else "the file"
        raise RefError("missing", field, f"no recipe with slug or pseudo-slug {base!r} in {scope}",
                       target="recipe slugs", key=base)

    def _recipe_line(self, rec: Rec, recipe_id: str) -> None:
        r = rec.r
        self.add(rec, "recipe_ingredients", {
            "recipe_id": recipe_id, "ingredient_id": self.ref(rec, "ingredients", "slug", "ingredient_slug"),
            "quantity": r.real("quantity", required=True), "unit": r.text("unit", required=True),
            "notes": r.text("notes"),
        }, uuid=r.uuid())

    def _recipe_component(self, rec: Rec, recipe_id: str) -> None:
        r = rec.r
        component = self.ref_first(rec, "recipes", [("component_recipe_slug", "slug"), ("recipe_slug", "slug"),
                                                    ("recipe_name", "name"), ("component_recipe_name", "name")])
        if component == recipe_id:
            raise ValueProblem("recipe_name", "a recipe cannot be its own component")
        self.add(rec, "recipe_components", {
            "recipe_id": recipe_id, "component_recipe_id": component,
            "quantity": r.real("quantity", default=1.0), "notes": r.text("notes"),
            # The single-file format does not write sort_order: the list position is the order.
            "sort_order": r.integer("sort_order", default=rec.index),
        }, uuid=r.uuid())

    # ------------------------------------------------------------------ finishing

    def sweep(self) -> None:
        """Refuse rows whose foreign keys point at rows that are neither translated nor stored."""
        changed = True
        while changed:
            changed = False
            for table, rows in list(self.rows.items()):
                spec = REGISTRY[table]
                for row_id, row in list(rows.items()):
                    for fk in spec.foreign_keys:
                        target = row.get(fk.column)
                        if target is None or self.exists(fk.other_table, target):
                            continue
                        entity, place = self.origin.get((table, row_id), (table, table))
                        rec = Rec(entity, 0, place, None, RecordReader({}), {})
                        self.drop(table, row_id, rec, fk.column,
                                  f"depends on a {fk.other_table} row that was refused", kind="dependent")
                        changed = True
                        break

    def finish(self) -> MemorySource:
        """Sweep, count, and hand the rows over as a source for the restore/merge pipeline."""
        self.sweep()
        for rep in self.report.entities.values():
            rep.imported = 0
        for (table, _row_id), (entity, _place) in self.origin.items():
            self.report.entity(entity).imported += 1
        rows_by_table: dict[str, list[dict[str, Any]]] = {}
        locations: dict[str, list[str]] = {}
        for spec in REGISTRY.tables:
            rows = self.rows.get(spec.name)
            if not rows:
                continue
            rows_by_table[spec.name] = list(rows.values())
            locations[spec.name] = [f"{self.label}: {self.origin[(spec.name, rid)][1]}" for rid in rows]
        self.report.table_rows = {t: len(r) for t, r in rows_by_table.items()}
        return MemorySource(label=f"legacy {self.src.description}: {self.src.path}", rows_by_table=rows_by_table,
                            sha256=self.src.sha256, locations=locations)


def _show(key: Any) -> str:
    if isinstance(key, tuple):
        return "(" + ", ".join(repr(k) for k in key) + ")"
    return repr(key)


__all__ = ["Rec", "Refused", "Translator", "record_label"]
