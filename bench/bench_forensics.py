"""Benchmark: full forensics of a large SQLite file vs ``PRAGMA integrity_check`` on the same file.

    .venv/bin/python bench/bench_forensics.py [--size-mb N] [--delete-share 0.25] [--keep DIR [--reuse]] [--cold]

Builds a database of about N MB (baking-ish rows, each with a unique marker), deletes a share of
rows inside pages, wipes one table and drops another, then times (same run, same file):
  1. PRAGMA integrity_check on a copy (what SQLite itself does to read every page),
  2. bakestore's full analysis (copy + hash, own parser, carving, timeline, report, case.db;
     its integrity check runs in a thread on a second copy).
Prints the ratio (target <= 3x), pages/s, and recall/precision of recovered rows against the
markers present in the file. If a ``sqlite3`` CLI is on PATH, its ``.recover`` is tried too.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bakestore.forensics import analyze  # noqa: E402
from bakestore.sqlite import sqlite3  # noqa: E402

MARKER = re.compile(rb"MK\d{9}Z")
WORDS = ("flour sugar butter eggs vanilla cocoa almond hazelnut yeast salt cream milk lemon orange cinnamon "
         "ginger nutmeg raisin pecan walnut honey maple rye spelt oat buttermilk knead fold proof bake cool "
         "glaze pipe whisk sift temper caramelise laminate").split()


def build(path: Path, size_mb: float, delete_share: float, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.executescript("""
        CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, notes TEXT, servings INTEGER,
                              category TEXT, created_at TEXT NOT NULL);
        CREATE TABLE ingredients (id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT, density REAL,
                                  created_at TEXT NOT NULL);
        CREATE TABLE bake_log (id INTEGER PRIMARY KEY, recipe_id INTEGER, baked_at INTEGER NOT NULL, note TEXT);
        CREATE INDEX recipes_created ON recipes(created_at);
    """)
    n = 0
    target = size_mb * 1024 * 1024
    t0 = 1_767_225_600  # 2026-01-01
    batch = 5000
    while path.stat().st_size < target:
        conn.execute("BEGIN")
        for _ in range(batch):
            n += 1
            ts = t0 + n * 7
            conn.execute("INSERT INTO recipes VALUES (?, ?, ?, ?, ?, ?)",
                         (n, f"MK{n:09d}Z {' '.join(rng.choices(WORDS, k=3))}",
                          " ".join(rng.choices(WORDS, k=rng.randint(20, 90))), rng.randint(1, 24),
                          rng.choice(["Cakes", "Cookies", "Breads", "Pies"]),
                          time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))))
            if n % 4 == 0:
                m = n + 500_000_000
                conn.execute("INSERT INTO ingredients VALUES (?, ?, ?, ?, ?)",
                             (f"{n:08x}-7c1e-4d2a-9b3f-{rng.getrandbits(48):012x}",
                              f"MK{m:09d}Z {rng.choice(WORDS)}", rng.choice(["g", "ml", "each"]),
                              round(rng.uniform(0.2, 1.8), 3), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))))
            if n % 3 == 0:
                m = n + 800_000_000
                conn.execute("INSERT INTO bake_log VALUES (?, ?, ?, ?)",
                             (n // 3, n, ts, f"MK{m:09d}Z {' '.join(rng.choices(WORDS, k=8))}"))
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    ids = rng.sample(range(1, n + 1), int(n * delete_share))
    conn.executemany("DELETE FROM recipes WHERE id = ?", [(i,) for i in ids])
    conn.execute("COMMIT")
    conn.execute("DELETE FROM ingredients")
    conn.execute("DROP TABLE bake_log")
    conn.close()
    return {"rows_inserted": n, "recipes_deleted": len(ids)}


def live_markers(path: Path) -> set[bytes]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {MARKER.search(r[0].encode()).group(0) for r in conn.execute("SELECT name FROM recipes")}
    finally:
        conn.close()


def drop_caches() -> bool:
    """Empty the OS page cache (Linux, root) so both timings start from disk; False if not allowed."""
    try:
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def time_integrity(path: Path) -> tuple[float, str]:
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed, result


def try_recover(path: Path, present: set[bytes], live: set[bytes]) -> dict[str, object]:
    exe = shutil.which("sqlite3")
    if not exe:
        return {"available": False, "note": "no sqlite3 CLI on PATH"}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split(" ")[0]
    t = time.perf_counter()
    proc = subprocess.run([exe, str(path), ".recover"], capture_output=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0 or not proc.stdout:
        return {"available": False, "version": version,
                "note": (proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}")[:200]}
    found = set(MARKER.findall(proc.stdout))
    deleted_found = (found & present) - live
    return {"available": True, "version": version, "seconds": round(elapsed, 2),
            "recall": round(len(deleted_found) / len(present), 4) if present else None,
            "note": "lost_and_found rows are not attributed to tables"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=8.0)
    ap.add_argument("--delete-share", type=float, default=0.25)
    ap.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: reuse bench.db from an earlier run with the same options instead of "
                         "rebuilding it")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--cold", action="store_true",
                    help="drop the OS page cache before each timed step (Linux, needs root)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-forensics-"))
    root = args.keep or tmp
    root.mkdir(parents=True, exist_ok=True)
    try:
        db = root / "bench.db"
        built_file = root / "bench.built.json"
        wanted = {"size_mb": args.size_mb, "delete_share": args.delete_share}
        previous = json.loads(built_file.read_text()) if args.reuse and built_file.exists() else None
        t = time.perf_counter()
        if previous is not None and previous.get("options") == wanted and db.exists():
            built = previous["built"]
        else:
            if db.exists():
                db.unlink()
            built = build(db, args.size_mb, args.delete_share)
            built_file.write_text(json.dumps({"options": wanted, "built": built}))
        build_s = time.perf_counter() - t
        raw = db.read_bytes()
        in_file = set(MARKER.findall(raw))
        live = live_markers(db)
        present_deleted = in_file - live
        copy = root / "integrity-copy.db"
        shutil.copyfile(db, copy)
        cold = args.cold and drop_caches()
        integ_s, integ = time_integrity(copy)
        case = root / "case"
        if case.exists():
            shutil.rmtree(case)
        if args.cold:
            drop_caches()
        t = time.perf_counter()
        report = analyze(db, case)
        forensics_s = time.perf_counter() - t
        found: set[bytes] = set()
        tp = fp = live_hits = 0
        for item in report.recovered:
            if item.table.startswith("sqlite_"):
                continue
            ms = {m.encode() for v in item.values if isinstance(v, str) for m in re.findall(r"MK\d{9}Z", v)}
            if ms - live:
                tp += 1
                found |= ms - live
            else:
                fp += 1
                live_hits += bool(ms & live)
        pages = report.pages["page_count"]
        result = {
            "size_bytes": len(raw), "pages": pages, "page_size": report.pages["page_size"], **built,
            "build_seconds": round(build_s, 1), "integrity_check_seconds": round(integ_s, 3),
            "integrity_result": integ, "forensics_seconds": round(forensics_s, 3),
            "ratio": round(forensics_s / integ_s, 2), "pages_per_second": round(pages / forensics_s),
            "cache": "cold" if cold else "warm", "stages": report.meta.get("timings"),
            "free_pages": report.pages["free_pages"], "recovered_rows": len(report.recovered),
            "deleted_markers_in_file": len(present_deleted),
            "recall": round(len(found & present_deleted) / len(present_deleted), 4) if present_deleted else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None, "live_rows_reported": live_hits,
            "sqlite3_recover": try_recover(copy, present_deleted, live),
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            for k, v in result.items():
                print(f"{k:28} {v}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
