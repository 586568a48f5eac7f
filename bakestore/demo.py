"""A realistic, deterministic demo dataset covering every domain table.

Why it exists: the UI, the docs, the benchmarks and the restore/export tests all need a database
that looks like a real home baker's data (an ingredient tree with hundreds of leaves, brands and
package sizes, FIFO lots, recipes with variants and sub-recipes, finished units and goods, gift
bundles, events with plans, production and assembly ledgers, definition snapshots) and that is
byte-for-byte reproducible, so a failing run can be rebuilt exactly.

Determinism. Everything comes from ``random.Random(seed)`` and a fake clock: the first generated
row is stamped just after :data:`DEMO_START` (2026-10-01T09:00:00Z) and every row advances the clock
by :data:`ROW_STEP_MS` milliseconds. Ids are ``uuid7(ms, rng)``, row versions come from a
:class:`~bakestore.clock.HybridLogicalClock` of :data:`DEMO_DEVICE` reading that clock, and the
Store that creates the file uses a constant wall clock, so even the seeds are the same every time.
Building twice with the same ``scale`` and ``seed`` gives identical rows in every domain table,
and the same ``db_id`` (derived from seed and scale), so the export of a demo database is the same
bytes every time: ``exports/demo/`` in the repository is that golden export.

What ``scale`` means. ``scale`` is a linear multiplier: the dataset is ``scale`` "kitchens", each
adding about :data:`ROWS_PER_SCALE` (5,260) rows — 200 leaf ingredients with ~300 products and their
purchases, lots and depletions, ~70 recipes (variants and sub-recipes included) with their finished
units and goods, 16 gift bundles, 10 packages, a materials catalogue, 4-5 events with plans, and
the production/assembly ledgers and snapshots of those events. The ingredient roots and mid-tiers,
the material categories/subcategories, online suppliers and the seeds are shared. So
``rows ≈ 40 + 5,260 × scale`` (:data:`FIXED_ROWS`, :data:`ROWS_PER_SCALE`): ``scale=1`` (the
default) gives about 5,300 rows and builds in a fraction of a second; :func:`scale_for_rows` maps
a total row target to a scale (``scale_for_rows(1_000_000) == 190``) and :func:`estimate_rows` is
the inverse.

Streaming. Rows are generated table by table in registry dependency order and never held all at
once; between tables the generator keeps only the ids and small facts later tables refer to
(a few hundred bytes per parent row), so a million-row build stays within a modest amount of memory.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random
import re
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from .clock import HybridLogicalClock, uuid7
from .errors import ConfigurationError
from .models.base import canonical_json
from .registry import REGISTRY, TableSpec
from .store import Store, bulk_insert

__all__ = [
    "DEMO_DEVICE",
    "DEMO_START",
    "DEMO_START_MS",
    "FIXED_ROWS",
    "ROWS_PER_SCALE",
    "ROW_STEP_MS",
    "DemoGenerator",
    "build_demo",
    "estimate_rows",
    "generate",
    "iter_tables",
    "scale_for_rows",
]

#: The device id every demo row version carries (32 hex characters; "de30" reads as "demo").
DEMO_DEVICE = "0000000000000000000000000000de30"
#: The fixed instant the demo is "entered": seeds get exactly this time, generated rows follow it.
DEMO_START = _dt.datetime(2026, 10, 1, 9, 0, 0, tzinfo=_dt.timezone.utc)
DEMO_START_MS = int(DEMO_START.timestamp() * 1000)
#: Milliseconds the fake clock advances per generated row (ids then sort by creation order).
ROW_STEP_MS = 3
#: ``FIXED_ROWS + ROWS_PER_SCALE * scale`` is a line fitted to measured totals (scales 1-189, within
#: 1 %); ``tests/test_demo.py`` keeps it honest.
FIXED_ROWS = 40
ROWS_PER_SCALE = 5_260

_TODAY = DEMO_START.date().toordinal()
_DAY = 86_400


# --------------------------------------------------------------------------- scale


def estimate_rows(scale: int) -> int:
    """About how many rows (seeds included) a demo of this scale holds."""
    return FIXED_ROWS + ROWS_PER_SCALE * max(1, int(scale))


def scale_for_rows(rows: int) -> int:
    """The scale whose demo holds about ``rows`` rows in total (at least 1)."""
    return max(1, round((int(rows) - FIXED_ROWS) / ROWS_PER_SCALE))


# --------------------------------------------------------------------------- text helpers


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _kebab(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(text).lower().replace("'", "")).strip("-")


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", _ascii(text).lower().replace("'", "")).strip("_")


class _Slugs:
    """Hands out unique slugs, adding ``<sep>2``, ``<sep>3``… on collision (as upstream does)."""

    def __init__(self, sep: str, first_suffix: int = 2, max_len: int | None = None) -> None:
        self.sep = sep
        self.first = first_suffix
        self.max_len = max_len
        self.used: set[str] = set()
        self.next: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        if self.max_len:
            base = base[: self.max_len].rstrip(self.sep)
        if base not in self.used:
            self.used.add(base)
            return base
        n = self.next.get(base, self.first)
        while f"{base}{self.sep}{n}" in self.used:
            n += 1
        self.next[base] = n + 1
        slug = f"{base}{self.sep}{n}"
        self.used.add(slug)
        return slug


def _date(ordinal: int) -> str:
    return _dt.date.fromordinal(ordinal).isoformat()


def _stamp(ordinal: int, seconds: int) -> str:
    """A business timestamp (``produced_at``…) at ``seconds`` past midnight UTC of a day."""
    h, rest = divmod(seconds % _DAY, 3600)
    return f"{_date(ordinal)}T{h:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"


def _past(ordinal: int) -> int:
    """Things that already happened are dated no later than the day before the demo instant."""
    return min(ordinal, _TODAY - 1)


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def _gtin13(n: int) -> str:
    body = f"0{n:011d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


# --------------------------------------------------------------------------- domain vocabulary

# Package options per kind of product: (quantity, unit code, package type, price low, price high).
_PACKAGES: dict[str, list[tuple[float, str, str, float, float]]] = {
    "flour": [(5, "lb", "bag", 3.5, 8.0), (2, "lb", "bag", 2.5, 6.0), (10, "lb", "bag", 7.0, 14.0),
              (25, "lb", "bag", 14.0, 28.0), (1.5, "kg", "bag", 4.0, 9.0)],
    "sugar": [(4, "lb", "bag", 3.0, 6.5), (2, "lb", "bag", 2.0, 4.5), (10, "lb", "bag", 6.5, 12.0),
              (1, "lb", "box", 1.8, 4.5)],
    "syrup": [(12, "fl oz", "bottle", 3.5, 9.0), (16, "fl oz", "jar", 4.5, 12.0), (32, "fl oz", "bottle", 8.0, 22.0)],
    "butter": [(1, "lb", "box", 3.5, 8.5), (4, "lb", "box", 12.0, 24.0), (8, "oz", "wrapper", 3.0, 6.0)],
    "milk": [(0.5, "gal", "carton", 2.5, 5.0), (1, "qt", "carton", 2.0, 5.5), (1, "pt", "carton", 1.8, 4.0),
             (12, "fl oz", "can", 1.5, 3.5)],
    "cheese": [(8, "oz", "tub", 2.0, 5.0), (16, "oz", "tub", 3.5, 8.0), (3, "lb", "tub", 9.0, 16.0)],
    "eggs": [(1, "dozen", "carton", 2.5, 7.0), (18, "each", "carton", 4.0, 9.0), (5, "dozen", "box", 9.0, 18.0)],
    "chocolate": [(4, "oz", "bar", 2.5, 6.0), (10, "oz", "bag", 4.5, 10.0), (2.2, "lb", "bag", 15.0, 38.0),
                  (1, "kg", "bag", 18.0, 42.0)],
    "chips": [(12, "oz", "bag", 3.0, 5.5), (24, "oz", "bag", 5.5, 9.5), (72, "oz", "bag", 12.0, 20.0)],
    "cocoa": [(8, "oz", "can", 3.5, 9.0), (1, "lb", "bag", 7.0, 16.0), (250, "g", "pouch", 6.0, 14.0)],
    "nuts": [(8, "oz", "bag", 4.0, 9.0), (1, "lb", "bag", 7.0, 14.0), (2, "lb", "bag", 12.0, 24.0),
             (3, "lb", "bag", 16.0, 30.0)],
    "nutbutter": [(16, "oz", "jar", 2.5, 6.5), (40, "oz", "jar", 5.5, 11.0)],
    "spice": [(2, "oz", "jar", 3.0, 8.0), (1, "oz", "jar", 2.5, 6.5), (8, "oz", "bag", 6.0, 14.0),
              (18, "oz", "container", 7.0, 15.0)],
    "extract": [(2, "fl oz", "bottle", 4.0, 14.0), (4, "fl oz", "bottle", 7.0, 24.0), (16, "fl oz", "bottle", 20.0, 60.0)],
    "leavener": [(8.1, "oz", "can", 1.5, 4.0), (1, "lb", "box", 1.0, 3.0), (4, "oz", "jar", 3.0, 7.0),
                 (2, "lb", "bag", 4.0, 9.0)],
    "yeast": [(1, "lb", "pouch", 5.0, 10.0), (4, "oz", "jar", 4.0, 8.0), (3, "each", "packet", 1.5, 3.0)],
    "oil": [(48, "fl oz", "bottle", 3.5, 9.0), (1, "gal", "bottle", 8.0, 18.0), (16, "fl oz", "bottle", 5.0, 14.0),
            (14, "oz", "jar", 6.0, 12.0)],
    "shortening": [(48, "oz", "can", 5.5, 9.0), (1, "lb", "tub", 3.0, 7.0)],
    "driedfruit": [(6, "oz", "bag", 2.5, 5.0), (1, "lb", "bag", 4.5, 9.0), (2, "lb", "bag", 7.0, 15.0)],
    "fresh": [(3, "lb", "bag", 2.5, 6.0), (6, "each", "bag", 2.0, 5.0), (1, "pt", "clamshell", 2.5, 5.5)],
    "preserves": [(12, "oz", "jar", 3.0, 6.5), (18, "oz", "jar", 4.0, 8.0), (15, "oz", "can", 1.5, 3.5)],
    "sprinkles": [(3, "oz", "container", 2.5, 5.0), (8, "oz", "jar", 5.0, 10.0), (1, "lb", "bag", 8.0, 15.0)],
    "colors": [(0.75, "oz", "tube", 2.0, 4.5), (8, "oz", "container", 6.0, 12.0), (12, "each", "box", 12.0, 22.0)],
    "candy": [(12, "each", "box", 2.0, 5.0), (8, "oz", "bag", 2.5, 5.5), (1, "lb", "bag", 4.0, 9.0)],
    "packaging": [(50, "each", "box", 6.0, 18.0), (100, "count", "bag", 5.0, 14.0), (12, "each", "box", 8.0, 24.0),
                  (200, "count", "box", 6.0, 16.0)],
}

# The ingredient tree: root → mid-tiers (name, recipe unit, package kind, allergens,
# cost per recipe unit (low, high), shelf life in days, density or None, leaves).
_Density = tuple[float, str, float, str] | None
_TREE: list[tuple[str, list[tuple[str, str, str, list[str], tuple[float, float], int, _Density, list[str]]]]] = [
    ("Flours & Grains", [
        ("Wheat Flours", "cup", "flour", ["gluten"], (0.15, 0.6), 365, (1.0, "cup", 4.25, "oz"),
         ["All-Purpose Flour", "Bread Flour", "Cake Flour", "Pastry Flour", "Whole Wheat Flour",
          "Self-Rising Flour", "Semolina Flour", "White Whole Wheat Flour"]),
        ("Nut & Seed Flours", "cup", "flour", ["tree_nuts"], (1.2, 3.0), 180, (1.0, "cup", 3.4, "oz"),
         ["Almond Flour", "Hazelnut Flour", "Coconut Flour", "Flaxseed Meal"]),
        ("Gluten-Free Flours", "cup", "flour", [], (0.5, 1.8), 270, (1.0, "cup", 4.5, "oz"),
         ["Gluten-Free Flour Blend", "Rice Flour", "Oat Flour", "Buckwheat Flour", "Sorghum Flour",
          "Tapioca Starch", "Potato Starch", "Cornstarch"]),
        ("Grains & Meals", "cup", "flour", ["gluten"], (0.2, 0.9), 365, None,
         ["Yellow Cornmeal", "Old-Fashioned Rolled Oats", "Quick Oats", "Rye Flour", "Spelt Flour",
          "Graham Cracker Crumbs"]),
    ]),
    ("Sugars & Sweeteners", [
        ("Granulated Sugars", "cup", "sugar", [], (0.2, 0.8), 1095, (1.0, "cup", 7.1, "oz"),
         ["Granulated Sugar", "Superfine Sugar", "Turbinado Sugar", "Sanding Sugar", "Pearl Sugar"]),
        ("Brown Sugars", "cup", "sugar", [], (0.3, 0.9), 730, (1.0, "cup", 7.5, "oz"),
         ["Light Brown Sugar", "Dark Brown Sugar", "Muscovado Sugar"]),
        ("Powdered Sugars", "cup", "sugar", [], (0.25, 0.7), 730, (1.0, "cup", 4.0, "oz"),
         ["Confectioners' Sugar", "Snow Sugar"]),
        ("Liquid Sweeteners", "tbsp", "syrup", [], (0.15, 0.8), 730, None,
         ["Honey", "Pure Maple Syrup", "Light Corn Syrup", "Dark Corn Syrup", "Molasses", "Golden Syrup",
          "Agave Syrup"]),
    ]),
    ("Dairy & Eggs", [
        ("Butter", "cup", "butter", ["milk"], (2.0, 5.0), 120, (1.0, "cup", 8.0, "oz"),
         ["Unsalted Butter", "Salted Butter", "European-Style Butter", "Cultured Butter"]),
        ("Milk & Cream", "cup", "milk", ["milk"], (0.3, 1.5), 14, None,
         ["Whole Milk", "Buttermilk", "Heavy Cream", "Half-and-Half", "Evaporated Milk",
          "Sweetened Condensed Milk", "Nonfat Dry Milk"]),
        ("Cheese", "oz", "cheese", ["milk"], (0.3, 0.9), 30, None, ["Cream Cheese", "Mascarpone", "Ricotta"]),
        ("Eggs", "each", "eggs", ["eggs"], (0.2, 0.6), 35, None,
         ["Large Eggs", "Egg Whites", "Egg Yolks", "Meringue Powder"]),
        ("Cultured Dairy", "cup", "cheese", ["milk"], (0.8, 2.5), 21, None,
         ["Sour Cream", "Greek Yogurt", "Crème Fraîche"]),
    ]),
    ("Chocolate & Cocoa", [
        ("Baking Chocolate", "oz", "chocolate", ["milk", "soy"], (0.5, 1.8), 365, None,
         ["Bittersweet Chocolate", "Semisweet Chocolate", "Milk Chocolate", "White Chocolate",
          "Unsweetened Chocolate"]),
        ("Chips & Chunks", "cup", "chips", ["milk", "soy"], (1.5, 4.0), 365, None,
         ["Semisweet Chocolate Chips", "Mini Chocolate Chips", "Dark Chocolate Chunks", "White Chocolate Chips",
          "Butterscotch Chips", "Peanut Butter Chips"]),
        ("Cocoa Powders", "cup", "cocoa", [], (1.5, 4.0), 730, (1.0, "cup", 3.0, "oz"),
         ["Natural Cocoa Powder", "Dutch-Process Cocoa Powder", "Black Cocoa Powder"]),
    ]),
    ("Nuts & Seeds", [
        ("Tree Nuts", "cup", "nuts", ["tree_nuts"], (2.0, 6.0), 180, None,
         ["Pecans", "Walnuts", "Sliced Almonds", "Hazelnuts", "Pistachios", "Macadamia Nuts", "Cashews"]),
        ("Peanuts & Nut Butters", "cup", "nutbutter", ["peanuts"], (1.0, 3.0), 270, None,
         ["Roasted Peanuts", "Creamy Peanut Butter", "Crunchy Peanut Butter", "Almond Butter"]),
        ("Seeds", "tbsp", "nuts", ["sesame"], (0.1, 0.5), 365, None,
         ["Sesame Seeds", "Poppy Seeds", "Sunflower Seeds", "Pumpkin Seeds", "Chia Seeds"]),
    ]),
    ("Spices & Flavorings", [
        ("Ground Spices", "tsp", "spice", [], (0.1, 0.6), 1095, None,
         ["Ground Cinnamon", "Ground Ginger", "Ground Nutmeg", "Ground Cloves", "Ground Allspice",
          "Ground Cardamom", "Pumpkin Pie Spice"]),
        ("Extracts", "tsp", "extract", [], (0.3, 1.5), 1460, None,
         ["Pure Vanilla Extract", "Almond Extract", "Peppermint Extract", "Lemon Extract", "Orange Extract"]),
        ("Salt & Other Flavorings", "tsp", "spice", [], (0.02, 0.8), 1825, None,
         ["Fine Sea Salt", "Kosher Salt", "Flaky Sea Salt", "Vanilla Bean Paste", "Instant Espresso Powder"]),
    ]),
    ("Leaveners", [
        ("Chemical Leaveners", "tsp", "leavener", [], (0.02, 0.15), 545, None,
         ["Baking Soda", "Baking Powder", "Cream of Tartar"]),
        ("Yeast", "tsp", "yeast", [], (0.1, 0.4), 365, None, ["Instant Yeast", "Active Dry Yeast", "Fresh Yeast"]),
    ]),
    ("Fats & Oils", [
        ("Oils", "cup", "oil", [], (0.4, 2.5), 365, None,
         ["Canola Oil", "Vegetable Oil", "Extra-Virgin Olive Oil", "Coconut Oil"]),
        ("Shortening & Lard", "cup", "shortening", [], (0.6, 1.5), 365, None,
         ["Vegetable Shortening", "Lard", "Vegan Butter Sticks"]),
    ]),
    ("Fruits & Produce", [
        ("Dried Fruit", "cup", "driedfruit", [], (1.0, 3.5), 365, None,
         ["Raisins", "Dried Cranberries", "Dried Cherries", "Chopped Dates", "Dried Apricots",
          "Candied Orange Peel", "Sweetened Shredded Coconut"]),
        ("Fresh Produce", "each", "fresh", [], (0.3, 1.2), 10, None,
         ["Lemons", "Oranges", "Granny Smith Apples", "Ripe Bananas", "Blueberries", "Carrots", "Zucchini"]),
        ("Preserves & Purees", "cup", "preserves", [], (1.0, 3.0), 365, None,
         ["Raspberry Jam", "Apricot Preserves", "Lemon Curd", "Pumpkin Puree", "Unsweetened Applesauce"]),
    ]),
    ("Decorations", [
        ("Sprinkles & Sugars", "tbsp", "sprinkles", [], (0.2, 0.8), 730, None,
         ["Rainbow Sprinkles", "Nonpareils", "Red & Green Sanding Sugar", "Edible Gold Stars"]),
        ("Colors & Icing Aids", "tsp", "colors", [], (0.2, 1.0), 730, None,
         ["Red Gel Food Coloring", "Green Gel Food Coloring", "Piping Gel"]),
        ("Candy", "oz", "candy", [], (0.3, 1.0), 365, None,
         ["Candy Canes", "Crushed Peppermint", "Toffee Bits", "Mini Marshmallows", "Chocolate Kisses"]),
    ]),
    # Packaging is bought like food (products, purchases, lots) and used as bundle components.
    ("Packaging", [
        ("Bags", "each", "packaging", [], (0.05, 0.3), 3650, None,
         ["Cellophane Treat Bags", "Glassine Cookie Bags", "Kraft Paper Bags"]),
        ("Boxes & Tins", "each", "packaging", [], (0.5, 3.0), 3650, None,
         ["Holiday Cookie Tins", "Bakery Boxes", "Window Cookie Boxes", "Cupcake Boxes"]),
        ("Liners & Wraps", "each", "packaging", [], (0.02, 0.2), 3650, None,
         ["Parchment Paper Sheets", "Mini Paper Candy Cups", "Cupcake Liners", "Glassine Layer Sheets"]),
    ]),
]
_PACKAGING_ROOT = "Packaging"

_MODIFIERS = ["Organic", "Bulk", "Fair-Trade", "Local", "Imported", "Premium", "Value", "Heritage", "Small-Batch",
              "Artisan", "Restaurant-Grade", "Non-GMO", "Kosher", "Fine", "Extra-Fine", "Coarse"]

_BRANDS: dict[str, list[str]] = {
    "Flours & Grains": ["King Arthur", "Gold Medal", "Bob's Red Mill", "Pillsbury", "Arrowhead Mills",
                        "Kirkland Signature", "365 by Whole Foods Market", "Great Value"],
    "Sugars & Sweeteners": ["Domino", "C&H", "Wholesome", "Florida Crystals", "Lyle's", "Grandma's",
                            "Kirkland Signature", "Karo"],
    "Dairy & Eggs": ["Land O'Lakes", "Kerrygold", "Cabot", "Horizon Organic", "Philadelphia", "Organic Valley",
                     "Vital Farms", "Hood", "Eagle Brand", "Plugrá"],
    "Chocolate & Cocoa": ["Guittard", "Ghirardelli", "Callebaut", "Valrhona", "Nestlé Toll House", "Baker's",
                          "Hershey's", "Lindt", "Enjoy Life"],
    "Nuts & Seeds": ["Diamond of California", "Blue Diamond", "Fisher", "Wonderful", "Planters", "Skippy", "Jif",
                     "Nuts.com"],
    "Spices & Flavorings": ["McCormick", "Penzeys", "Simply Organic", "Nielsen-Massey", "Morton",
                            "Diamond Crystal", "Maldon", "Medaglia d'Oro"],
    "Leaveners": ["Arm & Hammer", "Clabber Girl", "Rumford", "Red Star", "SAF", "Fleischmann's", "Hodgson Mill"],
    "Fats & Oils": ["Crisco", "Mazola", "Wesson", "California Olive Ranch", "Nutiva", "Earth Balance", "Armour"],
    "Fruits & Produce": ["Sun-Maid", "Ocean Spray", "Bonne Maman", "Smucker's", "Libby's", "Mariani", "Dole",
                         "Local Farm"],
    "Decorations": ["Wilton", "Sweetapolita", "AmeriColor", "Chefmaster", "Heath", "Brach's", "Jet-Puffed",
                    "Hershey's"],
    "Packaging": ["Wilton", "Uline", "BakeBox Co.", "Reynolds", "If You Care", "Fox Run", "Celebrate It"],
}
_BRAND_OWNERS = {"Gold Medal": "General Mills", "Pillsbury": "General Mills", "Domino": "ASR Group",
                 "C&H": "ASR Group", "Karo": "ACH Food Companies", "Nestlé Toll House": "Nestlé USA",
                 "Baker's": "Kraft Heinz", "Philadelphia": "Kraft Heinz", "Land O'Lakes": "Land O'Lakes, Inc.",
                 "Kerrygold": "Ornua", "Ghirardelli": "Lindt & Sprüngli", "Lindt": "Lindt & Sprüngli",
                 "Jif": "The J.M. Smucker Company", "Smucker's": "The J.M. Smucker Company",
                 "Crisco": "B&G Foods", "Fleischmann's": "AB Mauri", "Red Star": "Lesaffre", "SAF": "Lesaffre",
                 "Arm & Hammer": "Church & Dwight", "McCormick": "McCormick & Company",
                 "Kirkland Signature": "Costco Wholesale", "Great Value": "Walmart",
                 "365 by Whole Foods Market": "Whole Foods Market", "Libby's": "Nestlé USA"}
_GPC = {"Flours & Grains": "10000187", "Sugars & Sweeteners": "10000191", "Dairy & Eggs": "10000025",
        "Chocolate & Cocoa": "10000045", "Nuts & Seeds": "10000249", "Spices & Flavorings": "10000183",
        "Leaveners": "10000186", "Fats & Oils": "10000040", "Fruits & Produce": "10000206",
        "Decorations": "10000197", "Packaging": "10001686"}
_UN_UOM = {"oz": "ONZ", "lb": "LBR", "g": "GRM", "kg": "KGM", "fl oz": "OZA", "gal": "GLL", "qt": "QTI",
           "pt": "PTI", "ml": "MLT", "l": "LTR", "each": "H87", "count": "H87", "dozen": "DZN"}
_PKG_CODE = {"bag": "BG", "box": "BX", "bottle": "BO", "jar": "JR", "can": "CA", "carton": "CT", "tub": "TB",
             "tube": "TU", "pouch": "PO", "packet": "PA", "bar": "PU", "wrapper": "WRP", "container": "CON",
             "clamshell": "PUN"}

_ALIASES: dict[str, list[tuple[str, str | None]]] = {"All-Purpose Flour": [("Plain Flour", "en-GB"), ("AP flour", None)],
            "Confectioners' Sugar": [("Icing Sugar", "en-GB"), ("Powdered Sugar", "en-US")],
            "Superfine Sugar": [("Caster Sugar", "en-GB")], "Baking Soda": [("Bicarbonate of Soda", "en-GB")],
            "Heavy Cream": [("Double Cream", "en-GB"), ("Heavy Whipping Cream", "en-US")],
            "Cornstarch": [("Cornflour", "en-GB")], "Molasses": [("Black Treacle", "en-GB")],
            "Semisweet Chocolate Chips": [("Chocolate Morsels", "en-US")], "Self-Rising Flour": [("Self-Raising Flour", "en-GB")],
            "Golden Syrup": [("Light Treacle", "en-GB")], "Cake Flour": [("Soft Wheat Flour", None)],
            "Raisins": [("Sultanas", "en-GB")], "Zucchini": [("Courgette", "en-GB")],
            "Instant Yeast": [("Fast-Action Yeast", "en-GB"), ("Rapid-Rise Yeast", "en-US")],
            "Sliced Almonds": [("Flaked Almonds", "en-GB")], "Granulated Sugar": [("Sucre semoule", "fr")]}

_ONLINE_FOOD = ("King Arthur Baking Company", "Amazon", "WebstaurantStore", "Nuts.com", "Penzeys Spices")
_ONLINE_PACKAGING = ("Amazon", "WebstaurantStore", "Uline", "Paper Mart", "Bake It Pretty")
_SUPPLIER_CHAINS = [("Costco", "costco.com"), ("Whole Foods Market", "wholefoodsmarket.com"),
                    ("Trader Joe's", "traderjoes.com"), ("Market Basket", "shopmarketbasket.com"),
                    ("Wegmans", "wegmans.com"), ("Stop & Shop", "stopandshop.com"), ("Hannaford", "hannaford.com"),
                    ("Restaurant Depot", "restaurantdepot.com"), ("Target", "target.com"),
                    ("Shaw's", "shaws.com"), ("BJ's Wholesale Club", "bjs.com"), ("Walmart Supercenter", "walmart.com")]
_CITIES = [("Boston", "MA", "02118"), ("Cambridge", "MA", "02139"), ("Somerville", "MA", "02143"),
           ("Natick", "MA", "01760"), ("Quincy", "MA", "02169"), ("Portland", "ME", "04101"),
           ("Nashua", "NH", "03060"), ("Providence", "RI", "02903"), ("Burlington", "VT", "05401"),
           ("Hartford", "CT", "06103"), ("Worcester", "MA", "01608"), ("Springfield", "MA", "01103"),
           ("Albany", "NY", "12207"), ("Manchester", "NH", "03101"), ("Salem", "MA", "01970"),
           ("Lowell", "MA", "01852"), ("Bangor", "ME", "04401"), ("New Haven", "CT", "06510")]
_STREETS = ["Main St", "Maple Ave", "Elm St", "Washington St", "Broadway", "Oak St", "Park Ave", "Pleasant St",
            "Highland Ave", "Union St", "School St", "Church St", "Water St", "Cedar Ln", "Mill Rd", "Summer St"]
_ONLINE = [("King Arthur Baking Company", "https://shop.kingarthurbaking.com"), ("Amazon", "https://www.amazon.com"),
           ("WebstaurantStore", "https://www.webstaurantstore.com"), ("Nuts.com", "https://nuts.com"),
           ("Penzeys Spices", "https://www.penzeys.com"), ("Uline", "https://www.uline.com"),
           ("Paper Mart", "https://www.papermart.com"), ("Bake It Pretty", "https://bakeitpretty.com")]

# Recipe templates: name, category, base lines key, minutes, extra lines, sub-recipes, FU kind, variants.
_Line = tuple[Any, ...]  # (leaf name, quantity) or (leaf name, quantity, unit)
_BASE_LINES: dict[str, list[_Line]] = {
    "cookie": [("All-Purpose Flour", 2.25), ("Unsalted Butter", 1.0), ("Granulated Sugar", 0.75), ("Large Eggs", 2),
               ("Pure Vanilla Extract", 1), ("Baking Soda", 1), ("Fine Sea Salt", 0.5)],
    "brownie": [("Unsalted Butter", 0.5), ("Granulated Sugar", 1.0), ("Large Eggs", 2), ("Pure Vanilla Extract", 1),
                ("All-Purpose Flour", 0.5), ("Fine Sea Salt", 0.25)],
    "bar": [("All-Purpose Flour", 1.5), ("Unsalted Butter", 0.75), ("Granulated Sugar", 0.5), ("Fine Sea Salt", 0.25)],
    "cake": [("Cake Flour", 2.5), ("Unsalted Butter", 1.0), ("Granulated Sugar", 1.5), ("Large Eggs", 4),
             ("Whole Milk", 1.0), ("Baking Powder", 2.5), ("Pure Vanilla Extract", 2), ("Fine Sea Salt", 0.5)],
    "quick": [("All-Purpose Flour", 2.0), ("Granulated Sugar", 0.5), ("Large Eggs", 2), ("Baking Soda", 1),
              ("Fine Sea Salt", 0.5), ("Unsalted Butter", 0.5)],
    "yeast": [("Bread Flour", 4.0), ("Instant Yeast", 2.25), ("Whole Milk", 1.0), ("Unsalted Butter", 0.25),
              ("Granulated Sugar", 0.25), ("Fine Sea Salt", 1.5)],
    "candy": [("Granulated Sugar", 2.0), ("Unsalted Butter", 0.5), ("Fine Sea Salt", 0.25)],
    "frosting": [("Unsalted Butter", 1.0), ("Confectioners' Sugar", 3.0), ("Pure Vanilla Extract", 1)],
    "none": [],
}

_FROSTINGS = "Frostings & Fillings"
_TEMPLATES: list[tuple[str, str, str, int, list[_Line], list[tuple[str, float]], str, list[str]]] = [
    ("Chocolate Chip Cookies", "Cookies", "cookie", 45, [("Light Brown Sugar", 0.75), ("Semisweet Chocolate Chips", 2)], [], "cookie", ["Brown Butter", "Gluten-Free"]),
    ("Oatmeal Raisin Cookies", "Cookies", "cookie", 50, [("Old-Fashioned Rolled Oats", 3), ("Raisins", 1), ("Ground Cinnamon", 1), ("Light Brown Sugar", 1)], [], "cookie", ["Cranberry Pecan"]),
    ("Snickerdoodles", "Cookies", "cookie", 40, [("Cream of Tartar", 2), ("Ground Cinnamon", 1)], [], "cookie", ["Double Chocolate"]),
    ("Gingerbread Cookies", "Cookies", "cookie", 120, [("Molasses", 6), ("Ground Ginger", 1), ("Ground Cinnamon", 1), ("Ground Cloves", 0.5), ("Dark Brown Sugar", 0.5)], [("Royal Icing", 1.0)], "cookie", []),
    ("Sugar Cookies", "Cookies", "cookie", 90, [("Baking Powder", 1), ("Rainbow Sprinkles", 2)], [("Royal Icing", 0.5)], "cookie", ["Vegan"]),
    ("Peanut Butter Cookies", "Cookies", "cookie", 40, [("Creamy Peanut Butter", 1), ("Light Brown Sugar", 1)], [], "cookie", []),
    ("Scottish Shortbread", "Cookies", "cookie", 60, [("Confectioners' Sugar", 0.5)], [], "cookie", ["Spiced"]),
    ("Almond Biscotti", "Cookies", "cookie", 100, [("Sliced Almonds", 1), ("Almond Extract", 1), ("Baking Powder", 1.5)], [], "cookie", []),
    ("Molasses Crinkles", "Cookies", "cookie", 55, [("Molasses", 4), ("Ground Ginger", 1), ("Ground Cinnamon", 1)], [], "cookie", []),
    ("Jam Thumbprints", "Cookies", "cookie", 60, [("Raspberry Jam", 0.5), ("Pecans", 1)], [], "cookie", []),
    ("Russian Tea Cakes", "Cookies", "cookie", 50, [("Walnuts", 1), ("Confectioners' Sugar", 1)], [], "cookie", []),
    ("Spritz Cookies", "Cookies", "cookie", 45, [("Almond Extract", 0.5), ("Red & Green Sanding Sugar", 2)], [], "cookie", []),
    ("Linzer Cookies", "Cookies", "cookie", 110, [("Hazelnut Flour", 1), ("Raspberry Jam", 0.5), ("Ground Cinnamon", 0.5)], [], "cookie", []),
    ("White Chocolate Macadamia Cookies", "Cookies", "cookie", 45, [("White Chocolate Chips", 1), ("Macadamia Nuts", 1)], [], "cookie", []),
    ("Double Chocolate Cookies", "Cookies", "cookie", 45, [("Dutch-Process Cocoa Powder", 0.5), ("Dark Chocolate Chunks", 1.5)], [], "cookie", []),
    ("Lemon Crinkle Cookies", "Cookies", "cookie", 50, [("Lemons", 2), ("Lemon Extract", 1), ("Confectioners' Sugar", 0.5)], [], "cookie", []),
    ("Fudgy Brownies", "Brownies", "brownie", 50, [("Bittersweet Chocolate", 8), ("Natural Cocoa Powder", 0.25)], [], "bar", ["Peppermint", "Salted Caramel"]),
    ("Blondies", "Brownies", "brownie", 45, [("Light Brown Sugar", 1), ("Butterscotch Chips", 1)], [], "bar", []),
    ("Cream Cheese Brownies", "Brownies", "brownie", 60, [("Semisweet Chocolate", 6), ("Cream Cheese", 8)], [], "bar", []),
    ("Espresso Brownies", "Brownies", "brownie", 50, [("Bittersweet Chocolate", 8), ("Instant Espresso Powder", 2)], [], "bar", []),
    ("Lemon Bars", "Bars", "none", 75, [("Lemons", 4), ("Large Eggs", 4), ("Granulated Sugar", 1.5)], [("Shortbread Crust", 1.0)], "bar", []),
    ("Magic Cookie Bars", "Bars", "bar", 40, [("Graham Cracker Crumbs", 1.5), ("Sweetened Condensed Milk", 1.25), ("Semisweet Chocolate Chips", 1), ("Sweetened Shredded Coconut", 1.33)], [], "bar", []),
    ("Pecan Pie Bars", "Bars", "none", 70, [("Pecans", 2), ("Light Corn Syrup", 12), ("Dark Brown Sugar", 0.5), ("Large Eggs", 3)], [("Shortbread Crust", 1.0)], "bar", []),
    ("Seven-Layer Bars", "Bars", "bar", 45, [("Graham Cracker Crumbs", 1.5), ("Butterscotch Chips", 1), ("Walnuts", 1)], [], "bar", []),
    ("Raspberry Crumb Bars", "Bars", "bar", 60, [("Raspberry Jam", 1), ("Old-Fashioned Rolled Oats", 1)], [], "bar", []),
    ("Yellow Butter Cake", "Cakes", "cake", 90, [], [("Vanilla Buttercream", 1.0)], "cake", ["Mini"]),
    ("Chocolate Layer Cake", "Cakes", "cake", 120, [("Dutch-Process Cocoa Powder", 0.75), ("Buttermilk", 1)], [("Chocolate Ganache", 1.0), ("Vanilla Buttercream", 0.5)], "cake", []),
    ("Carrot Cake", "Cakes", "cake", 100, [("Carrots", 4), ("Ground Cinnamon", 2), ("Walnuts", 1), ("Vegetable Oil", 1)], [("Cream Cheese Frosting", 1.0)], "cake", []),
    ("Classic Pound Cake", "Cakes", "cake", 95, [("Heavy Cream", 0.5)], [], "cake", []),
    ("Red Velvet Cake", "Cakes", "cake", 110, [("Buttermilk", 1), ("Natural Cocoa Powder", 2, "tbsp"), ("Red Gel Food Coloring", 1)], [("Cream Cheese Frosting", 1.0)], "cake", []),
    ("Coconut Cake", "Cakes", "cake", 110, [("Sweetened Shredded Coconut", 2)], [("Vanilla Buttercream", 1.0)], "cake", []),
    ("New York Cheesecake", "Cakes", "none", 420, [("Cream Cheese", 32), ("Sour Cream", 1), ("Granulated Sugar", 1.25), ("Large Eggs", 4)], [("Graham Cracker Crust", 1.0)], "cake", []),
    ("Lemon Bundt Cake", "Cakes", "cake", 90, [("Lemons", 3), ("Sour Cream", 1)], [], "cake", []),
    ("Gingerbread Cake", "Cakes", "cake", 80, [("Molasses", 8), ("Ground Ginger", 2)], [], "cake", []),
    ("Banana Bread", "Breads", "quick", 75, [("Ripe Bananas", 3), ("Light Brown Sugar", 0.75)], [], "quick", ["Chocolate Chip"]),
    ("Zucchini Bread", "Breads", "quick", 80, [("Zucchini", 2), ("Ground Cinnamon", 1), ("Vegetable Oil", 0.5)], [], "quick", []),
    ("Pumpkin Bread", "Breads", "quick", 80, [("Pumpkin Puree", 1.75), ("Pumpkin Pie Spice", 2)], [], "quick", ["Gluten-Free"]),
    ("Cranberry Orange Bread", "Breads", "quick", 75, [("Dried Cranberries", 1), ("Oranges", 1)], [], "quick", []),
    ("Challah", "Breads", "yeast", 210, [("Large Eggs", 3), ("Honey", 4)], [], "loaf", []),
    ("Cinnamon Rolls", "Breads", "yeast", 180, [("Ground Cinnamon", 2), ("Dark Brown Sugar", 0.75)], [("Cream Cheese Frosting", 0.5)], "roll", []),
    ("Christmas Stollen", "Breads", "yeast", 240, [("Candied Orange Peel", 0.5), ("Raisins", 0.75), ("Sliced Almonds", 0.5)], [], "loaf", []),
    ("Parker House Rolls", "Breads", "yeast", 150, [("Salted Butter", 0.25)], [], "roll", []),
    ("Peppermint Bark", "Candies", "none", 60, [("White Chocolate", 16), ("Semisweet Chocolate", 8), ("Crushed Peppermint", 4), ("Peppermint Extract", 0.5)], [], "candy", []),
    ("Chocolate Fudge", "Candies", "candy", 45, [("Sweetened Condensed Milk", 1.25), ("Semisweet Chocolate Chips", 3)], [], "candy", ["Peppermint"]),
    ("Peanut Brittle", "Candies", "candy", 40, [("Roasted Peanuts", 1.5), ("Light Corn Syrup", 8), ("Baking Soda", 1)], [], "candy", []),
    ("English Toffee", "Candies", "candy", 50, [("Sliced Almonds", 0.5), ("Milk Chocolate", 6)], [], "candy", []),
    ("Salted Caramels", "Candies", "candy", 70, [("Heavy Cream", 1), ("Light Corn Syrup", 8), ("Flaky Sea Salt", 1)], [], "candy", []),
    ("Chocolate Truffles", "Candies", "none", 90, [("Bittersweet Chocolate", 12), ("Heavy Cream", 0.75), ("Dutch-Process Cocoa Powder", 0.25)], [], "candy", []),
    ("Buckeyes", "Candies", "none", 80, [("Creamy Peanut Butter", 1.5), ("Confectioners' Sugar", 3), ("Semisweet Chocolate", 8), ("Unsalted Butter", 0.25)], [], "candy", []),
    ("Vanilla Buttercream", _FROSTINGS, "frosting", 20, [("Heavy Cream", 0.25)], [], "filling", []),
    ("Cream Cheese Frosting", _FROSTINGS, "frosting", 15, [("Cream Cheese", 8)], [], "filling", []),
    ("Chocolate Ganache", _FROSTINGS, "none", 20, [("Semisweet Chocolate", 8), ("Heavy Cream", 1)], [], "filling", []),
    ("Royal Icing", _FROSTINGS, "none", 15, [("Meringue Powder", 3, "tbsp"), ("Confectioners' Sugar", 4), ("Pure Vanilla Extract", 0.5)], [], "filling", []),
    ("Shortbread Crust", _FROSTINGS, "none", 35, [("All-Purpose Flour", 2), ("Unsalted Butter", 1), ("Confectioners' Sugar", 0.5)], [], "filling", []),
    ("Graham Cracker Crust", _FROSTINGS, "none", 20, [("Graham Cracker Crumbs", 1.5), ("Unsalted Butter", 0.33), ("Granulated Sugar", 0.25)], [], "filling", []),
    ("Salted Caramel Sauce", _FROSTINGS, "none", 25, [("Granulated Sugar", 1), ("Heavy Cream", 0.5), ("Unsalted Butter", 0.25), ("Flaky Sea Salt", 1)], [], "filling", []),
]

# Variant name → (replacements {from leaf: to leaf}, extra lines, extra sub-recipes).
_VARIANTS: dict[str, tuple[dict[str, str], list[_Line], list[tuple[str, float]]]] = {
    "Brown Butter": ({}, [("Flaky Sea Salt", 0.5)], []),
    "Gluten-Free": ({"All-Purpose Flour": "Gluten-Free Flour Blend", "Cake Flour": "Gluten-Free Flour Blend"}, [("Tapioca Starch", 0.25)], []),
    "Cranberry Pecan": ({"Raisins": "Dried Cranberries"}, [("Pecans", 1)], []),
    "Double Chocolate": ({}, [("Dutch-Process Cocoa Powder", 0.5), ("Semisweet Chocolate Chips", 1)], []),
    "Vegan": ({"Unsalted Butter": "Vegan Butter Sticks", "Large Eggs": "Unsweetened Applesauce"}, [], []),
    "Spiced": ({}, [("Ground Cardamom", 1), ("Ground Nutmeg", 0.25)], []),
    "Peppermint": ({}, [("Peppermint Extract", 0.5), ("Crushed Peppermint", 2)], []),
    "Salted Caramel": ({}, [("Flaky Sea Salt", 1)], [("Salted Caramel Sauce", 0.5)]),
    "Mini": ({}, [], []),
    "Chocolate Chip": ({}, [("Semisweet Chocolate Chips", 1)], []),
}

_STYLES = ["Grandma's", "Brown Butter", "Bakery-Style", "Small-Batch", "Holiday", "Classic", "Spiced", "Maple",
           "Honey", "Orange-Scented", "Espresso", "Salted", "Whole-Grain", "Extra-Thick", "Vermont",
           "Old-Fashioned", "Farmhouse", "Sunday", "Winter", "Lemon-Kissed", "Cardamom", "Toasted", "Rustic",
           "Party", "Church Cookbook", "Aunt Ruth's", "Mom's", "Neighbor's", "Dad's", "Brooklyn"]
_SOURCES = [None, None, "Grandma's recipe card", "King Arthur Baking", "NYT Cooking", "Joy of Cooking (1975)",
            "Church cookbook, p. 42", "https://www.kingarthurbaking.com/recipes", "Smitten Kitchen",
            "Handwritten, from Aunt Ruth", "Family recipe"]
# Preparation notes that fit the ingredient's mid-tier (most lines have none).
_LINE_NOTES: dict[str, list[str]] = {
    "Wheat Flours": ["sifted", "spooned and leveled", "plus extra for dusting"],
    "Gluten-Free Flours": ["sifted", "spooned and leveled"], "Nut & Seed Flours": ["sifted", "lightly toasted"],
    "Brown Sugars": ["packed"], "Powdered Sugars": ["sifted", "plus extra for rolling"],
    "Granulated Sugars": ["divided", "plus 2 tbsp for rolling"], "Butter": ["room temperature", "melted and cooled", "cold, cubed"],
    "Eggs": ["room temperature", "lightly beaten"], "Milk & Cream": ["warm", "cold"], "Cheese": ["softened"],
    "Baking Chocolate": ["chopped", "melted"], "Tree Nuts": ["toasted and chopped", "chopped"],
    "Fresh Produce": ["zested and juiced", "grated", "mashed"], "Dried Fruit": ["plumped in hot water"],
}

_BUNDLES = ["Holiday Cookie Tin", "Christmas Cookie Box", "Brownie Sampler", "Teacher Thank-You Bag",
            "Neighbor Cookie Plate", "Chocolate Lover's Box", "Breakfast Bread Basket", "Candy Gift Box",
            "Cookie & Candy Sampler", "Mini Loaf Trio", "Truffle Box", "Office Party Platter", "Bake Sale Bundle",
            "Hostess Gift Tin", "Stocking Stuffer Bag", "Valentine Treat Box"]
_PACKAGE_NAMES = ["Family Gift Box", "Neighbor Cookie Plate", "Teacher Thank-You Bag", "Deluxe Holiday Hamper",
                  "Office Treat Tray", "Grandparents' Care Package", "Mail Carrier Thank-You", "Coach Gift Bag",
                  "Book Club Box", "Party Favor Bag"]

_MATERIAL_TREE: list[tuple[str, list[tuple[str, str, list[str]]]]] = [
    ("Ribbons & Trims", [("Satin Ribbon", "linear_cm", ["Red 5/8 in", "Green 5/8 in", "Gold 1.5 in", "Silver 3/8 in", "Navy 1 in", "Burgundy 1.5 in"]),
                         ("Grosgrain Ribbon", "linear_cm", ["Red Plaid 1 in", "White Dot 5/8 in", "Kraft 3/8 in", "Pink 1 in"]),
                         ("Baker's Twine", "linear_cm", ["Red & White", "Green & White", "Natural Jute", "Black & White"])]),
    ("Boxes & Tins", [("Cookie Boxes", "each", ["White 6x6x3 in", "Kraft 8x8x2.5 in", "Window 10x10x2.5 in", "Pie 9x9x2.5 in"]),
                      ("Cake Boxes", "each", ["White 10x10x5 in", "Kraft 12x12x6 in", "Cupcake 6-cavity"]),
                      ("Gift Tins", "each", ["Round Red 7 in", "Square Snowflake 6 in", "Oblong Plaid 9 in"])]),
    ("Bags & Wraps", [("Cellophane Bags", "each", ["Clear 4x9 in", "Clear 6x10 in", "Printed Snowflake 5x11 in"]),
                      ("Kraft Bags", "each", ["Window 5x8 in", "Gusseted 6x12 in", "Handle 8x4x10 in"]),
                      ("Tissue Paper", "square_cm", ["White 20x30 in", "Red 20x30 in", "Gold Metallic 20x26 in"])]),
    ("Labels & Tags", [("Gift Tags", "each", ["Kraft Scalloped 2 in", "Chalkboard 1.5 in", "Printed 'Homemade'"]),
                       ("Stickers & Seals", "each", ["Gold Foil 1.5 in", "'Made with Love' 2 in", "Clear Round 1 in"])]),
    ("Containers", [("Mason Jars", "each", ["Regular Mouth 8 oz", "Wide Mouth 16 oz", "Quilted 12 oz"]),
                    ("Deli Containers", "each", ["8 oz with Lid", "16 oz with Lid", "32 oz with Lid"])]),
]
_MATERIAL_BRANDS = ["Offray", "Berwick", "Uline", "Wilton", "Celebrate It", "Ball", "Kerr", "Avery", "Paper Mart",
                    "Nashville Wraps", "Amazon Basics", "BakeBox Co."]

_FIRST = ["Alex", "Maria", "James", "Priya", "Chen", "Olivia", "Sam", "Fatima", "Liam", "Grace", "Diego", "Hannah",
          "Noah", "Aisha", "Ethan", "Sofia", "Mateo", "Emma", "Yuki", "Jordan", "Ruth", "Walter", "Nora", "Theo"]
_LAST = ["Garcia", "Smith", "Nguyen", "Patel", "Johnson", "O'Brien", "Kowalski", "Rossi", "Cohen", "Okafor",
         "Martin", "Lee", "Andersson", "Murphy", "Silva", "Brown", "Kim", "Haddad", "Fischer", "Dubois"]
_RECIPIENT_NOTES = ["Allergic to tree nuts", "No peanuts please", "Gluten-free household", "Loves anything lemon",
                    "Diabetic: go easy on candy", "Kids love sprinkles", "Vegan since 2024"]
_EVENT_KINDS = [("Christmas", 12, 24, "bundled"), ("Holiday Cookie Exchange", 12, 12, "bulk_count"),
                ("Thanksgiving", 11, 26, "bulk_count"), ("Easter", 4, 5, "bundled"),
                ("Church Bake Sale", 5, 16, "bulk_count"), ("Teacher Appreciation Week", 5, 6, "bundled"),
                ("Valentine's Day", 2, 14, "bundled"), ("Neighborhood Block Party", 7, 4, "bulk_count"),
                ("Fall Festival", 10, 10, "bulk_count"), ("Graduation Party", 6, 14, "bulk_count")]
_HOSTS = ["Garcia family", "St. Anne's Parish", "Maple Street", "Lincoln Elementary", "the office", "book club",
          "Scout troop 12", "the Nguyens", "library friends", "swim team"]
_LOCATIONS = ["Pantry", "Pantry", "Pantry", "Basement shelf", "Fridge", "Freezer", "Garage freezer", "Baking cabinet"]


# --------------------------------------------------------------------------- the generator


class _FakeClock:
    """Wall clock in ms since the epoch that only moves when the generator moves it."""

    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms


class DemoGenerator:
    """Generates the demo rows of one (scale, seed), table by table in registry order.

    Call :meth:`tables` and consume each table's rows before asking for the next one: later tables
    read the ids and facts that earlier ones recorded. Rows are complete (every NOT NULL column,
    id, timestamps and version set) and hold stored values: canonical timestamp/date text,
    canonical JSON text, 0/1 booleans.
    """

    def __init__(self, scale: int = 1, seed: int = 42) -> None:
        if int(scale) < 1:
            raise ConfigurationError(f"demo scale must be at least 1, got {scale}")
        self.scale = int(scale)
        self.seed = seed
        self.rng = random.Random(seed)
        # Ids come from their own stream so a change in data choices does not shift every id.
        self._id_rng = random.Random(f"bakestore-demo-ids:{seed}")
        self.clock = _FakeClock(DEMO_START_MS + 1000)
        self.hlc = HybridLogicalClock(DEMO_DEVICE, wall=self.clock)
        self._sec = -1
        self._prefix = ""

    # -- identity, timestamps and versions

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        """Stamp a new row: advance the fake clock, then id, created/updated_at and row_version."""
        self.clock.ms += ROW_STEP_MS
        ms = self.clock.ms
        sec, milli = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
        ts = f"{self._prefix}{milli:03d}Z"
        if "id" not in values:
            values["id"] = uuid7(ms, self._id_rng)
        values["created_at"] = ts
        values["updated_at"] = ts
        values["row_version"] = self.hlc.now()
        return values

    def _new_id(self) -> str:
        """An id handed out before its row is written (the far end of an FK cycle or a later table)."""
        return uuid7(self.clock.ms, self._id_rng)

    def now_text(self) -> str:
        """The fake clock's current instant as stored timestamp text (for ``last_updated``-style columns)."""
        return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(self.clock.ms // 1000)) + f"{self.clock.ms % 1000:03d}Z"

    @property
    def high_water(self) -> str:
        """The greatest row version handed out so far."""
        return self.hlc.high_water

    # -- driving

    def tables(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        """(table, rows) for every domain table, in registry dependency order."""
        for spec in REGISTRY.domain_tables:
            method: Callable[[], Iterator[dict[str, Any]]] | None = getattr(self, f"_t_{spec.name}", None)
            if method is None:
                if spec.is_seed:
                    continue
                raise ConfigurationError(f"the demo generator does not know table {spec.name!r}")
            yield spec.name, self._complete(spec, method())
            self.clock.ms += 1000  # a visible gap between tables, as if entered on another screen

    @staticmethod
    def _complete(spec: TableSpec, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Fill model defaults for the NOT NULL columns a generator left out."""
        defaults = {c.name: (int(c.default) if isinstance(c.default, bool) else c.default)
                    for c in spec.columns if c.default is not None}
        if not defaults:
            yield from rows
            return
        for row in rows:
            yield {**defaults, **row}

    # ------------------------------------------------------------------ reference

    def _t_recipe_categories(self) -> Iterator[dict[str, Any]]:
        # The sub-recipes' category; users add categories like this one (seeds hold the 7 defaults).
        yield self._row({"name": _FROSTINGS, "slug": "frostings-fillings", "sort_order": 80,
                         "description": "Frostings, fillings, crusts and sauces used inside other recipes."})

    # ------------------------------------------------------------------ catalog

    def _t_ingredients(self) -> Iterator[dict[str, Any]]:
        slugs = _Slugs("_", first_suffix=1)
        names: set[str] = set()
        self.mids: list[tuple[str, str, str, list[str], tuple[float, float], int, _Density, str]] = []
        self.mid_names: list[str] = []
        self.root_of_mid: list[str] = []
        self._mid_ids: list[str] = []
        base: list[tuple[str, int]] = []
        for root_name, mids in _TREE:
            names.add(root_name)
            root = self._row({"display_name": root_name, "slug": slugs(_snake(root_name)), "hierarchy_level": 0,
                              "category": root_name, "description": f"{root_name} (top level)"})
            yield root
            for mid_name, unit, pkg, allergens, cost, shelf, density, leaves in mids:
                names.add(mid_name)
                self.mids.append((mid_name, unit, pkg, allergens, cost, shelf, density, root_name))
                row = self._row({"display_name": mid_name, "slug": slugs(_snake(mid_name)), "hierarchy_level": 1,
                                 "parent_ingredient_id": root["id"], "category": root_name})
                self._mid_ids.append(row["id"])
                yield row
                mid_index = len(self.mids) - 1
                self.mid_names.append(mid_name)
                self.root_of_mid.append(root_name)
                base.extend((leaf, mid_index) for leaf in leaves)
        yield from self._leaves(base, slugs, names)

    def _leaves(self, base: list[tuple[str, int]], slugs: _Slugs, names: set[str]) -> Iterator[dict[str, Any]]:
        rng = self.rng
        n_leaves = 200 * self.scale
        self.leaf_id: list[str] = []
        self.leaf_slug: list[str] = []
        self.leaf_name: list[str] = []
        self.leaf_mid: list[int] = []
        self.leaf_cost: list[float] = []
        self.leaves_by_mid: list[list[int]] = [[] for _ in self.mids]
        self.base_leaf: dict[str, int] = {}
        nb = len(base)
        for k in range(n_leaves):
            if k < nb:
                name, mid = base[k]
            else:
                j = k - nb
                stem, mid = base[j % nb]
                m = j // nb
                modifier = _MODIFIERS[m % len(_MODIFIERS)]
                rounds = m // len(_MODIFIERS)
                name = f"{modifier} {stem}" + (f" No. {rounds + 1}" if rounds else "")
            while name in names:
                name += " (alt)"
            names.add(name)
            _mid_name, _unit, _pkg, allergens, (lo, hi), shelf, density, root_name = self.mids[mid]
            row: dict[str, Any] = {
                "display_name": name, "slug": slugs(_snake(name)), "hierarchy_level": 2,
                "parent_ingredient_id": self._mid_ids[mid], "category": root_name,
            }
            if rng.random() < 0.25:
                row["description"] = f"{name} for baking; store in a cool, dry place." if shelf > 60 else \
                    f"{name}; keep refrigerated."
            if rng.random() < 0.3:
                row["foodon_id"] = f"FOODON_0{rng.randint(3300000, 3420000)}"
            if rng.random() < 0.2:
                row["foodex2_code"] = f"A0{rng.choice('0123456789ABCDEF')}{rng.choice('ABCDEFGHJK')}{rng.randint(0, 9)}"
            if rng.random() < 0.15:
                row["langual_terms"] = canonical_json(sorted(f"{rng.choice('ABCH')}{rng.randint(100, 9999):04d}"
                                                             for _ in range(rng.randint(1, 3))))
            if rng.random() < 0.35:
                row["fdc_ids"] = canonical_json([rng.randint(168000, 2700000) for _ in range(rng.randint(1, 2))])
            if density is not None:
                vol, vunit, weight, wunit = density
                row.update(density_volume_value=vol, density_volume_unit=vunit,
                           density_weight_value=round(weight * rng.uniform(0.95, 1.05), 2), density_weight_unit=wunit)
            if rng.random() < 0.2:
                row["moisture_pct"] = round(rng.uniform(0.5, 16.0), 1)
            if allergens:
                row["allergens"] = canonical_json(allergens)
            if k % 97 == 5:
                row["notes"] = "Check the date: this one goes stale fast." if shelf < 60 else "Buy in bulk before the holidays."
            row = self._row(row)
            index = len(self.leaf_id)
            self.leaf_id.append(row["id"])
            self.leaf_slug.append(row["slug"])
            self.leaf_name.append(name)
            self.leaf_mid.append(mid)
            self.leaf_cost.append(round(rng.uniform(lo, hi), 3))
            self.leaves_by_mid[mid].append(index)
            if k < nb:
                self.base_leaf[name] = index
            yield row

    def _t_ingredient_aliases(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for i, name in enumerate(self.leaf_name):
            known = _ALIASES.get(name)
            if known:
                for alias, locale in known:
                    yield self._row({"ingredient_id": self.leaf_id[i], "alias": alias, "locale": locale})
            elif rng.random() < 0.38:
                alias = name.lower() if rng.random() < 0.5 else f"{name} (bulk bin)"
                yield self._row({"ingredient_id": self.leaf_id[i], "alias": alias,
                                 "locale": rng.choice([None, "en-US", "en-US"])})

    def _t_ingredient_crosswalks(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for i in range(len(self.leaf_id)):
            if rng.random() < 0.5:
                system = rng.choice(["usda_fdc", "foodon", "foodex2", "off_category"])
                if system == "usda_fdc":
                    code = str(rng.randint(168000, 2700000))
                elif system == "foodon":
                    code = f"FOODON:0{rng.randint(3300000, 3420000)}"
                elif system == "foodex2":
                    code = f"A0{rng.randint(100, 999)}"
                else:
                    code = f"en:{self.leaf_slug[i].replace('_', '-')[:80]}"
                meta = canonical_json({"confidence": round(rng.uniform(0.6, 1.0), 2),
                                       "source": rng.choice(["manual", "import", "suggested"])})
                yield self._row({"ingredient_id": self.leaf_id[i], "system": system, "code": code, "meta": meta})

    def _t_suppliers(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("_", first_suffix=1)
        self.supplier_id: list[str] = []
        self.supplier_name: list[str] = []
        self.physical: list[int] = []
        self.online: list[int] = []
        self.online_food: list[int] = []
        self.online_packaging: list[int] = []
        for name, url in _ONLINE:
            row = self._row({"name": name, "slug": slugs(_snake(name)), "supplier_type": "online",
                             "website_url": url, "notes": "Free shipping over $49" if "King" in name else None})
            self.online.append(len(self.supplier_id))
            if name in _ONLINE_FOOD:
                self.online_food.append(len(self.supplier_id))
            if name in _ONLINE_PACKAGING:
                self.online_packaging.append(len(self.supplier_id))
            self.supplier_id.append(row["id"])
            self.supplier_name.append(name)
            yield row
        for k in range(8 * self.scale):
            chain, domain = _SUPPLIER_CHAINS[k % len(_SUPPLIER_CHAINS)]
            city, state, zip_code = _CITIES[(k * 7 + k // len(_SUPPLIER_CHAINS)) % len(_CITIES)]
            row = self._row({
                "name": chain, "slug": slugs(_snake(f"{chain} {city} {state}")), "supplier_type": "physical",
                "website_url": f"https://www.{domain}" if rng.random() < 0.5 else None,
                "street_address": f"{rng.randint(10, 1999)} {rng.choice(_STREETS)}", "city": city, "state": state,
                "zip_code": zip_code, "is_active": 0 if rng.random() < 0.06 else 1,
                "notes": rng.choice([None, None, None, "Best prices on butter", "Closed Sundays", "Bulk bins in aisle 9"]),
            })
            self.physical.append(len(self.supplier_id))
            self.supplier_id.append(row["id"])
            self.supplier_name.append(chain)
            yield row

    def _t_products(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("-")
        self.prod_id: list[str] = []
        self.prod_price: list[float] = []
        self.prod_qty: list[float] = []
        self.prod_unit: list[str] = []
        self.prod_leaf: list[int] = []
        self.prod_type: list[str] = []
        self.packaging_products: list[int] = []
        gtin_counter = 0
        for leaf in range(len(self.leaf_id)):
            mid = self.leaf_mid[leaf]
            root = self.root_of_mid[mid]
            pkg_kind = self.mids[mid][2]
            count = 1 + (rng.random() < 0.5)
            brands = rng.sample(_BRANDS[root], count)
            for n, brand in enumerate(brands):
                qty, unit, ptype, lo, hi = rng.choice(_PACKAGES[pkg_kind])
                gtin_counter += 1
                has_gtin = rng.random() < 0.7
                gtin = _gtin13(7_100_000_000 + gtin_counter * 13) if has_gtin else None
                provisional = rng.random() < 0.03
                preferred = n == 0 and rng.random() < 0.6
                row: dict[str, Any] = {
                    "ingredient_id": self.leaf_id[leaf], "brand": brand,
                    "product_name": self.leaf_name[leaf] if rng.random() < 0.7 else f"{brand} {self.leaf_name[leaf]}",
                    "package_size": f"{qty:g} {unit}", "package_type": ptype, "package_unit": unit,
                    "package_unit_quantity": float(qty), "preferred": int(preferred),
                    "is_hidden": int(rng.random() < 0.03), "is_provisional": int(provisional),
                }
                if gtin:
                    row.update(gtin=gtin, upc_code=gtin[1:], net_content_value=float(qty),
                               net_content_uom=_UN_UOM[unit], country_of_sale="USA",
                               gpc_brick_code=_GPC[root], brand_owner=_BRAND_OWNERS.get(brand, brand))
                    if rng.random() < 0.5:
                        row["off_id"] = gtin
                if provisional:
                    row["slug"] = slugs(f"{self.leaf_slug[leaf]}:{_snake(brand) or 'unknown'}:{float(qty)}:{_snake(unit)}")
                    row["notes"] = "Added while entering a receipt; check the details."
                if preferred and rng.random() < 0.7:
                    row["preferred_supplier_id"] = self.supplier_id[rng.randrange(len(self.supplier_id))]
                if rng.random() < 0.15:
                    row["supplier"] = self.supplier_name[rng.randrange(len(self.supplier_name))]
                    row["supplier_sku"] = f"{brand[:3].upper()}-{rng.randint(10000, 99999)}"
                row = self._row(row)
                index = len(self.prod_id)
                self.prod_id.append(row["id"])
                self.prod_price.append(round(rng.uniform(lo, hi), 2))
                self.prod_qty.append(float(qty))
                self.prod_unit.append(unit)
                self.prod_leaf.append(leaf)
                self.prod_type.append(ptype)
                if root == _PACKAGING_ROOT:
                    self.packaging_products.append(index)
                yield row

    def _t_product_packaging(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for p in range(len(self.prod_id)):
            if rng.random() >= 0.4:
                continue
            yield self._row({"product_id": self.prod_id[p], "packaging_level": "each",
                             "packaging_type_code": _PKG_CODE.get(self.prod_type[p], "PK"), "packaging_material_code": rng.choice(["PE", "PP", "CB", "PA"]),
                             "gross_weight_value_uom": canonical_json({"value": round(rng.uniform(0.1, 5), 2), "uom": "kg"})})
            if rng.random() < 0.6:
                yield self._row({
                    "product_id": self.prod_id[p], "packaging_level": "case", "packaging_type_code": "CS",
                    "packaging_material_code": "CB", "qty_of_next_lower_level": rng.choice([4, 6, 8, 12, 24]),
                    "dimensions_l_w_h_uom": canonical_json({"l": round(rng.uniform(20, 60), 1), "w": round(rng.uniform(15, 40), 1),
                                                            "h": round(rng.uniform(10, 35), 1), "uom": "cm"}),
                    "gross_weight_value_uom": canonical_json({"value": round(rng.uniform(2, 25), 2), "uom": "kg"}),
                })

    # ------------------------------------------------------------------ inventory

    def _t_purchases(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.purchase_plan: list[tuple[str, int, int, float, int]] = []
        start = _TODAY - 730
        packaging = set(self.packaging_products)
        for p in range(len(self.prod_id)):
            n = rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4))
            if p in packaging:
                n = max(n, 1)
            days = sorted(rng.randint(start, _TODAY - 1) for _ in range(n))
            for day in days:
                if p in packaging:
                    supplier = self.online_packaging[rng.randrange(len(self.online_packaging))]
                elif rng.random() < 0.2:
                    supplier = self.online_food[rng.randrange(len(self.online_food))]
                else:
                    supplier = self.physical[rng.randrange(len(self.physical))]
                qty = rng.choice((1, 1, 1, 2, 2, 3, 4, 6))
                price = _money(self.prod_price[p] * rng.uniform(0.85, 1.15))
                row = self._row({"product_id": self.prod_id[p], "supplier_id": self.supplier_id[supplier],
                                 "purchase_date": _date(day), "unit_price": price, "quantity_purchased": qty,
                                 "notes": rng.choice([None] * 14 + ["Holiday sale", "Used a coupon", "Bought extra for December"])})
                self.purchase_plan.append((row["id"], p, day, price, qty))
                yield row

    def _t_inventory_items(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.depletion_plan: list[tuple[str, float, int, list[float], bool]] = []
        self.packaging_lots: dict[int, list[str]] = {}
        packaging = set(self.packaging_products)
        legacy = [(None, rng.randrange(len(self.prod_id)), _TODAY - rng.randint(731, 1100), None, rng.randint(1, 3))
                  for _ in range(len(self.purchase_plan) // 20)]
        for purchase_id, p, day, price, qty in self.purchase_plan + legacy:
            unit_cost = price if price is not None else self.prod_price[p]
            age = _TODAY - day
            if age > 240 or rng.random() < age / 400:
                used = float(qty)
            else:
                used = round(qty * rng.choice((0.0, 0.0, 0.25, 0.5, 0.6, 0.75)), 3)
            amounts: list[float] = []
            left = used
            while left > 1e-9:
                take = left if left <= 0.5 or rng.random() < 0.4 else round(left * rng.uniform(0.3, 0.7), 3)
                take = max(0.001, round(take, 3))
                take = min(take, round(left, 3))
                if take <= 0:
                    break
                amounts.append(take)
                left = round(left - take, 3)
            remaining = max(0.0, round(qty - sum(amounts), 3))
            shelf = self.mids[self.leaf_mid[self.prod_leaf[p]]][5]
            mid_name = self.mids[self.leaf_mid[self.prod_leaf[p]]][0]
            row: dict[str, Any] = {
                "product_id": self.prod_id[p], "purchase_id": purchase_id, "quantity": remaining,
                "unit_cost": unit_cost, "purchase_date": _date(day),
                "expiration_date": _date(day + shelf) if shelf < 3650 else None,
                "location": ("Fridge" if mid_name in ("Butter", "Milk & Cream", "Cheese", "Eggs", "Cultured Dairy")
                             else rng.choice(_LOCATIONS)),
                "last_updated": self.now_text(),
            }
            if remaining < qty and rng.random() < 0.6:
                row["opened_date"] = _date(_past(day + rng.randint(0, 30)))
            if rng.random() < 0.2:
                row["lot_or_batch"] = f"L{rng.randint(10, 99)}{rng.choice('ABCDEFGH')}{rng.randint(100, 999)}"
            if purchase_id is None:
                row["notes"] = "Carried over from the old spreadsheet (no purchase on record)."
            row = self._row(row)
            row["last_updated"] = row["created_at"]
            if amounts:
                self.depletion_plan.append((row["id"], unit_cost, day, amounts, p in packaging))
            if p in packaging:
                self.packaging_lots.setdefault(p, []).append(row["id"])
            yield row
        del self.purchase_plan

    def _t_inventory_depletions(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        reasons = ["production"] * 12 + ["spoilage"] * 2 + ["gift", "correction", "correction", "ad_hoc_usage",
                                                             "ad_hoc_usage", "other"]
        for lot_id, unit_cost, day, amounts, is_packaging in self.depletion_plan:
            when = day
            for amount in amounts:
                when = _past(when + rng.randint(1, 60))
                reason = "assembly" if is_packaging else rng.choice(reasons)
                yield self._row({
                    "inventory_item_id": lot_id, "quantity_depleted": amount, "depletion_reason": reason,
                    "depletion_date": _stamp(when, rng.randint(8 * 3600, 21 * 3600)),
                    "cost": round(amount * unit_cost, 4),
                    "notes": "Tossed: past its date" if reason == "spoilage" else None,
                    "created_by": rng.choice(["app", "app", "app", "Kim", "Alex"]),
                })
        del self.depletion_plan

    def _t_inventory_snapshots(self) -> Iterator[dict[str, Any]]:
        self.inventory_snapshot_id: list[str] = []
        for k in range(self.scale + 1):
            month = DEMO_START.year * 12 + DEMO_START.month - 2 - k
            year, mon = divmod(month, 12)
            day = _dt.date(year, mon + 1, 1).toordinal()
            label = _dt.date.fromordinal(day).strftime("%B %Y")
            row = self._row({"name": f"Pantry count – {label}", "snapshot_date": _stamp(day, 10 * 3600),
                             "description": "Monthly pantry count before the holiday baking." if k % 3 == 0 else None})
            self.inventory_snapshot_id.append(row["id"])
            yield row

    def _t_snapshot_ingredients(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        n = len(self.leaf_id)
        for snapshot_id in self.inventory_snapshot_id:
            for leaf in rng.sample(range(n), min(n, 55)):
                mid = self.leaf_mid[leaf]
                yield self._row({
                    "snapshot_id": snapshot_id,
                    "ingredient_id": None if rng.random() < 0.03 else self.leaf_id[leaf],
                    "quantity": round(rng.uniform(0, 12), 2),
                    "ingredient_name_snapshot": self.leaf_name[leaf], "parent_l1_name_snapshot": self.mid_names[mid],
                    "parent_l0_name_snapshot": self.root_of_mid[mid],
                })

    # ------------------------------------------------------------------ recipes

    def _line(self, spec: _Line, jitter: float, vary: bool) -> tuple[int, float, str]:
        name, qty = spec[0], float(spec[1])
        leaf = self.base_leaf[name]
        unit = spec[2] if len(spec) > 2 else self.mids[self.leaf_mid[leaf]][1]
        if vary and self.rng.random() < 0.25:
            siblings = self.leaves_by_mid[self.leaf_mid[leaf]]
            leaf = siblings[self.rng.randrange(len(siblings))]
        return leaf, max(0.05, round(qty * jitter, 2)), unit

    def _t_recipes(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("-", max_len=190)
        self.rec_id: list[str] = []
        self.rec_slug: list[str] = []
        self.rec_name: list[str] = []
        self.rec_cat: list[str] = []
        self.rec_minutes: list[int] = []
        self.rec_lines: list[list[tuple[int, float, str]]] = []
        self.rec_cost: list[float] = []
        self.rec_template: list[int] = []
        self.rec_variant: list[str | None] = []
        self.rec_base: list[int | None] = []
        self.rec_subs: list[list[tuple[str, float]]] = []
        self.rec_ready: list[bool] = []
        self.copy_recipes: list[tuple[int, int]] = []
        for copy in range(self.scale):
            first = len(self.rec_id)
            style = "" if copy == 0 else _STYLES[(copy - 1) % len(_STYLES)] + " "
            by_template: dict[int, int] = {}
            for t, (name, category, base_key, minutes, extras, subs, _fu, _variants) in enumerate(_TEMPLATES):
                full = f"{style}{name}" if category != _FROSTINGS else name
                jitter = 1.0 if copy == 0 else rng.choice((0.75, 1.0, 1.0, 1.0, 1.25, 1.5))
                lines = [self._line(s, jitter, copy > 0) for s in _BASE_LINES[base_key] + extras]
                yield self._recipe(slugs, full, category, minutes, lines, t, None, None, subs)
                by_template[t] = len(self.rec_id) - 1
            for t, template in enumerate(_TEMPLATES):
                for variant in template[7]:
                    base = by_template[t]
                    replace, extra, subs = _VARIANTS[variant]
                    lines = []
                    for leaf, qty, unit in self.rec_lines[base]:
                        target = replace.get(self.leaf_name[leaf])
                        if target is not None:
                            leaf = self.base_leaf[target]
                            unit = self.mids[self.leaf_mid[leaf]][1]
                        lines.append((leaf, qty, unit))
                    lines += [self._line(s, 1.0, False) for s in extra]
                    yield self._recipe(slugs, f"{variant} {self.rec_name[base]}", template[1], template[3], lines, t,
                                       variant, base, template[5] + subs)
            self.copy_recipes.append((first, len(self.rec_id)))

    def _recipe(self, slugs: _Slugs, name: str, category: str, minutes: int, lines: list[tuple[int, float, str]],
                template: int, variant: str | None, base: int | None,
                subs: list[tuple[str, float]]) -> dict[str, Any]:
        rng = self.rng
        slug = slugs(_kebab(name) or "unknown-recipe")
        ready = rng.random() < (0.6 if variant else 0.88)
        row = self._row({
            "name": name, "slug": slug, "category": category, "source": rng.choice(_SOURCES),
            "estimated_time_minutes": minutes + rng.choice((-10, -5, 0, 0, 5, 10, 15)) if minutes > 20 else minutes,
            "is_archived": int(rng.random() < 0.04), "is_production_ready": int(ready),
            "base_recipe_id": self.rec_id[base] if base is not None else None, "variant_name": variant,
            "notes": rng.choice([None, None, None, "Chill the dough overnight for best results.",
                                 "Doubles well.", "Freeze unbaked; bake from frozen +2 min.",
                                 "Use room-temperature eggs."]),
        })
        if rng.random() < 0.05:
            row["previous_slug"] = f"{slug}-old"
        self.rec_id.append(row["id"])
        self.rec_slug.append(slug)
        self.rec_name.append(name)
        self.rec_cat.append(category)
        self.rec_minutes.append(row["estimated_time_minutes"])
        self.rec_lines.append(lines)
        self.rec_cost.append(round(sum(q * self.leaf_cost[leaf] for leaf, q, _ in lines), 4))
        self.rec_template.append(template)
        self.rec_variant.append(variant)
        self.rec_base.append(base)
        self.rec_subs.append(subs)
        self.rec_ready.append(ready)
        return row

    def _t_recipe_ingredients(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for r, lines in enumerate(self.rec_lines):
            for leaf, qty, unit in lines:
                options = _LINE_NOTES.get(self.mid_names[self.leaf_mid[leaf]])
                note = rng.choice(options) if options and rng.random() < 0.3 else None
                yield self._row({"recipe_id": self.rec_id[r], "ingredient_id": self.leaf_id[leaf], "quantity": qty,
                                 "unit": unit, "notes": note})

    def _t_recipe_components(self) -> Iterator[dict[str, Any]]:
        template_index = {t[0]: i for i, t in enumerate(_TEMPLATES)}
        for first, end in self.copy_recipes:
            sub_of: dict[int, int] = {}
            for r in range(first, end):
                if self.rec_variant[r] is None:
                    sub_of.setdefault(self.rec_template[r], r)
            for r in range(first, end):
                for order, (sub_name, qty) in enumerate(self.rec_subs[r]):
                    sub = sub_of[template_index[sub_name]]
                    self.rec_cost[r] = round(self.rec_cost[r] + qty * self.rec_cost[sub], 4)
                    yield self._row({"recipe_id": self.rec_id[r], "component_recipe_id": self.rec_id[sub],
                                     "quantity": qty, "sort_order": order,
                                     "notes": "for frosting" if "Frosting" in sub_name or "Buttercream" in sub_name
                                     else None})

    # finished units: (display, yield type, mode, items per batch, item unit, percentage, portion)
    def _fu_specs(self, r: int) -> list[tuple[str, str, str, int | None, str | None, float | None, str | None]]:
        rng = self.rng
        kind = _TEMPLATES[self.rec_template[r]][6]
        name = self.rec_name[r]
        specs: list[tuple[str, str, str, int | None, str | None, float | None, str | None]]
        if kind == "cookie":
            specs = [(name, "EA", "discrete_count", rng.choice((24, 30, 36, 48)), "cookie", None, None)]
            if rng.random() < 0.15:
                specs.append((f"{name} Tray Serving", "SERVING", "discrete_count", 8, "serving", None, None))
            return specs
        if kind == "bar":
            specs = [(name, "EA", "discrete_count", rng.choice((12, 16, 20, 24)), "bar", None, None)]
            if rng.random() < 0.3:
                specs.append((f"{name} Bites", "SERVING", "discrete_count", rng.choice((36, 48)), "bite", None, None))
            return specs
        if kind == "cake":
            portion = ("10-inch bundt" if "Bundt" in name or "Pound" in name else
                       "9-inch cheesecake" if "Cheesecake" in name else "9-inch layer cake")
            return [(f"{name} (whole)", "EA", "batch_portion", None, None, 100.0, portion),
                    (f"{name} Slice", "SERVING", "discrete_count", rng.choice((12, 14, 16)), "slice", None, None)]
        if kind == "quick":
            specs = [(f"{name} Loaf", "EA", "discrete_count", rng.choice((1, 2)), "loaf", None, None)]
            if rng.random() < 0.4:
                specs.append((f"Mini {name} Loaf", "EA", "discrete_count", 4, "mini loaf", None, None))
            return specs
        if kind == "loaf":
            return [(name, "EA", "discrete_count", 2, "loaf", None, None)]
        if kind == "roll":
            return [(name, "EA", "discrete_count", rng.choice((12, 16, 24)), "roll", None, None)]
        if kind == "candy":
            return [(f"{name} Pieces", "SERVING", "discrete_count", rng.choice((36, 48, 64)), "piece", None, None),
                    (f"{name} Gift Box", "EA", "batch_portion", None, None, 25.0, "quarter-pound gift box")]
        return [(f"{name} (batch)", "SERVING", "batch_portion", None, None, 100.0,
                 "enough to fill and frost one 9-inch layer cake")]

    def _t_finished_units(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("-", max_len=90)
        self.fu_id: list[str] = []
        self.fu_slug: list[str] = []
        self.fu_name: list[str] = []
        self.fu_recipe: list[int] = []
        self.fu_type: list[str] = []
        self.fu_yield: list[int] = []
        self.fu_def: list[tuple[str, int | None, str | None, float | None, str | None]] = []
        self.fu_inv: list[int] = []
        self.fu_cost: list[float] = []
        self.rec_fus: list[list[int]] = [[] for _ in self.rec_id]
        for r in range(len(self.rec_id)):
            for display, ytype, mode, per_batch, unit, pct, portion in self._fu_specs(r):
                inventory = 0 if rng.random() < 0.35 else rng.randint(1, 48)
                row = self._row({
                    "slug": slugs(_kebab(display) or "unknown-item"), "display_name": display,
                    "recipe_id": self.rec_id[r], "yield_mode": mode, "yield_type": ytype,
                    "items_per_batch": per_batch, "item_unit": unit, "batch_percentage": pct,
                    "portion_description": portion, "inventory_count": inventory, "category": self.rec_cat[r],
                    "description": f"One batch of {self.rec_name[r]}" if rng.random() < 0.2 else None,
                    "production_notes": rng.choice([None, None, "Cool completely before packing.",
                                                    "Bake on parchment; rotate pans halfway."]),
                })
                yields = per_batch if per_batch else max(1, round(100 / (pct or 100)))
                index = len(self.fu_id)
                self.fu_id.append(row["id"])
                self.fu_slug.append(row["slug"])
                self.fu_name.append(display)
                self.fu_recipe.append(r)
                self.fu_type.append(ytype)
                self.fu_yield.append(yields)
                self.fu_def.append((mode, per_batch, unit, pct, portion))
                self.fu_inv.append(inventory)
                self.fu_cost.append(round(self.rec_cost[r] / yields, 4))
                self.rec_fus[r].append(index)
                yield row

    def _t_finished_goods(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("-", max_len=90)
        self.fg_id: list[str] = []
        self.fg_slug: list[str] = []
        self.fg_name: list[str] = []
        self.fg_fu: list[int | None] = []  # the wrapped FU of a BARE good
        self.fg_inv: list[int] = []
        self.fg_cost: list[float] = []
        self.copy_bares: list[list[int]] = []
        self.copy_bundles: list[list[int]] = []
        for copy, (first, end) in enumerate(self.copy_recipes):
            bares: list[int] = []
            for r in range(first, end):
                for fu in self.rec_fus[r]:
                    if self.fu_type[fu] != "EA":
                        continue
                    # The app auto-creates one BARE good per EA unit, named and slugged after it.
                    row = self._row({"slug": slugs(self.fu_slug[fu]), "display_name": self.fu_name[fu],
                                     "assembly_type": "bare", "inventory_count": 0})
                    bares.append(self._remember_fg(row, fu, self.fu_cost[fu]))
                    yield row
            bundles: list[int] = []
            style = "" if copy == 0 else _STYLES[(copy - 1) % len(_STYLES)] + " "
            for name in _BUNDLES:
                display = f"{style}{name}"
                row = self._row({
                    "slug": slugs(_kebab(display) or "unknown-assembly"), "display_name": display,
                    "assembly_type": "bundle", "inventory_count": rng.choice((0, 0, 0, 1, 2, 4, 6)),
                    "description": rng.choice([None, "A little of everything.", "Our most-requested gift."]),
                    "packaging_instructions": rng.choice([
                        "Line with parchment; layer cookies with glassine sheets; tie with ribbon.",
                        "Bag each item, then pack snugly; add a tag.", None]),
                })
                bundles.append(self._remember_fg(row, None, 0.0))
                yield row
            self.copy_bares.append(bares)
            self.copy_bundles.append(bundles)

    def _remember_fg(self, row: dict[str, Any], fu: int | None, cost: float) -> int:
        self.fg_id.append(row["id"])
        self.fg_slug.append(row["slug"])
        self.fg_name.append(row["display_name"])
        self.fg_fu.append(fu)
        self.fg_inv.append(row["inventory_count"])
        self.fg_cost.append(cost)
        return len(self.fg_id) - 1

    def _t_packages(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.package_id: list[str] = []
        self.copy_packages: list[tuple[int, int]] = []
        for _copy in range(self.scale):
            first = len(self.package_id)
            for k, name in enumerate(_PACKAGE_NAMES):
                row = self._row({"name": name, "is_template": int(k < 2),
                                 "description": rng.choice([None, "Fits a 9x9 tin.", "Medium gift bag."]),
                                 "notes": "Template: copy it for each event." if k < 2 else None})
                self.package_id.append(row["id"])
                yield row
            self.copy_packages.append((first, len(self.package_id)))

    def _t_package_finished_goods(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for copy, (first, end) in enumerate(self.copy_packages):
            pool = self.copy_bundles[copy] + self.copy_bares[copy][:12]
            for p in range(first, end):
                for fg in rng.sample(pool, rng.randint(1, 3)):
                    yield self._row({"package_id": self.package_id[p], "finished_good_id": self.fg_id[fg],
                                     "quantity": rng.choice((1, 1, 1, 2, 3))})

    # ------------------------------------------------------------------ materials

    def _t_material_categories(self) -> Iterator[dict[str, Any]]:
        self.mcat_id: list[str] = []
        for order, (name, _subs) in enumerate(_MATERIAL_TREE):
            row = self._row({"name": name, "slug": _snake(name), "sort_order": order * 10,
                             "description": f"{name} for gift packaging"})
            self.mcat_id.append(row["id"])
            yield row

    def _t_material_subcategories(self) -> Iterator[dict[str, Any]]:
        self.msub_name: list[str] = []
        self.msub_cat: list[int] = []
        self.msub_base: list[str] = []
        self.msub_adjectives: list[list[str]] = []
        self.msub_id: list[str] = []
        for c, (_cat, subs) in enumerate(_MATERIAL_TREE):
            for order, (name, base_unit, adjectives) in enumerate(subs):
                row = self._row({"category_id": self.mcat_id[c], "name": name, "slug": _snake(name),
                                 "sort_order": order * 10})
                self.msub_id.append(row["id"])
                self.msub_name.append(name)
                self.msub_cat.append(c)
                self.msub_base.append(base_unit)
                self.msub_adjectives.append(adjectives)
                yield row

    def _t_materials(self) -> Iterator[dict[str, Any]]:
        slugs = _Slugs("_")
        self.mat_id: list[str] = []
        self.mat_name: list[str] = []
        self.mat_sub: list[int] = []
        self.copy_materials: list[tuple[int, int]] = []
        n_subs = len(self.msub_id)
        k = 0
        for _copy in range(self.scale):
            first = len(self.mat_id)
            for _ in range(12):
                sub = k % n_subs
                adjectives = self.msub_adjectives[sub]
                round_, pick = divmod(k // n_subs, len(adjectives))
                name = f"{adjectives[pick]} {self.msub_name[sub]}" + (f" (style {round_ + 1})" if round_ else "")
                k += 1
                row = self._row({"subcategory_id": self.msub_id[sub], "name": name, "slug": slugs(_snake(name)),
                                 "base_unit_type": self.msub_base[sub],
                                 "description": None if k % 3 else f"{name}, bought by the roll/pack"})
                self.mat_id.append(row["id"])
                self.mat_name.append(name)
                self.mat_sub.append(sub)
                yield row
            self.copy_materials.append((first, len(self.mat_id)))

    def _t_material_products(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        slugs = _Slugs("_", first_suffix=1)
        self.mp_id: list[str] = []
        self.mp_name: list[str] = []
        self.mp_mat: list[int] = []
        self.mp_base: list[float] = []
        self.mp_price: list[float] = []
        self.mp_supplier: list[int | None] = []
        self.copy_mproducts: list[tuple[int, int]] = []
        for first, end in self.copy_materials:
            start = len(self.mp_id)
            for m in range(first, end):
                base_type = self.msub_base[self.mat_sub[m]]
                for brand in rng.sample(_MATERIAL_BRANDS, 1 + (rng.random() < 0.6)):
                    if base_type == "linear_cm":
                        yards = rng.choice((10, 25, 50, 100))
                        pkg_qty, pkg_unit, base, desc, price = 1.0, "roll", round(yards * 91.44, 2), f"{yards} yd roll", rng.uniform(3, 15)
                    elif base_type == "square_cm":
                        sheets = rng.choice((10, 24, 48))
                        pkg_qty, pkg_unit, base, desc, price = float(sheets), "sheet", round(sheets * 3870.96, 2), f"{sheets} sheets", rng.uniform(4, 12)
                    else:
                        count = rng.choice((12, 25, 50, 100))
                        pkg_qty, pkg_unit, base, desc, price = float(count), "pack", float(count), f"pack of {count}", rng.uniform(5, 40)
                    name = f"{brand} {self.mat_name[m]}, {desc}"
                    supplier = (self.online_packaging[rng.randrange(len(self.online_packaging))]
                                if rng.random() < 0.7 else None)
                    row = self._row({
                        "material_id": self.mat_id[m], "supplier_id": None if supplier is None else self.supplier_id[supplier],
                        "name": name, "slug": slugs(_snake(name)) if rng.random() < 0.8 else None, "brand": brand,
                        "sku": f"{brand[:2].upper()}{rng.randint(1000, 99999)}" if rng.random() < 0.6 else None,
                        "package_quantity": pkg_qty, "package_unit": pkg_unit, "quantity_in_base_units": base,
                        "is_hidden": int(rng.random() < 0.03),
                    })
                    self.mp_id.append(row["id"])
                    self.mp_name.append(name)
                    self.mp_mat.append(m)
                    self.mp_base.append(base)
                    self.mp_price.append(_money(price))
                    self.mp_supplier.append(supplier)
                    yield row
            self.copy_mproducts.append((start, len(self.mp_id)))

    def _t_material_units(self) -> Iterator[dict[str, Any]]:
        self.mu_id: list[str] = []
        self.mu_name: list[str] = []
        self.mu_slug: list[str] = []
        self.mu_qty: list[float] = []
        self.mu_product: list[int] = []
        self.copy_munits: list[list[int]] = []
        for first, end in self.copy_mproducts:
            units: list[int] = []
            for p in range(first, end):
                base_type = self.msub_base[self.mat_sub[self.mp_mat[p]]]
                if base_type == "linear_cm":
                    specs = [("30 cm bow", 30.0, "A simple bow for a bag or tin."), ("45 cm tie", 45.0, None)]
                elif base_type == "square_cm":
                    specs = [("Half-sheet wrap", 1935.48, "Half a 20x30 in sheet.")]
                else:
                    # Creating a product of an 'each' material auto-creates "1 <product>".
                    specs = [(f"1 {self.mp_name[p]}", 1.0, None)]
                for name, qty, description in specs:
                    row = self._row({"material_product_id": self.mp_id[p], "name": name,
                                     "slug": _kebab(name)[:190] or "unknown-unit", "quantity_per_unit": qty,
                                     "description": description})
                    units.append(len(self.mu_id))
                    self.mu_id.append(row["id"])
                    self.mu_name.append(name)
                    self.mu_slug.append(row["slug"])
                    self.mu_qty.append(qty)
                    self.mu_product.append(p)
                    yield row
            self.copy_munits.append(units)

    # ------------------------------------------------------------------ compositions

    def _t_compositions(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.bundle_parts: dict[int, list[tuple[str, int, float]]] = {}
        self.generic_lines: list[tuple[str, int]] = []
        for copy in range(self.scale):
            for fg in self.copy_bares[copy]:
                fu = self.fg_fu[fg]
                assert fu is not None
                yield self._row({"assembly_id": self.fg_id[fg], "finished_unit_id": self.fu_id[fu],
                                 "component_quantity": 1.0, "sort_order": 0})
            first, end = self.copy_recipes[copy]
            fus = [fu for r in range(first, end) for fu in self.rec_fus[r]
                   if _TEMPLATES[self.rec_template[r]][1] != _FROSTINGS]
            nested_ok: list[int] = list(self.copy_bares[copy])
            munits = self.copy_munits[copy]
            for n, fg in enumerate(self.copy_bundles[copy]):
                force = copy == 0 and n == 0  # one bundle with every kind of component
                parts: list[tuple[str, int, float]] = []
                for fu in rng.sample(fus, rng.randint(2, 4)):
                    per_batch = self.fu_yield[fu]
                    count = rng.choice((4, 6, 12)) if per_batch >= 12 else rng.choice((1, 1, 2)) if per_batch >= 4 else 1
                    parts.append(("fu", fu, float(count)))
                if force or rng.random() < 0.3:
                    parts.append(("fg", nested_ok[rng.randrange(len(nested_ok))], 1.0))
                if self.packaging_products and (force or rng.random() < 0.6):
                    parts.append(("pkg", self.packaging_products[rng.randrange(len(self.packaging_products))], 1.0))
                if munits and (force or rng.random() < 0.5):
                    parts.append(("mu", munits[rng.randrange(len(munits))], float(rng.choice((1, 1, 2)))))
                component_cost = 0.0
                for order, (kind, index, qty) in enumerate(parts):
                    row: dict[str, Any] = {"assembly_id": self.fg_id[fg], "component_quantity": qty, "sort_order": order}
                    if kind == "fu":
                        row["finished_unit_id"] = self.fu_id[index]
                        component_cost += qty * self.fu_cost[index]
                    elif kind == "fg":
                        row["finished_good_id"] = self.fg_id[index]
                        component_cost += qty * self.fg_cost[index]
                    elif kind == "pkg":
                        row["packaging_product_id"] = self.prod_id[index]
                        row["is_generic"] = int(force or rng.random() < 0.35)
                        row["component_notes"] = "Any tin or box of this size" if row["is_generic"] else None
                        component_cost += qty * self._each_price(index)
                    else:
                        row["material_unit_id"] = self.mu_id[index]
                        component_cost += qty * self.mu_qty[index] * self._mu_unit_cost(index)
                    row = self._row(row)
                    if kind == "pkg" and row["is_generic"]:
                        self.generic_lines.append((row["id"], index))
                    yield row
                self.bundle_parts[fg] = parts
                self.fg_cost[fg] = round(component_cost, 4)
                if not any(kind == "fg" for kind, _, _ in parts):
                    nested_ok.append(fg)  # may be nested in a later bundle: no cycles possible
            # Packages: the newer route lists their contents as compositions too.
            pfirst, pend = self.copy_packages[copy]
            for p in range(pfirst, pend):
                order = 0
                for fg in rng.sample(self.copy_bundles[copy], rng.randint(1, 2)):
                    yield self._row({"package_id": self.package_id[p], "finished_good_id": self.fg_id[fg],
                                     "component_quantity": 1.0, "sort_order": order})
                    order += 1
                if self.packaging_products and rng.random() < 0.6:
                    product = self.packaging_products[rng.randrange(len(self.packaging_products))]
                    generic = int(rng.random() < 0.3)
                    row = self._row({"package_id": self.package_id[p], "packaging_product_id": self.prod_id[product],
                                     "component_quantity": 1.0, "sort_order": order, "is_generic": generic})
                    if generic:
                        self.generic_lines.append((row["id"], product))
                    yield row

    def _each_price(self, product: int) -> float:
        return self.prod_price[product] / max(1.0, self.prod_qty[product])

    def _mu_unit_cost(self, unit: int) -> float:
        p = self.mu_product[unit]
        return self.mp_price[p] / self.mp_base[p]

    def _t_composition_assignments(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        all_lots = [lot for lots in self.packaging_lots.values() for lot in lots]
        if not all_lots:
            return
        for composition_id, product in self.generic_lines:
            lots = self.packaging_lots.get(product) or all_lots
            for lot in rng.sample(lots, min(len(lots), rng.randint(1, 2))):
                yield self._row({"composition_id": composition_id, "inventory_item_id": lot,
                                 "quantity_assigned": float(rng.choice((1, 2, 6, 12, 24))),
                                 "assigned_at": self.now_text()})

    def _t_material_purchases(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.mpurchase_plan: list[tuple[str, int, int, float, float]] = []
        for p in range(len(self.mp_id)):
            for day in sorted(rng.randint(_TODAY - 700, _TODAY - 5) for _ in range(rng.choice((1, 1, 2, 2, 3)))):
                packages = rng.choice((1, 1, 2, 3, 5))
                price = _money(self.mp_price[p] * rng.uniform(0.85, 1.2))
                units = round(packages * self.mp_base[p], 2)
                unit_cost = round(packages * price / units, 4)
                supplier = self.mp_supplier[p]
                if supplier is None:
                    supplier = self.physical[rng.randrange(len(self.physical))]
                row = self._row({"product_id": self.mp_id[p], "supplier_id": self.supplier_id[supplier],
                                 "purchase_date": _date(day), "packages_purchased": packages, "package_price": price,
                                 "units_added": units, "unit_cost": unit_cost,
                                 "notes": rng.choice([None, None, None, "Post-holiday clearance"])})
                self.mpurchase_plan.append((row["id"], p, day, units, unit_cost))
                yield row

    def _t_material_inventory_items(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        # Per material product: its lots, oldest first, as [lot id, units the ledger may still consume, cost].
        self.mlots: dict[int, list[list[Any]]] = {}
        for purchase_id, p, day, units, unit_cost in self.mpurchase_plan:
            used = round(units * rng.choice((0.0, 0.2, 0.4, 0.6, 0.8, 1.0)), 2)
            row = self._row({"material_product_id": self.mp_id[p], "material_purchase_id": purchase_id,
                             "quantity_purchased": units, "quantity_remaining": round(units - used, 2),
                             "cost_per_unit": unit_cost, "purchase_date": _date(day),
                             "location": rng.choice(["Craft closet", "Gift-wrap bin", "Basement shelf", None])})
            self.mlots.setdefault(p, []).append([row["id"], used, unit_cost])
            yield row
        del self.mpurchase_plan

    # ------------------------------------------------------------------ events

    def _t_events(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.events: list[dict[str, Any]] = []
        fixed = [("Christmas 2026", _dt.date(2026, 12, 24), "bundled", "locked"),
                 ("Halloween Treat Bags 2026", _dt.date(2026, 10, 31), "bundled", "in_production"),
                 ("Christmas 2025", _dt.date(2025, 12, 24), "bundled", "completed"),
                 ("Spring Bake Sale 2026", _dt.date(2026, 4, 18), "bulk_count", "completed"),
                 ("Valentine's Day 2027", _dt.date(2027, 2, 14), "bulk_count", "draft")]
        for copy in range(self.scale):
            if copy == 0:
                plans = [(name, day.toordinal(), mode, state) for name, day, mode, state in fixed]
            else:
                year = 2025 - (copy - 1) % 10
                host = _HOSTS[(copy - 1) % len(_HOSTS)]
                plans = []
                for j in range(4):
                    kind, month, day, mode = _EVENT_KINDS[(copy * 4 + j) % len(_EVENT_KINDS)]
                    plans.append((f"{kind} {year} ({host})", _dt.date(year, month, day).toordinal(), mode, "completed"))
            first, end = self.copy_recipes[copy]
            candidates = [r for r in range(first, end) if _TEMPLATES[self.rec_template[r]][1] != _FROSTINGS
                          and self.rec_fus[r]]
            for name, day, mode, state in plans:
                year = _dt.date.fromordinal(day).year
                row = self._row({
                    "name": name, "event_date": _date(day), "year": year, "output_mode": mode, "plan_state": state,
                    "expected_attendees": rng.randint(40, 300) if mode == "bulk_count" else None,
                    "notes": rng.choice([None, "Start baking two weeks ahead.", "Ask Maria about the oven schedule."]),
                })
                recipes = rng.sample(candidates, rng.randint(5, 8))
                if mode == "bundled":
                    fgs = rng.sample(self.copy_bundles[copy], rng.randint(3, 5)) + \
                        rng.sample(self.copy_bares[copy], rng.randint(0, 2))
                else:
                    fgs = rng.sample(self.copy_bares[copy], rng.randint(4, 6))
                pinned = state != "draft"
                self.events.append({
                    "id": row["id"], "name": name, "day": day, "mode": mode, "state": state, "copy": copy,
                    "recipes": recipes, "batches": [rng.randint(1, 4) for _ in recipes],
                    "recipe_snaps": [self._new_id() if pinned else None for _ in recipes],
                    "fgs": fgs, "fg_qty": [rng.choice((6, 10, 12, 20, 24)) for _ in fgs],
                    "fg_snaps": [self._new_id() if pinned else None for _ in fgs],
                    # Copy 0's locked Christmas always has an amendment, so every table has rows at scale 1.
                    "amended": pinned and (rng.random() < 0.45 or (copy == 0 and state == "locked")),
                })
                yield row

    def _t_recipients(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.recipient_id: list[str] = []
        self.copy_recipients: list[tuple[int, int]] = []
        for _copy in range(self.scale):
            first = len(self.recipient_id)
            for _ in range(25):
                last = rng.choice(_LAST)
                city, state, zip_code = rng.choice(_CITIES)
                row = self._row({
                    "name": f"{rng.choice(_FIRST)} {last}",
                    "household_name": f"The {last} Family" if rng.random() < 0.6 else None,
                    "address": f"{rng.randint(1, 999)} {rng.choice(_STREETS)}, {city}, {state} {zip_code}",
                    "notes": rng.choice(_RECIPIENT_NOTES) if rng.random() < 0.15 else None,
                })
                self.recipient_id.append(row["id"])
                yield row
            self.copy_recipients.append((first, len(self.recipient_id)))

    def _t_event_recipient_packages(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for event in self.events:
            if event["mode"] != "bundled":
                continue
            rfirst, rend = self.copy_recipients[event["copy"]]
            pfirst, pend = self.copy_packages[event["copy"]]
            state = event["state"]
            for recipient in rng.sample(range(rfirst, rend), rng.randint(8, 14)):
                if state == "completed":
                    status, fulfillment = "delivered", "delivered"
                elif state == "in_production":
                    status, fulfillment = rng.choice((("pending", "pending"), ("assembled", "ready"), ("assembled", "pending")))
                else:
                    status, fulfillment = "pending", "pending"
                yield self._row({
                    "event_id": event["id"], "recipient_id": self.recipient_id[recipient],
                    "package_id": self.package_id[rng.randrange(pfirst, pend)], "quantity": rng.choice((1, 1, 1, 2)),
                    "status": status, "fulfillment_status": fulfillment,
                    "delivered_to": rng.choice(["Left on the porch", "Handed over in person", "Dropped at the office"])
                    if status == "delivered" else None,
                    "notes": "Include the nut-free tag" if rng.random() < 0.08 else None,
                })

    def _t_event_recipes(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for r in event["recipes"]:
                yield self._row({"event_id": event["id"], "recipe_id": self.rec_id[r]})

    def _t_event_finished_goods(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for fg, qty in zip(event["fgs"], event["fg_qty"]):
                yield self._row({"event_id": event["id"], "finished_good_id": self.fg_id[fg], "quantity": qty})

    def _t_batch_decisions(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for r, batches in zip(event["recipes"], event["batches"]):
                for fu in self.rec_fus[r]:
                    yield self._row({"event_id": event["id"], "recipe_id": self.rec_id[r],
                                     "finished_unit_id": self.fu_id[fu], "batches": batches})

    def _t_plan_amendments(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for event in self.events:
            if not event["amended"]:
                continue
            kind = rng.choice(("drop_fg", "add_fg", "modify_batch"))
            if kind == "modify_batch":
                i = rng.randrange(len(event["recipes"]))
                old = event["batches"][i]
                data = {"recipe_id": self.rec_id[event["recipes"][i]], "recipe_slug": self.rec_slug[event["recipes"][i]],
                        "old_batches": old, "new_batches": old + 1}
                reason = "More guests confirmed"
            else:
                i = rng.randrange(len(event["fgs"]))
                fg = event["fgs"][i]
                data = {"finished_good_id": self.fg_id[fg], "finished_good_slug": self.fg_slug[fg],
                        "quantity": event["fg_qty"][i]}
                reason = "Recipient list changed" if kind == "add_fg" else "Ran out of time"
            yield self._row({"event_id": event["id"], "amendment_type": kind, "amendment_data": canonical_json(data),
                             "reason": reason})

    def _t_plan_snapshots(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if event["state"] not in ("in_production", "completed"):
                continue
            data = {"event": event["name"], "taken_at": _stamp(event["day"] - 21, 9 * 3600),
                    "recipes": [{"slug": self.rec_slug[r], "batches": b} for r, b in zip(event["recipes"], event["batches"])],
                    "finished_goods": [{"slug": self.fg_slug[fg], "quantity": q} for fg, q in zip(event["fgs"], event["fg_qty"])]}
            yield self._row({"event_id": event["id"], "snapshot_data": canonical_json(data)})

    def _t_planning_snapshots(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            event["planning"] = None
            if event["state"] == "draft":
                continue
            summary = {"recipes": len(event["recipes"]), "finished_goods": len(event["fgs"]),
                       "locked_on": _date(event["day"] - 28)}
            row = self._row({"event_id": event["id"], "snapshot_type": "original", "snapshot_data": canonical_json(summary),
                             "notes": "Taken when the plan was locked."})
            event["planning"] = row["id"]
            yield row
            if event["amended"]:
                yield self._row({"event_id": event["id"], "snapshot_type": "current",
                                 "snapshot_data": canonical_json({**summary, "amended": True}),
                                 "notes": "After amendments."})
        for copy in range(0, self.scale, 2):
            # A container whose event was deleted later: kept with event_id NULL.
            yield self._row({"event_id": None, "snapshot_type": "original", "notes": "Event was deleted; kept for history.",
                             "snapshot_data": canonical_json({"recipes": 0, "finished_goods": 0, "copy": copy})})

    def _t_production_plan_snapshots(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for event in self.events:
            for k in range(1 + (rng.random() < 0.3)):
                done = event["state"] in ("in_production", "completed")
                day = _past(event["day"] - 30 + 7 * k)
                yield self._row({
                    "event_id": event["id"], "calculated_at": _stamp(day, 19 * 3600 + k * 60),
                    "input_hash": hashlib.sha256(f"{event['id']}:{k}".encode()).hexdigest(),
                    "shopping_complete": int(done),
                    "shopping_completed_at": _stamp(_past(day + 3), 12 * 3600) if done else None,
                })

    # ------------------------------------------------------------------ production

    def _t_production_runs(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.runs: list[tuple[str, int, int, int, int, float, float]] = []  # id, recipe, fu, batches, loss, unit cost, day
        self.own_recipe_snaps: list[tuple[str, str, int, int, int]] = []  # snap id, run id, recipe, batches, day
        jobs: list[tuple[int, str | None, str | None, int, int]] = []
        for event in self.events:
            if event["state"] not in ("in_production", "completed"):
                continue
            for r, batches, snap in zip(event["recipes"], event["batches"], event["recipe_snaps"]):
                day = event["day"] - rng.randint(2, 20)
                if event["state"] == "in_production" and day >= _TODAY:
                    day = _TODAY - rng.randint(1, 5)
                jobs.append((r, event["id"], snap, batches, day))
        for copy in range(self.scale):
            first, end = self.copy_recipes[copy]
            for _ in range(8):
                r = rng.randrange(first, end)
                jobs.append((r, None, None, rng.randint(1, 3), _TODAY - rng.randint(1, 600)))
        for r, event_id, snap, batches, day in jobs:
            if not self.rec_fus[r]:
                continue
            fu = self.rec_fus[r][0]
            expected = batches * self.fu_yield[fu]
            roll = rng.random()
            loss = 0 if roll < 0.8 or expected < 2 else (expected if roll > 0.98 else rng.randint(1, max(1, expected // 4)))
            actual = expected - loss
            status = "complete" if loss == 0 else ("total_loss" if actual == 0 else "partial_loss")
            cost = round(self.rec_cost[r] * batches, 4)
            run_id = self._new_id()
            if snap is None and rng.random() < 0.92:
                snap = self._new_id()
                self.own_recipe_snaps.append((snap, run_id, r, batches, day))
            row = self._row({
                "id": run_id, "recipe_id": self.rec_id[r], "finished_unit_id": self.fu_id[fu], "event_id": event_id,
                "recipe_snapshot_id": snap, "num_batches": batches, "expected_yield": expected, "actual_yield": actual,
                "produced_at": _stamp(day, rng.randint(7 * 3600, 22 * 3600)), "production_status": status,
                "loss_quantity": loss, "total_ingredient_cost": cost,
                "per_unit_cost": round(cost / actual, 4) if actual else 0.0,
                "notes": rng.choice([None, None, None, "Oven ran hot", "Doubled the vanilla", "Kids helped"]),
            })
            self.runs.append((run_id, r, fu, batches, loss, round(cost / expected, 4) if expected else 0.0, day))
            yield row

    def _t_production_consumptions(self) -> Iterator[dict[str, Any]]:
        for run_id, r, _fu, batches, _loss, _unit, _day in self.runs:
            for leaf, qty, unit in self.rec_lines[r]:
                amount = round(qty * batches, 3)
                yield self._row({"production_run_id": run_id, "ingredient_slug": self.leaf_slug[leaf][:100],
                                 "quantity_consumed": amount, "unit": unit,
                                 "total_cost": round(amount * self.leaf_cost[leaf], 4)})

    def _t_production_losses(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        categories = ["burnt", "broken", "contaminated", "dropped", "wrong_ingredients", "other"]
        for run_id, _r, fu, _batches, loss, unit_cost, _day in self.runs:
            if loss <= 0:
                continue
            parts = [loss] if loss < 2 or rng.random() < 0.6 else [loss // 2, loss - loss // 2]
            for quantity in parts:
                category = rng.choice(categories)
                yield self._row({"production_run_id": run_id, "finished_unit_id": self.fu_id[fu],
                                 "loss_category": category, "loss_quantity": quantity, "per_unit_cost": unit_cost,
                                 "total_loss_cost": round(quantity * unit_cost, 4),
                                 "notes": "Forgot the timer" if category == "burnt" else None})
        for copy in range(self.scale):
            # Losses whose run was deleted later keep their row with no run link (SET NULL).
            first, end = self.copy_recipes[copy]
            r = rng.randrange(first, end)
            if self.rec_fus[r]:
                fu = self.rec_fus[r][0]
                yield self._row({"production_run_id": None, "finished_unit_id": self.fu_id[fu], "loss_category": "dropped",
                                 "loss_quantity": rng.randint(1, 6), "per_unit_cost": self.fu_cost[fu],
                                 "total_loss_cost": 0.0, "notes": "Run was deleted; loss kept."})

    def _t_production_records(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for event in self.events:
            if event["state"] != "completed":
                continue
            for r in event["recipes"][: rng.randint(2, 3)]:
                batches = rng.randint(1, 4)
                yield self._row({"event_id": event["id"], "recipe_id": self.rec_id[r], "batches": batches,
                                 "actual_cost": _money(self.rec_cost[r] * batches * rng.uniform(0.9, 1.2)),
                                 "produced_at": _stamp(event["day"] - rng.randint(1, 14), 15 * 3600),
                                 "notes": "From the old production log."})

    def _parts_of(self, fg: int) -> list[tuple[str, int, float]]:
        fu = self.fg_fu[fg]
        return [("fu", fu, 1.0)] if fu is not None else self.bundle_parts.get(fg, [])

    def _t_assembly_runs(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.assembly: list[tuple[str, int, int, bool, int]] = []  # run id, fg, quantity, bypassed, day
        self.own_fg_snaps: list[tuple[str, int, str, int]] = []  # snap id, fg, run id, day
        jobs: list[tuple[int, str | None, str | None, int, int]] = []
        for event in self.events:
            if event["mode"] != "bundled" or event["state"] not in ("in_production", "completed"):
                continue
            pairs = list(zip(event["fgs"], event["fg_qty"], event["fg_snaps"]))
            if event["state"] == "in_production":
                pairs = pairs[: max(1, len(pairs) // 2)]
            for fg, qty, snap in pairs:
                jobs.append((fg, event["id"], snap, qty, _past(event["day"] - rng.randint(1, 3))))
        for copy in range(self.scale):
            bundles = self.copy_bundles[copy]
            picks = [bundles[0]] if copy == 0 else []
            picks += rng.sample(bundles, 2)
            for fg in picks:
                jobs.append((fg, None, None, rng.randint(1, 6), _TODAY - rng.randint(1, 300)))
        for fg, event_id, snap, qty, day in jobs:
            parts = self._parts_of(fg)
            has_packaging = any(kind in ("pkg", "mu") for kind, _, _ in parts)
            bypassed = has_packaging and rng.random() < 0.08
            run_id = self._new_id()
            if snap is None:
                snap = self._new_id()
                self.own_fg_snaps.append((snap, fg, run_id, day))
            total = round(self.fg_cost[fg] * qty, 4)
            yield self._row({
                "id": run_id, "finished_good_id": self.fg_id[fg], "event_id": event_id,
                "finished_good_snapshot_id": snap, "quantity_assembled": qty,
                "assembled_at": _stamp(day, rng.randint(9 * 3600, 21 * 3600)), "total_component_cost": total,
                "per_unit_cost": round(total / qty, 4), "packaging_bypassed": int(bypassed),
                "packaging_bypass_notes": "Out of tins; used paper plates." if bypassed else None,
            })
            self.assembly.append((run_id, fg, qty, bypassed, day))

    def _t_material_consumptions(self) -> Iterator[dict[str, Any]]:
        for run_id, fg, qty, bypassed, _day in self.assembly:
            if bypassed:
                continue
            for kind, unit, per in self._parts_of(fg):
                if kind != "mu":
                    continue
                p = self.mu_product[unit]
                need = round(self.mu_qty[unit] * per * qty, 2)
                m = self.mp_mat[p]
                sub = self.mat_sub[m]
                names = {"product_name": self.mp_name[p], "material_name": self.mat_name[m],
                         "subcategory_name": self.msub_name[sub],
                         "category_name": _MATERIAL_TREE[self.msub_cat[sub]][0],
                         "supplier_name": (None if (supplier := self.mp_supplier[p]) is None
                                           else self.supplier_name[supplier])}
                for lot in self.mlots.get(p, []):
                    if need <= 0:
                        break
                    take = round(min(need, lot[1]), 2)
                    if take <= 0:
                        continue
                    lot[1] = round(lot[1] - take, 2)
                    need = round(need - take, 2)
                    yield self._row({"assembly_run_id": run_id, "product_id": self.mp_id[p], "inventory_item_id": lot[0],
                                     "quantity_consumed": take, "unit_cost": lot[2],
                                     "total_cost": round(take * lot[2], 4), **names})
                if need > 0:
                    # Consumed from stock that was never entered as a lot.
                    cost = round(self.mp_price[p] / self.mp_base[p], 4)
                    yield self._row({"assembly_run_id": run_id, "product_id": self.mp_id[p], "inventory_item_id": None,
                                     "quantity_consumed": need, "unit_cost": cost, "total_cost": round(need * cost, 4),
                                     **names})

    def _t_assembly_finished_unit_consumptions(self) -> Iterator[dict[str, Any]]:
        for run_id, fg, qty, _bypassed, _day in self.assembly:
            for kind, fu, per in self._parts_of(fg):
                if kind == "fu":
                    count = int(per) * qty
                    yield self._row({"assembly_run_id": run_id, "finished_unit_id": self.fu_id[fu],
                                     "quantity_consumed": count, "unit_cost_at_consumption": self.fu_cost[fu],
                                     "total_cost": round(count * self.fu_cost[fu], 4)})

    def _t_assembly_finished_good_consumptions(self) -> Iterator[dict[str, Any]]:
        for run_id, fg, qty, _bypassed, _day in self.assembly:
            for kind, inner, per in self._parts_of(fg):
                if kind == "fg":
                    count = int(per) * qty
                    yield self._row({"assembly_run_id": run_id, "finished_good_id": self.fg_id[inner],
                                     "quantity_consumed": count, "unit_cost_at_consumption": self.fg_cost[inner],
                                     "total_cost": round(count * self.fg_cost[inner], 4)})

    def _t_assembly_packaging_consumptions(self) -> Iterator[dict[str, Any]]:
        for run_id, fg, qty, bypassed, _day in self.assembly:
            if bypassed:
                continue
            for kind, product, per in self._parts_of(fg):
                if kind == "pkg":
                    amount = round(per * qty, 3)
                    yield self._row({"assembly_run_id": run_id, "product_id": self.prod_id[product],
                                     "quantity_consumed": amount, "unit": "each",
                                     "total_cost": round(amount * self._each_price(product), 4)})

    def _t_finished_goods_adjustments(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        targets = [("fu", i, c) for i, c in enumerate(self.fu_inv)] + [("fg", i, c) for i, c in enumerate(self.fg_inv)]
        for kind, index, final in targets:
            if rng.random() >= 0.45:
                continue
            negatives = [-rng.randint(1, 6) for _ in range(rng.randint(0, 2))]
            first = final - sum(negatives)
            if first <= 0:
                continue
            count = 0
            day = _TODAY - rng.randint(30, 200)
            for n, change in enumerate([first] + negatives):
                reason = ("production" if kind == "fu" else "assembly") if n == 0 else \
                    rng.choice(("gift", "gift", "consumption", "spoilage", "adjustment"))
                day = _past(day + rng.randint(1, 20))
                yield self._row({
                    "finished_unit_id": self.fu_id[index] if kind == "fu" else None,
                    "finished_good_id": self.fg_id[index] if kind == "fg" else None,
                    "quantity_change": change, "previous_count": count, "new_count": count + change, "reason": reason,
                    "adjusted_at": _stamp(day, rng.randint(8 * 3600, 21 * 3600)),
                    "notes": "Gave a dozen to the neighbors" if reason == "gift" and rng.random() < 0.2 else None,
                })
                count += change

    # ------------------------------------------------------------------ definition snapshots

    def _recipe_json(self, r: int) -> tuple[str, str]:
        base = self.rec_base[r]
        recipe = {"name": self.rec_name[r], "slug": self.rec_slug[r], "category": self.rec_cat[r],
                  "estimated_time_minutes": self.rec_minutes[r], "variant_name": self.rec_variant[r],
                  "base_recipe_slug": None if base is None else self.rec_slug[base]}
        lines = [{"ingredient_slug": self.leaf_slug[leaf], "display_name": self.leaf_name[leaf], "quantity": qty,
                  "unit": unit} for leaf, qty, unit in self.rec_lines[r]]
        return canonical_json(recipe), canonical_json(lines)

    def _t_recipe_snapshots(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for event in self.events:
            for r, snap in zip(event["recipes"], event["recipe_snaps"]):
                if snap is None:
                    continue
                recipe, lines = self._recipe_json(r)
                yield self._row({"id": snap, "recipe_id": self.rec_id[r], "production_run_id": None, "scale_factor": 1.0,
                                 "snapshot_date": _stamp(_past(event["day"] - 28), 20 * 3600),
                                 "recipe_data": recipe, "ingredients_data": lines})
        for snap, run_id, r, batches, day in self.own_recipe_snaps:
            recipe, lines = self._recipe_json(r)
            yield self._row({"id": snap, "recipe_id": self.rec_id[r], "production_run_id": run_id,
                             "scale_factor": float(batches), "snapshot_date": _stamp(day, 6 * 3600),
                             "recipe_data": recipe, "ingredients_data": lines,
                             "is_backfilled": int(rng.random() < 0.05)})

    def _t_event_production_targets(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for r, batches, snap in zip(event["recipes"], event["batches"], event["recipe_snaps"]):
                yield self._row({"event_id": event["id"], "recipe_id": self.rec_id[r], "target_batches": batches,
                                 "recipe_snapshot_id": snap,
                                 "notes": "Double if the exchange grows" if batches >= 4 else None})

    def _fu_json(self, fu: int) -> str:
        mode, per_batch, unit, pct, portion = self.fu_def[fu]
        return canonical_json({"slug": self.fu_slug[fu], "display_name": self.fu_name[fu], "yield_mode": mode,
                               "yield_type": self.fu_type[fu], "items_per_batch": per_batch, "item_unit": unit,
                               "batch_percentage": pct, "portion_description": portion,
                               "recipe_slug": self.rec_slug[self.fu_recipe[fu]]})

    def _t_finished_unit_snapshots(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if event["planning"] is None:
                continue
            for r in event["recipes"]:
                for fu in self.rec_fus[r]:
                    yield self._row({"finished_unit_id": self.fu_id[fu], "planning_snapshot_id": event["planning"],
                                     "snapshot_date": _stamp(_past(event["day"] - 28), 20 * 3600),
                                     "definition_data": self._fu_json(fu)})
        for run_id, fg, _qty, _bypassed, day in self.assembly:
            for kind, fu, _per in self._parts_of(fg):
                if kind == "fu":
                    yield self._row({"finished_unit_id": self.fu_id[fu], "assembly_run_id": run_id,
                                     "snapshot_date": _stamp(day, 8 * 3600), "definition_data": self._fu_json(fu)})

    def _fg_json(self, fg: int) -> str:
        labels = {"fu": "finished_unit", "fg": "finished_good", "pkg": "packaging_product", "mu": "material_unit"}
        parts = []
        for kind, index, qty in self._parts_of(fg):
            slug = (self.fu_slug[index] if kind == "fu" else self.fg_slug[index] if kind == "fg"
                    else self.prod_id[index] if kind == "pkg" else self.mu_slug[index])
            parts.append({"type": labels[kind], "ref": slug, "quantity": qty})
        return canonical_json({"slug": self.fg_slug[fg], "display_name": self.fg_name[fg],
                               "assembly_type": "bare" if self.fg_fu[fg] is not None else "bundle",
                               "components": parts})

    def _t_finished_good_snapshots(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for fg, snap in zip(event["fgs"], event["fg_snaps"]):
                if snap is None:
                    continue
                yield self._row({"id": snap, "finished_good_id": self.fg_id[fg], "planning_snapshot_id": event["planning"],
                                 "snapshot_date": _stamp(_past(event["day"] - 28), 20 * 3600),
                                 "definition_data": self._fg_json(fg)})
        for snap, fg, run_id, day in self.own_fg_snaps:
            # Taken at assembly time and linked back to its run (the second FK cycle, edge B).
            yield self._row({"id": snap, "finished_good_id": self.fg_id[fg], "assembly_run_id": run_id,
                             "snapshot_date": _stamp(day, 8 * 3600), "definition_data": self._fg_json(fg)})

    def _t_event_assembly_targets(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            for fg, qty, snap in zip(event["fgs"], event["fg_qty"], event["fg_snaps"]):
                yield self._row({"event_id": event["id"], "finished_good_id": self.fg_id[fg], "target_quantity": qty,
                                 "finished_good_snapshot_id": snap})

    def _mu_json(self, unit: int) -> str:
        return canonical_json({"name": self.mu_name[unit], "slug": self.mu_slug[unit],
                               "quantity_per_unit": self.mu_qty[unit],
                               "material_product": self.mp_name[self.mu_product[unit]]})

    def _t_material_unit_snapshots(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if event["planning"] is None:
                continue
            for fg in event["fgs"]:
                for kind, unit, _per in self._parts_of(fg):
                    if kind == "mu":
                        yield self._row({"material_unit_id": self.mu_id[unit], "planning_snapshot_id": event["planning"],
                                         "snapshot_date": _stamp(_past(event["day"] - 28), 20 * 3600),
                                         "definition_data": self._mu_json(unit)})
        for run_id, fg, _qty, bypassed, day in self.assembly:
            if bypassed:
                continue
            for kind, unit, _per in self._parts_of(fg):
                if kind == "mu":
                    yield self._row({"material_unit_id": self.mu_id[unit], "assembly_run_id": run_id,
                                     "snapshot_date": _stamp(day, 8 * 3600), "definition_data": self._mu_json(unit)})


# --------------------------------------------------------------------------- public API


def iter_tables(scale: int = 1, seed: int = 42) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """(table, rows) per domain table in registry order; consume each table's rows before the next.

    Seeds (units, the 7 default recipe categories) are not included: the Store inserts them.
    """
    return DemoGenerator(scale, seed).tables()


def generate(scale: int = 1, seed: int = 42) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every generated row as (table, row), table by table in registry dependency order."""
    for table, rows in iter_tables(scale, seed):
        for row in rows:
            yield table, row


def build_demo(path: str | os.PathLike[str], *, scale: int = 1, seed: int = 42,
               progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Create a demo database at ``path``; returns the row count of every domain table.

    The file is built next to ``path`` under a temporary name and moved into place only when the
    whole build committed, so a failed or interrupted build never leaves a half-filled demo behind.
    An existing non-empty file is never overwritten. ``progress(table, rows)`` is called after
    each table.
    """
    target = Path(path)
    if target.exists() and (target.is_dir() or target.stat().st_size > 0):
        raise ConfigurationError(f"{target}: already exists and is not empty; the demo is only built into a new file")
    building = target.with_name(f".{target.name}.building-{os.getpid()}")
    _remove_db_files(building)
    generator = DemoGenerator(scale, seed)
    try:
        store = Store(building, device_id=DEMO_DEVICE, wall_clock=lambda: DEMO_START_MS)
        try:
            # Nobody else can see this file until it is renamed into place and a failed build is
            # deleted, so an in-memory rollback journal is enough while it is filled: it spares
            # writing every page twice (WAL, then checkpoint). The commit is still fsynced, and the
            # file goes back to WAL before anyone opens it.
            store.db.execute("PRAGMA journal_mode = MEMORY")
            with store.write() as db:
                for table, rows in generator.tables():
                    count = bulk_insert(db, REGISTRY[table], rows)
                    if progress is not None:
                        progress(table, count)
                # Later edits of the demo must get versions above every generated one.
                store.clock.observe(generator.high_water)
                # The demo's identity is a function of what was generated, so its export is too.
                store._meta_set("db_id", str(uuid.uuid5(uuid.NAMESPACE_URL, f"bakestore-demo:{seed}:{scale}")))
            store.db.execute("PRAGMA journal_mode = WAL")
            counts = {spec.name: store.count(spec.name) for spec in REGISTRY.domain_tables}
        finally:
            store.close()
        if target.exists() and target.stat().st_size > 0:
            raise ConfigurationError(f"{target}: appeared while the demo was being built; not overwritten")
        os.replace(building, target)
        Path(f"{building}.write.lock").unlink(missing_ok=True)
    except BaseException:
        _remove_db_files(building)
        raise
    return counts


def _remove_db_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".write.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)



def export_golden(target: str | os.PathLike[str], *, scale: int = 1, seed: int = 42) -> Path:
    """Build the demo in a temporary folder and export it to ``target`` (replacing it).

    ``exports/demo/`` in the repository is made by this (``make golden``) and a test rebuilds it
    byte for byte, so any change to the generator, the schema or the export format shows up there.
    """
    import shutil
    import tempfile

    target = Path(target)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "demo.db"
        build_demo(db_path, scale=scale, seed=seed)
        with Store(db_path, device_id=DEMO_DEVICE, wall_clock=lambda: DEMO_START_MS) as store:
            result = store.export(Path(tmp) / "out", name=target.name)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(result.path, target)
    return target
