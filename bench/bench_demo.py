"""Benchmark: build the demo database and compare with the raw ``executemany`` floor.

    python bench/bench_demo.py                # ~1,000,000 rows
    python bench/bench_demo.py --rows 50000   # quick

The demo time is everything ``build_demo`` does: create the file through the Store (schema, seeds),
generate every row and insert it with ``bulk_insert`` in one transaction (WAL, synchronous=FULL,
foreign keys on). The floor, measured in the same run, writes exactly the same rows (read back from
the demo file, sorted by primary key; reading is not timed) into a fresh file with the same DDL
using plain ``executemany`` with journal_mode=OFF, synchronous=OFF and foreign keys off: the least
work SQLite can do to end up with that data.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BAKESTORE_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bakestore-bench-home"))

try:
    from ._common import Stopwatch, peak_rss_mb, print_header, print_line, print_ratio, scratch_dir, timer
except ImportError:  # run as a script
    from _common import Stopwatch, peak_rss_mb, print_header, print_line, print_ratio, scratch_dir, timer

from bakestore.demo import build_demo, generate, scale_for_rows  # noqa: E402
from bakestore.registry import REGISTRY  # noqa: E402
from bakestore.schema import schema_statements  # noqa: E402
from bakestore.sqlite import sqlite3  # noqa: E402


def floor_copy(source: Path, target: Path, cache_kib: int) -> tuple[int, float]:
    """Write every row of ``source`` into a fresh ``target`` with plain executemany; (rows, timed seconds)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(str(target), isolation_level=None)
    watch = Stopwatch()
    total = 0
    try:
        with watch.running():
            dst.execute("PRAGMA journal_mode = OFF")
            dst.execute("PRAGMA synchronous = OFF")
            dst.execute("PRAGMA foreign_keys = OFF")
            dst.execute(f"PRAGMA cache_size = -{cache_kib}")
            dst.execute("BEGIN")
            for statement in schema_statements():
                dst.execute(statement)
        for spec in REGISTRY:
            columns = ", ".join(f'"{c}"' for c in spec.column_names)
            order = ", ".join(f'"{c}"' for c in spec.pk)
            rows = src.execute(f'SELECT {columns} FROM "{spec.name}" ORDER BY {order}').fetchall()  # not timed
            sql = f'INSERT INTO "{spec.name}" ({columns}) VALUES ({", ".join("?" for _ in spec.column_names)})'
            with watch.running():
                dst.executemany(sql, rows)
            total += len(rows)
            del rows
        with watch.running():
            dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return total, watch.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="total row target (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory with both files")
    parser.add_argument("--no-generate-only", action="store_true", help="skip timing generation without a database")
    args = parser.parse_args(argv)

    scale = scale_for_rows(args.rows)
    print_header(f"bench_demo: build the demo at --rows {args.rows:,} (scale {scale})")
    with scratch_dir(keep=args.keep) as tmp:
        demo_path = tmp / "demo.db"
        with timer() as built:
            counts = build_demo(demo_path, scale=scale, seed=args.seed)
        rss_after_build = peak_rss_mb()
        rows = sum(counts.values())
        print_line("demo build (build_demo)", built.seconds, rows,
                   f"{rows:,} rows, {demo_path.stat().st_size / 2**20:,.0f} MiB, peak RSS {rss_after_build:,.0f} MiB")

        if not args.no_generate_only:
            with timer() as gen:
                generated = sum(1 for _ in generate(scale, args.seed))
            print_line("  of which: generate only", gen.seconds, generated, "(no database; for the breakdown)")

        floor_rows, floor_seconds = floor_copy(demo_path, tmp / "floor.db", cache_kib=65536)
        print_line("floor (raw executemany)", floor_seconds, floor_rows,
                   "same rows, PK order, journal/sync/FKs off")
        print_ratio("demo build vs floor", built.seconds, floor_seconds)
        if args.keep:
            print(f"   files kept in {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
