"""Benchmark: ``Store.export`` of N rows against its floor.

* **floor**: the same rows, one ordered ``SELECT`` per table, ``json.dumps`` of each row (sorted
  keys, compact) to one file per table — what any exporter must do at least;
* **export**: ``bakestore.exports.export_database`` (canonical NDJSON, sha256 per file, fsync,
  manifest written last, temp folder renamed into place);
* **anchor**: ``sqlite-diffable dump`` of the same database (a bench-only dependency), the tool a
  user would otherwise pick.

Target: export ≤ 1.2 × floor. Run: ``.venv/bin/python bench/bench_export.py --rows 1000000``.

The dataset (``build_dataset``) is generated here with ``bulk_insert`` of valid rows into a few
related tables (suppliers → ingredients → products → purchases → inventory lots → depletions,
recipes → recipe ingredients), so every row passes the registry's CHECK rules and foreign keys.
``bench_restore.py`` reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bakestore.registry import REGISTRY  # noqa: E402
from bakestore.store import Store, bulk_insert  # noqa: E402

DEVICE = "b" * 32
#: Share of the generated rows per table (sums to 1).
MIX = {
    "suppliers": 0.0002, "ingredients": 0.005, "recipes": 0.005, "products": 0.02,
    "purchases": 0.25, "inventory_items": 0.25, "inventory_depletions": 0.25, "recipe_ingredients": 0.2198,
}


def _ts(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def build_dataset(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """A bakestore database at ``path`` with about ``rows`` valid rows (plus the 42 seed rows)."""
    rnd = random.Random(seed)
    counts = {t: max(1, int(rows * share)) for t, share in MIX.items()}
    counts["recipe_ingredients"] += rows - sum(counts.values())
    base_ms = 1_733_000_000_000
    state = {"n": 0}

    def ident() -> str:
        return str(uuid.UUID(int=rnd.getrandbits(128)))

    def system() -> dict[str, Any]:
        state["n"] += 1
        ms = base_ms + state["n"]
        stamp = _ts(ms)
        return {"id": ident(), "created_at": stamp, "updated_at": stamp,
                "row_version": f"{ms:013d}-{state['n'] % 100000:05d}-{DEVICE}"}

    def date(i: int) -> str:
        return f"20{20 + i % 6:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}"

    ids: dict[str, list[str]] = {}

    def gen(table: str, make: Callable[[int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        keep = ids.setdefault(table, [])
        for i in range(counts[table]):
            row = {**system(), **make(i)}
            keep.append(row["id"])
            yield row

    words = ["flour", "sugar", "butter", "vanilla", "cocoa", "almond", "pecan", "oat", "honey", "ginger"]
    with Store(path, device_id=DEVICE) as store:
        conn = store.db.conn
        conn.execute("PRAGMA synchronous = OFF")
        with store.write():
            plan: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
                ("suppliers", lambda i: {"name": f"Supplier {i}", "slug": f"supplier_{i}", "supplier_type": "physical",
                                         "website_url": None, "street_address": f"{i} Main St", "city": "Boston",
                                         "state": "MA", "zip_code": "02101", "notes": None, "is_active": 1}),
                ("ingredients", lambda i: {"display_name": f"{words[i % 10].title()} {i}", "slug": f"{words[i % 10]}_{i}",
                                           "parent_ingredient_id": None, "hierarchy_level": 2,
                                           "category": words[i % 10].title(), "description": "A baking ingredient",
                                           "notes": None, "foodon_id": None, "foodex2_code": None,
                                           "langual_terms": None, "fdc_ids": '[123,456]',
                                           "density_volume_value": 1.0, "density_volume_unit": "cup",
                                           "density_weight_value": 4.25 + i % 7, "density_weight_unit": "oz",
                                           "moisture_pct": None, "allergens": None}),
                ("recipes", lambda i: {"name": f"Cookie {i}", "slug": f"cookie_{i}", "previous_slug": None,
                                       "category": "Cookies", "source": None, "estimated_time_minutes": 30 + i % 90,
                                       "notes": "Mix, chill, bake.", "is_archived": 0, "base_recipe_id": None,
                                       "variant_name": None, "is_production_ready": 1}),
                ("products", lambda i: {"ingredient_id": rnd.choice(ids["ingredients"]), "brand": f"Brand {i % 97}",
                                        "product_name": f"Product {i}", "package_size": "5 lb", "package_type": "bag",
                                        "package_unit": "lb", "package_unit_quantity": 5.0, "upc_code": None,
                                        "slug": f"product_{i}", "supplier": None, "supplier_sku": None, "gtin": None,
                                        "brand_owner": None, "gpc_brick_code": None, "net_content_value": None,
                                        "net_content_uom": None, "country_of_sale": "USA", "off_id": None,
                                        "preferred": i % 2, "preferred_supplier_id": rnd.choice(ids["suppliers"]),
                                        "is_hidden": 0, "is_provisional": 0, "notes": None}),
                ("purchases", lambda i: {"product_id": rnd.choice(ids["products"]),
                                         "supplier_id": rnd.choice(ids["suppliers"]), "purchase_date": date(i),
                                         "unit_price": round(1 + rnd.random() * 20, 2),
                                         "quantity_purchased": 1 + i % 5, "notes": None}),
                ("inventory_items", lambda i: {"product_id": rnd.choice(ids["products"]),
                                               "purchase_id": ids["purchases"][i % len(ids["purchases"])],
                                               "quantity": float(1 + i % 5), "unit_cost": round(rnd.random() * 9, 2),
                                               "purchase_date": date(i), "expiration_date": None, "opened_date": None,
                                               "location": "pantry", "lot_or_batch": None, "notes": None,
                                               "last_updated": _ts(base_ms + i)}),
                ("inventory_depletions", lambda i: {"inventory_item_id": rnd.choice(ids["inventory_items"]),
                                                    "quantity_depleted": 0.5, "depletion_reason": "production",
                                                    "depletion_date": _ts(base_ms + i), "notes": None,
                                                    "cost": round(rnd.random() * 4, 2), "created_by": "bench"}),
                ("recipe_ingredients", lambda i: {"recipe_id": rnd.choice(ids["recipes"]),
                                                  "ingredient_id": rnd.choice(ids["ingredients"]),
                                                  "quantity": round(0.25 + rnd.random() * 3, 2), "unit": "cup",
                                                  "notes": None}),
            ]
            for table, make in plan:
                bulk_insert(store.db, REGISTRY[table], gen(table, make))
            store._meta_set("hlc", f"{base_ms + state['n'] + 1:013d}-00000-{DEVICE}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {spec.name: store.count(spec.name) for spec in REGISTRY.exported_tables}


def make_source(work: Path, rows: int, dataset: str) -> Path:
    """A database with about ``rows`` rows: the demo generator's (all tables) or the simple one's."""
    db = work / "source.db"
    if dataset == "demo":
        from bakestore.demo import build_demo, scale_for_rows

        build_demo(db, scale=scale_for_rows(rows))
    else:
        build_dataset(db, rows)
    return db


# --------------------------------------------------------------------------- measuring


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (per address space, so it starts afresh at exec;
    ru_maxrss of a forked child also counts the parent's memory at fork time)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drop_caches_hint() -> None:
    """Best effort: flush dirty pages so one measurement's writeback does not land in the next."""
    os.sync()


