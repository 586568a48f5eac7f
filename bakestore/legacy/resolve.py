"""Reference resolution: every upstream reference style → a bakestore UUID, or a reported problem.

Upstream files refer to other records in at least six ways (formats page §2.2, §3.4, §3.5): slugs,
display names (not unique), name-derived pseudo-slugs, the ad-hoc product key
``ingredient:brand:qty:unit``, the six-field product variant key, and raw integer ids of the source
database. The upstream importer resolved each by "first match wins" or skipped the record silently
(§4.4 M1–M3, §4.2 S1). Here a reference resolves only when exactly one row matches:

* no match → a ``missing`` problem naming the key (the report lists all missing keys);
* several matches → an ``ambiguous`` problem naming the candidates' count — never a guess;
* a match on a record that was itself refused → a ``dependent`` problem naming that record.

Indexes are built over *bakestore-shaped* rows (after translation), so the same key functions
serve the file's own rows and, in merge mode, the rows already in the store. The file's rows are
searched first: a file is its own best context.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Mapping

from ..registry import REGISTRY

if TYPE_CHECKING:
    from ..store import Store

KeyFunc = Callable[[Mapping[str, Any]], Hashable | None]


class RefError(Exception):
    """A reference that did not resolve to exactly one row."""

    def __init__(self, kind: str, field: str, reason: str, *, target: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.field = field
        self.reason = reason
        self.target = target
        self.key = key


# --------------------------------------------------------------------------- slugs and keys


def kebab_slug(text: str, *, max_length: int = 200, fallback: str = "unknown") -> str:
    """The upstream kebab slug of a name (ASCII, lowercase, ``-`` separated), e.g. ``sugar-cookies``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-") or fallback


def pseudo_slug(name: str) -> str:
    """The single-file exporter's name-derived "slug": lowercased, spaces → ``_`` (§2.3)."""
    return name.lower().replace(" ", "_")


def blank(value: Any) -> Any:
    """Treat ``""`` like null: the single-file exporter writes ``""`` for an unset brand."""
    return None if value == "" else value


@dataclass(frozen=True)
class ProductKey:
    """The coordinated format's product key ``{ingredient}:{brand}:{qty}:{unit}`` (§3.5)."""

    ingredient_slug: str
    brands: tuple[str | None, ...]
    quantity: float
    unit: str
    text: str


def parse_product_key(text: Any, field: str) -> ProductKey:
    """Split a product key; a ``:`` inside the brand is kept (ingredient first, qty/unit last).

    The brand is written raw; a missing brand became the text ``None``, so ``None`` matches both
    a null brand and a brand literally named "None" (two such products make it ambiguous).
    """
    if not isinstance(text, str):
        raise RefError("invalid", field, f"expected a product key 'ingredient:brand:qty:unit', got {text!r}")
    parts = text.split(":")
    if len(parts) < 4 or not parts[0] or not parts[-1]:
        raise RefError("invalid", field, f"not a product key 'ingredient:brand:qty:unit': {text!r}")
    try:
        quantity = float(parts[-2])
    except ValueError:
        raise RefError("invalid", field, f"product key {text!r}: quantity {parts[-2]!r} is not a number") from None
    brand = ":".join(parts[1:-2])
    brands: tuple[str | None, ...] = (None, "None") if brand == "None" else ((None,) if brand == "" else (brand,))
    return ProductKey(parts[0], brands, quantity, parts[-1], text)


