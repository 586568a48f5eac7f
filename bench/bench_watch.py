"""Benchmark: the watcher's commit → export-on-disk latency, and incremental vs full export.

    python bench/bench_watch.py                                  # demo ~50k rows, big DB 1,000,000 rows
    python bench/bench_watch.py --demo-rows 20000 --big-rows 200000   # quick

1. **Latency** on the demo database with the default debounce (250 ms quiet, 2 s max wait) and a
   real watchdog observer: a one-row commit through the Store, then the time until the new export
   folder is renamed into place (``on_export`` runs right after the rename and directory fsync).
   Targets: median ≤ 1 s, p95 ≤ 2 s.
2. **Incremental** on a 1,000,000-row demo database: the first (full) export, then a one-row
   change and the incremental export that follows (only that table re-serialized, the others
   copied from the previous export). Target: ≤ 20 % of the full export time. Reported for a
   typical table and for the largest table (the worst case: its own file must be rewritten).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BAKESTORE_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bakestore-bench-home"))

try:
    from ._common import print_header, print_line, scratch_dir, timer
except ImportError:  # run as a script
    from _common import print_header, print_line, scratch_dir, timer

from bakestore.demo import build_demo, scale_for_rows  # noqa: E402
from bakestore.store import Store  # noqa: E402
from bakestore.watch import Watcher  # noqa: E402

DEVICE = "be" * 16


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def latency(tmp: Path, rows: int, commits: int) -> tuple[float, float]:
    db = tmp / "demo.db"
    build_demo(db, scale=scale_for_rows(rows))
    done = threading.Event()
    watcher = Watcher(db, tmp / "exports", on_export=lambda result: done.set())
    watcher.start()
    samples: list[float] = []
    try:
        if not done.wait(120):
            raise RuntimeError("the start-up export did not appear")
        with Store(db, device_id=DEVICE) as store:
            recipes = [r["id"] for r in store.rows("recipes", limit=commits)]
            for i in range(commits):
                done.clear()
                started = time.perf_counter()
                store.update("recipes", recipes[i % len(recipes)], {"notes": f"bench edit {i}"})
                if not done.wait(30):
                    raise RuntimeError(f"commit {i} was not exported within 30 s")
                samples.append(time.perf_counter() - started)
    finally:
        watcher.stop()
    median, p95 = statistics.median(samples), percentile(samples, 0.95)
    print_line(f"commit → export, {commits} commits", sum(samples), None,
               f"median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms "
               f"(debounce 250 ms quiet / 2 s max)")
    return median, p95


def incremental(tmp: Path, rows: int, repeats: int) -> dict[str, float]:
    db = tmp / "big.db"
    with timer() as built:
        counts = build_demo(db, scale=scale_for_rows(rows))
    total = sum(counts.values())
    largest = max(counts, key=lambda t: counts[t])
    print_line("build the big demo", built.seconds, total, f"largest table {largest} ({counts[largest]:,} rows)")
    watcher = Watcher(db, tmp / "big-exports", keep_last=3)
    fulls: list[float] = []
    for _ in range(repeats):
        with timer() as full:
            watcher.check(force=True, full=True)  # after the first: identical, so discarded after hashing
        fulls.append(full.seconds)
    full_s = statistics.median(fulls)
    print_line("full export (all tables)", full_s, total, f"median of {repeats}")
    ratios: dict[str, float] = {}
    with Store(db, device_id=DEVICE) as store:
        for table, column in (("recipes", "notes"), (largest, "notes")):
            ids = [r["id"] for r in store.rows(table, limit=repeats)]
            times = []
            for i in range(repeats):
                store.update(table, ids[i % len(ids)], {column: f"one-row change {i}"})
                with timer() as step:
                    result = watcher.check()
                assert result is not None and watcher.stats.last_tables_rewritten == [table], watcher.stats
                times.append(step.seconds)
            seconds = statistics.median(times)
            ratios[table] = seconds / full_s
            print_line(f"one-row change in {table}", seconds, None,
                       f"{ratios[table]:.1%} of the full export (median of {repeats}; max {max(times):.2f} s "
                       f"= {max(times) / full_s:.1%})")
    watcher.close()  # the benchmark drove check() without start()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-rows", type=int, default=50_000, help="rows in the latency demo DB")
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows in the incremental-export DB")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print_header(f"bench_watch: latency on a {args.demo_rows:,}-row demo, incremental on {args.big_rows:,} rows")
    ok = True
    with scratch_dir(keep=args.keep) as tmp:
        median, p95 = latency(tmp, args.demo_rows, args.commits)
        verdict = median <= 1.0 and p95 <= 2.0
        ok &= verdict
        print(f"   latency target (median ≤ 1 s, p95 ≤ 2 s): {'PASS' if verdict else 'FAIL'}")
        ratios = incremental(tmp, args.big_rows, args.repeats)
        typical = ratios["recipes"]
        verdict = typical <= 0.20
        ok &= verdict
        print(f"   incremental target (one-row change ≤ 20 % of full): {'PASS' if verdict else 'FAIL'} "
              f"({typical:.1%}; worst case, the largest table: {max(ratios.values()):.1%})")
        if args.keep:
            print(f"   files kept in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
