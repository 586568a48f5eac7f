"""Seed rows: the 35 units and the 7 default recipe categories.

Seeding is idempotent and never collides with restored rows: a seed row is inserted only when no
row with its natural key exists, and its id is derived from the natural key (UUIDv5), so two
devices that seed independently produce the same ids and sync does not duplicate them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .errors import SchemaError
from .registry import REGISTRY

if TYPE_CHECKING:
    from .store import Store

_NAMESPACE = uuid.UUID("6f1d3c3e-5b7a-4c1e-9a55-62616b657374")

# (code, display_name, symbol, un_cefact_code) per category, in sort order (domain reference §6.1).
UNITS: dict[str, list[tuple[str, str, str, str | None]]] = {
    "weight": [("oz", "ounce", "oz", "ONZ"), ("lb", "pound", "lb", "LBR"), ("g", "gram", "g", "GRM"),
               ("kg", "kilogram", "kg", "KGM")],
    "volume": [("tsp", "teaspoon", "tsp", None), ("tbsp", "tablespoon", "tbsp", None), ("cup", "cup", "cup", None),
               ("ml", "milliliter", "ml", "MLT"), ("l", "liter", "l", "LTR"), ("fl oz", "fluid ounce", "fl oz", "OZA"),
               ("pt", "pint", "pt", "PTI"), ("qt", "quart", "qt", "QTI"), ("gal", "gallon", "gal", "GLL")],
    "count": [("each", "each", "ea", "EA"), ("count", "count", "ct", None), ("piece", "piece", "pc", "PCE"),
              ("dozen", "dozen", "dz", "DZN")],
    "package": [(code, code, code, un) for code, un in [
        ("bag", "BG"), ("bar", None), ("bottle", "BO"), ("box", "BX"), ("can", "CA"), ("carton", "CT"),
        ("clamshell", None), ("container", None), ("jar", "JR"), ("packet", "PA"), ("pouch", "PO"),
        ("roll", "RL"), ("sachet", None), ("sheet", "ST"), ("stick", None), ("tub", "TB"), ("tube", "TU"),
        ("wrapper", None)]],
}

RECIPE_CATEGORIES: list[tuple[str, str, int]] = [
    ("Cakes", "cakes", 10), ("Cookies", "cookies", 20), ("Candies", "candies", 30), ("Brownies", "brownies", 40),
    ("Bars", "bars", 50), ("Breads", "breads", 60), ("Other", "other", 70),
]


def seed_id(table: str, natural_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{table}:{natural_key}"))


def seed_rows() -> dict[str, list[dict[str, Any]]]:
    """The seed rows per seed table, without timestamps or versions (the store adds those)."""
    units = [
        {"id": seed_id("units", code), "code": code, "display_name": name, "symbol": symbol,
         "category": category, "un_cefact_code": un, "sort_order": order}
        for category, entries in UNITS.items()
        for order, (code, name, symbol, un) in enumerate(entries)
    ]
    categories = [
        {"id": seed_id("recipe_categories", slug), "name": name, "slug": slug, "description": None,
         "sort_order": order}
        for name, slug, order in RECIPE_CATEGORIES
    ]
    rows = {"units": units, "recipe_categories": categories}
    # Every seed table of the registry must have seed rows here, and only seed tables.
    if set(rows) != {spec.name for spec in REGISTRY.seed_tables}:
        raise SchemaError(f"seed rows exist for {sorted(rows)} but the registry's seed tables are "
                          f"{sorted(s.name for s in REGISTRY.seed_tables)}")
    return rows


def seed_store(store: "Store") -> dict[str, int]:
    """Insert missing seed rows; returns how many were inserted per table (0 when already seeded)."""
    inserted: dict[str, int] = {}
    with store.write():
        for table, rows in seed_rows().items():
            spec = store.spec(table)
            key = spec.natural_key or ("id",)
            missing = []
            for row in rows:
                clause = " AND ".join(f'"{c}" = ?' for c in key)
                exists = store.db.execute(f'SELECT 1 FROM "{table}" WHERE {clause} OR id = ?',
                                          [row[c] for c in key] + [row["id"]]).fetchone()
                if not exists:
                    missing.append(row)
            if missing:
                store.insert_many(table, missing)
            inserted[table] = len(missing)
    return inserted