def _qty(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _supplier_display(row: Mapping[str, Any]) -> str | None:
    # The single-file format's preferred_supplier_name: "Costco (Boston, MA)" for physical ones.
    if row.get("city") and row.get("state"):
        return f"{row['name']} ({row['city']}, {row['state']})"
    return row.get("name")


def _all_of(*cols: str) -> KeyFunc:
    """A key of several columns that exists only when every one of them is set."""
    def key(row: Mapping[str, Any]) -> Hashable | None:
        values = tuple(row.get(c) for c in cols)
        return None if any(v is None for v in values) else values
    return key


#: Reference kinds per table beyond the registry's unique keys (which are added automatically).
CUSTOM_KEYS: dict[str, dict[str, KeyFunc]] = {
    "suppliers": {"slug": lambda r: r.get("slug"), "name": lambda r: r.get("name"),
                  "display": _supplier_display},
    "ingredients": {
        # A null slug is referenced by the pseudo-slug of the display name (§2.3 recipe lines).
        "slug": lambda r: r.get("slug") or pseudo_slug(r["display_name"]),
    },
    "products": {
        "variant": lambda r: (r["ingredient_id"], blank(r.get("brand")), blank(r.get("product_name")),
                              blank(r.get("package_size")), r.get("package_unit"), _qty(r.get("package_unit_quantity"))),
        "described": lambda r: (r["ingredient_id"], blank(r.get("brand")), blank(r.get("product_name")),
                                blank(r.get("package_size")), r.get("package_unit")),
        "key": lambda r: (r["ingredient_id"], blank(r.get("brand")), _qty(r.get("package_unit_quantity")),
                          r.get("package_unit")),
        "brand": lambda r: (r["ingredient_id"], blank(r.get("brand"))),
        "slug": lambda r: r.get("slug"),
    },
    "recipes": {"slug": lambda r: r.get("slug"), "name": lambda r: r.get("name"),
                "pseudo": lambda r: pseudo_slug(r["name"]) if r.get("name") else None},
    "finished_units": {"slug": lambda r: r.get("slug"), "display_name": lambda r: r.get("display_name"),
                       "recipe_display": lambda r: (r.get("recipe_id"), r.get("display_name")),
                       "recipe": lambda r: r.get("recipe_id")},
    "finished_goods": {"slug": lambda r: r.get("slug"), "display_name": lambda r: r.get("display_name")},
    "packages": {"name": lambda r: r.get("name")},
    "recipients": {"name": lambda r: r.get("name")},
    "events": {"name": lambda r: r.get("name"), "name_year": lambda r: (r.get("name"), r.get("year"))},
    "material_categories": {"slug": lambda r: r.get("slug")},
    "material_subcategories": {"slug": lambda r: r.get("slug")},
    "materials": {"slug": lambda r: r.get("slug")},
    "material_products": {"slug": lambda r: r.get("slug"),
                          "key": lambda r: (r.get("material_id"), blank(r.get("brand")),
                                            _qty(r.get("package_quantity")), r.get("package_unit"))},
    "material_units": {"slug": lambda r: r.get("slug")},
    "recipe_categories": {"slug": lambda r: r.get("slug"), "name": lambda r: r.get("name")},
    "inventory_items": {"product_date": lambda r: (r.get("product_id"), r.get("purchase_date")),
                        "product": lambda r: r.get("product_id"), "purchase": lambda r: r.get("purchase_id")},
    # Merge identities of records that carry no uuid and no unique key in the single file: the
    # junction's parents, or the run's subject and moment (see MERGE_KINDS).
    "event_recipient_packages": {"assignment": _all_of("event_id", "recipient_id", "package_id")},
    "package_finished_goods": {"pair": _all_of("package_id", "finished_good_id")},
    "compositions": {"package_fg": _all_of("package_id", "finished_good_id"),
                     "package_fu": _all_of("package_id", "finished_unit_id"),
                     "package_mu": _all_of("package_id", "material_unit_id")},
    "production_runs": {"moment": _all_of("recipe_id", "finished_unit_id", "produced_at")},
    "assembly_runs": {"moment": _all_of("finished_good_id", "assembled_at")},
    "production_records": {"moment": _all_of("event_id", "recipe_id", "produced_at")},
    "plan_amendments": {"amendment": _all_of("event_id", "amendment_type", "amendment_data")},
    "purchases": {"product_date": lambda r: (r.get("product_id"), r.get("purchase_date"))},
    "material_purchases": {"product_date": lambda r: (r.get("product_id"), r.get("purchase_date"))},
    "material_inventory_items": {},
}

#: Extra kinds that mean "the same record" in merge mode (besides id and the unique keys). The
#: single file gives most records no uuid; without these, merging the same file twice would add
#: its stock, assignments and runs again (docs/legacy-import.md §3 lists each identity). Inventory
#: lots are matched through their purchase in ``SingleFileTranslator.lot``.
MERGE_KINDS: dict[str, tuple[str, ...]] = {
    "products": ("variant",),
    "events": ("name_year",),
    "recipients": ("name",),
    "packages": ("name",),
    "event_recipient_packages": ("assignment",),
    "package_finished_goods": ("pair",),
    "compositions": ("package_fg", "package_fu", "package_mu"),
    "production_runs": ("moment",),
    "assembly_runs": ("moment",),
    "production_records": ("moment",),
    "plan_amendments": ("amendment",),
}

#: Extra kinds that make two records of one file duplicates (besides the unique keys).
DUPLICATE_KINDS: dict[str, tuple[str, ...]] = {"products": ("variant",)}


def _unique_sets(table: str) -> list[tuple[str, ...]]:
    spec = REGISTRY[table]
    sets: list[tuple[str, ...]] = []
    if spec.natural_key:
        sets.append(tuple(spec.natural_key))
    sets.extend(tuple(u) for u in spec.meta.uniques)
    sets.extend((c.name,) for c in spec.columns if c.unique)
    seen: list[tuple[str, ...]] = []
    for cols in sets:
        if cols not in seen:
            seen.append(cols)
    return seen


def _unique_func(cols: tuple[str, ...]) -> KeyFunc:
    def key(row: Mapping[str, Any]) -> Hashable | None:
        values = tuple(row.get(c) for c in cols)
        # As in SQLite, a NULL in a UNIQUE key never collides.
        return None if any(v is None for v in values) else values
    return key


def key_funcs(table: str) -> dict[str, KeyFunc]:
    """All reference/identity kinds of a table: custom ones plus ``u:<cols>`` unique keys."""
    funcs = dict(CUSTOM_KEYS.get(table, {}))
    for cols in _unique_sets(table):
        funcs["u:" + ",".join(cols)] = _unique_func(cols)
    return funcs


def identity_kinds(table: str, *, merge: bool) -> list[str]:
    """The kinds that identify a row: unique keys, plus the merge or duplicate extras."""
    kinds = ["u:" + ",".join(cols) for cols in _unique_sets(table)]
    kinds.extend((MERGE_KINDS if merge else DUPLICATE_KINDS).get(table, ()))
    return kinds


_NOUNS = {"ingredients": "ingredient", "suppliers": "supplier", "products": "product", "recipes": "recipe",
          "finished_units": "finished unit", "finished_goods": "finished good", "packages": "package",
          "recipients": "recipient", "events": "event", "material_categories": "material category",
          "material_subcategories": "material subcategory", "materials": "material",
          "material_products": "material product", "material_units": "material unit",
          "purchases": "purchase", "inventory_items": "inventory item", "material_purchases": "material purchase",
          "recipe_categories": "recipe category", "compositions": "composition"}
_KIND_WORDS = {"slug": "slugs", "name": "names", "display_name": "display names", "display": "names",
               "pseudo": "pseudo-slugs", "variant": "variant keys", "described": "descriptions", "key": "keys",
               "brand": "brands", "name_year": "name/year pairs", "recipe_display": "display names",
               "raw": "raw ids", "uuid": "uuids", "product_date": "product/date pairs", "recipe": "recipes",
               "product": "products", "purchase": "purchases", "assignment": "event/recipient/package triples",
               "pair": "package/finished good pairs", "package_fg": "package/finished good pairs",
               "package_fu": "package/finished unit pairs", "package_mu": "package/material unit pairs",
               "moment": "subject/time pairs", "amendment": "event/type/data triples"}


def describe(table: str, kind: str) -> str:
    """Human words for a reference kind, e.g. ``ingredient slugs``."""
    return f"{_NOUNS.get(table, table)} {_KIND_WORDS.get(kind, kind)}"


def noun(table: str) -> str:
    return _NOUNS.get(table, table)


# --------------------------------------------------------------------------- the resolver


class Resolver:
    """Indexes of the file's rows (and, in merge mode, the store's rows) by every reference kind."""

    def __init__(self, store: "Store | None" = None) -> None:
        self.store = store
        self._funcs: dict[str, dict[str, KeyFunc]] = {}
        self._file: dict[tuple[str, str], dict[Hashable, list[str]]] = {}
        self._store_index: dict[tuple[str, str], dict[Hashable, list[str]]] = {}
        self._store_rows: dict[str, dict[str, dict[str, Any]]] = {}
        self._refused: dict[tuple[str, str], dict[Hashable, str]] = {}
        #: Raw integer ids of the source file per upstream entity → bakestore id.
        self.raw: dict[str, dict[int, str]] = {}
        self._refused_raw: dict[str, dict[int, str]] = {}
        #: Where each raw id was first written, per entity; ids written twice name no one record.
        self._raw_claims: dict[str, dict[int, str]] = {}
        self._duplicate_raw: dict[str, dict[int, list[str]]] = {}
        #: Raw ids of records not written because the store already has them without a row to
        #: point at (a lot whose purchase is already there but whose own row is gone), with why.
        self._absent_raw: dict[str, dict[int, str]] = {}

    def funcs(self, table: str) -> dict[str, KeyFunc]:
        if table not in self._funcs:
            self._funcs[table] = key_funcs(table)
        return self._funcs[table]

    @staticmethod
    def _keys(funcs: Mapping[str, KeyFunc], row: Mapping[str, Any]) -> Iterable[tuple[str, Hashable]]:
        for kind, func in funcs.items():
            try:
                key = func(row)
                hash(key)
            except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
                # A raw (refused) record may hold anything; what cannot be a key is no key.
                continue
            if key is not None:
                yield kind, key

    # -- registering

    def register(self, table: str, row: Mapping[str, Any], row_id: str | None = None, *,
                 skip: frozenset[str] = frozenset()) -> None:
        """Make a (translated) row findable by all its kinds; ``row_id`` overrides ``row['id']``.

        ``skip`` names reference kinds the row must not be found by — e.g. the ``slug`` bakestore
        generated for a recipe the file gives none: no file can refer to a slug it never had.
        """
        target = row_id or row["id"]
        for kind, key in self._keys(self.funcs(table), row):
            if kind in skip:
                continue
            bucket = self._file.setdefault((table, kind), {}).setdefault(key, [])
            if target not in bucket:
                bucket.append(target)

    def mark_refused(self, table: str, row: Mapping[str, Any], where: str) -> None:
        """Remember a refused row's keys so references to it say *why* they fail."""
        for kind, key in self._keys(self.funcs(table), row):
            self._refused.setdefault((table, kind), {}).setdefault(key, where)

    def refused_where(self, table: str, kind: str, key: Hashable) -> str | None:
        """Where a refused record with this key was, if one was refused."""
        return self._refused.get((table, kind), {}).get(key)

    def refuse_raw(self, entity: str, raw_id: Any, where: str) -> None:
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            self._refused_raw.setdefault(entity, {}).setdefault(raw_id, where)

    def claim_raw(self, entity: str, raw_id: Any, where: str) -> None:
        """Note that the record at ``where`` carries raw ``id`` ``raw_id``; a second one is a duplicate.

        The later record is refused naming the earlier, and the id itself becomes ambiguous: a
        reference to it could mean either record, so it is never resolved (no "last one wins").
        """
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            return
        claims = self._raw_claims.setdefault(entity, {})
        first = claims.get(raw_id)
        if first is None:
            claims[raw_id] = where
            return
        places = self._duplicate_raw.setdefault(entity, {}).setdefault(raw_id, [first])
        places.append(where)
        raise RefError("duplicate", "id", f"duplicate id {raw_id}: {first} has the same id; references to "
                       f"{noun(entity)} id {raw_id} cannot tell the two apart", target=f"{noun(entity)} raw ids",
                       key=str(raw_id))

    def add_raw(self, entity: str, raw_id: Any, row_id: str) -> None:
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            known = self.raw.setdefault(entity, {}).setdefault(raw_id, row_id)
            if known != row_id:  # claim_raw refuses the second record before it gets here
                raise AssertionError(f"raw {entity} id {raw_id} registered for two rows")

    def absent_raw(self, entity: str, raw_id: Any, reason: str) -> None:
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            self._absent_raw.setdefault(entity, {})[raw_id] = reason

    # -- the store (merge mode)

    def store_rows(self, table: str) -> dict[str, dict[str, Any]]:
        if self.store is None:
            return {}
        if table not in self._store_rows:
            rows = {r["id"]: r for r in self.store.rows(table)}
            self._store_rows[table] = rows
            funcs = self.funcs(table)
            for row_id, row in rows.items():
                for kind, key in self._keys(funcs, row):
                    self._store_index.setdefault((table, kind), {}).setdefault(key, []).append(row_id)
        return self._store_rows[table]

    def in_store(self, table: str, row_id: str) -> bool:
        return row_id in self.store_rows(table)

    def store_matches(self, table: str, kind: str, key: Hashable) -> list[str]:
        self.store_rows(table)
        return list(self._store_index.get((table, kind), {}).get(key, ()))

    def file_matches(self, table: str, kind: str, key: Hashable) -> list[str]:
        return list(self._file.get((table, kind), {}).get(key, ()))

    # -- looking up

    def candidates(self, table: str, kind: str, key: Hashable) -> list[str]:
        """File rows first; in merge mode the store's rows when the file has none."""
        found = self.file_matches(table, kind, key)
        if not found and self.store is not None:
            found = self.store_matches(table, kind, key)
        return found

    def one(self, table: str, kind: str, key: Hashable, *, field: str, shown: str | None = None) -> str:
        """The one row ``key`` refers to, or a :class:`RefError` saying why there is not one."""
        text = shown if shown is not None else (key if isinstance(key, str) else repr(key))
        found = self.candidates(table, kind, key)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RefError("ambiguous", field,
                           f"{noun(table)} {text!r} is ambiguous: {len(found)} {table} match it "
                           f"(by {_KIND_WORDS.get(kind, kind)}); bakestore does not guess",
                           target=describe(table, kind), key=text)
        where = self._refused.get((table, kind), {}).get(key)
        if where is not None:
            raise RefError("dependent", field, f"refers to {noun(table)} {text!r}, which was refused ({where})",
                           target=describe(table, kind), key=text)
        scope = "the file or the store" if self.store is not None else "the file"
        raise RefError("missing", field, f"no {noun(table)} with {kind.replace('_', ' ')} {text!r} in {scope}",
                       target=describe(table, kind), key=text)

    def raw_one(self, entity: str, raw_id: Any, *, field: str) -> str:
        """A raw integer id of the source file (only meaningful within that one file)."""
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            raise RefError("invalid", field, f"expected an integer id, got {raw_id!r}")
        twice = self._duplicate_raw.get(entity, {}).get(raw_id)
        if twice:
            raise RefError("ambiguous", field, f"{noun(entity)} id {raw_id} is ambiguous: {' and '.join(twice)} "
                           "both carry it; bakestore does not guess", target=f"{noun(entity)} raw ids",
                           key=str(raw_id))
        absent = self._absent_raw.get(entity, {}).get(raw_id)
        if absent is not None:
            raise RefError("dependent", field, f"refers to {noun(entity)} id {raw_id}, which {absent}",
                           target=f"{noun(entity)} raw ids", key=str(raw_id))
        where = self._refused_raw.get(entity, {}).get(raw_id)
        if where is not None and raw_id not in self.raw.get(entity, {}):
            raise RefError("dependent", field, f"refers to {noun(entity)} id {raw_id}, which was refused ({where})",
                           target=f"{noun(entity)} raw ids", key=str(raw_id))
        ids = self.raw.get(entity)
        if not ids:
            raise RefError("missing", field, f"raw {entity} id {raw_id} cannot be resolved: this file's "
                           f"{entity} carry no ids", target=f"{noun(entity)} raw ids", key=str(raw_id))
        if raw_id not in ids:
            raise RefError("missing", field, f"no {noun(entity)} with id {raw_id} in this file",
                           target=f"{noun(entity)} raw ids", key=str(raw_id))
        return ids[raw_id]


__all__ = [
    "CUSTOM_KEYS", "MERGE_KINDS", "ProductKey", "RefError", "Resolver", "blank", "describe",
    "identity_kinds", "kebab_slug", "key_funcs", "noun", "parse_product_key", "pseudo_slug",
]