def floor_export(db_path: Path, out: Path) -> int:
    """Ordered SELECT + json.dumps per row into one file per table (no hashing, no fsync)."""
    from bakestore.sqlite import sqlite3

    out.mkdir()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    total = 0
    try:
        conn.execute("BEGIN")
        for spec in REGISTRY.exported_tables:
            columns = sorted(spec.column_names)
            select = ", ".join(f'"{c}"' for c in columns)
            order = ", ".join(f'"{c}"' for c in spec.pk)
            with open(out / f"{spec.name}.ndjson", "w", encoding="utf-8") as handle:
                for values in conn.execute(f'SELECT {select} FROM "{spec.name}" ORDER BY {order}'):
                    handle.write(json.dumps(dict(zip(columns, values)), separators=(",", ":"),
                                            ensure_ascii=False) + "\n")
                    total += 1
        conn.execute("COMMIT")
    finally:
        conn.close()
    return total


def child_export(db_path: Path, target: Path) -> None:
    """Run in a subprocess: one export, then print seconds and peak RSS (MB) as JSON."""
    with Store(db_path, device_id=DEVICE) as store:
        seconds, result = timed(lambda: store.export(target, name="export"))
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "rows": result.total_rows}))


def diffable(*args: str) -> float:
    exe = Path(sys.executable).with_name("sqlite-diffable")
    if not exe.exists():
        return float("nan")
    seconds, _ = timed(lambda: subprocess.run([str(exe), *args], check=True, capture_output=True))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows to generate (default 50,000)")
    parser.add_argument("--dataset", choices=("demo", "simple"), default="demo",
                        help="demo: bakestore.demo (all tables); simple: 8 related tables (build_dataset)")
    parser.add_argument("--repeat", type=int, default=2, help="take the best of this many runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child-export", nargs=2, metavar=("DB", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_export:
        child_export(Path(args.child_export[0]), Path(args.child_export[1]))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        gen_s, db = timed(lambda: make_source(work, args.rows, args.dataset))
        with Store(db, device_id=DEVICE) as store:
            counts = {spec.name: store.count(spec.name) for spec in REGISTRY.exported_tables}
        total = sum(counts.values())
        print(f"dataset ({args.dataset}): {total:,} rows in {sum(1 for c in counts.values() if c)} tables, "
              f"{db.stat().st_size / 1e6:.0f} MB, generated in {gen_s:.1f}s")
        floors, exports, rss, anchors = [], [], [], []
        for attempt in range(args.repeat):
            drop_caches_hint()
            floors.append(timed(lambda: floor_export(db, work / f"floor-{attempt}"))[0])
            drop_caches_hint()
            child = subprocess.run([sys.executable, __file__, "--child-export", str(db), str(work / f"exp-{attempt}")],
                                   check=True, capture_output=True, text=True)
            report = json.loads(child.stdout.strip().splitlines()[-1])
            exports.append(report["seconds"])
            rss.append(report["rss_mb"])
            drop_caches_hint()
            anchors.append(diffable("dump", str(db), str(work / f"diffable-{attempt}"), "--all"))
        floor, export = min(floors), min(exports)
        print(f"floor  (ordered SELECT + json.dumps to files): {floor:7.2f} s")
        print(f"export (bakestore, sha256 + fsync + manifest):  {export:7.2f} s   "
              f"ratio {export / floor:.2f}x (target <= 1.2x)   peak RSS {max(rss):.0f} MB")
        print(f"anchor (sqlite-diffable dump --all):            {min(anchors):7.2f} s   "
              f"ratio {min(anchors) / floor:.2f}x")
        print(json.dumps({"rows": total, "dataset": args.dataset, "floor_s": round(floor, 3), "export_s": round(export, 3),
                          "ratio": round(export / floor, 3), "diffable_dump_s": round(min(anchors), 3),
                          "export_peak_rss_mb": round(max(rss), 1)}))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
