"""Benchmark: full forensics of a large SQLite file vs ``PRAGMA integrity_check`` on the same file.

    .venv/bin/python bench/bench_forensics.py [--dataset demo|synthetic] [--size-mb N] [--delete-share 0.2]
                                              [--keep DIR [--reuse]] [--cold] [--json]

``--dataset demo`` (the default, what the issue asks for): the bakestore demo at large scale
(``build_demo``; 55 tables, UUID keys, 170-odd indexes), then, with ``secure_delete`` off, a share of
the rows of every domain table deleted at random, ``recipients`` and ``packages`` emptied whole
(empty while the tables that refer to them are full: the incident's fingerprint) and
``recipe_categories`` and ``material_categories`` wiped and re-seeded a day later (the seed
incident), then checkpointed into a single file. Each row's ``row_version`` is unique and in no
index, so it marks where a row's record still exists in the file.

``--dataset synthetic``: three tables of long text rows with one marker each, one index, a share
of rows deleted inside pages, one table wiped and one dropped. Almost nothing of it is indexed,
so ``integrity_check`` has little to do there: a stress case for the carver, not the issue's.

Times, in the same run on the same file: (1) ``PRAGMA integrity_check`` on a copy, (2)
bakestore's full analysis (copy + hash, own parser, carving, timeline, report, case.db; its
integrity check runs in a thread on a second copy). Prints the ratio (target <= 3x), pages/s, and
recall/precision of recovered rows against the markers present in the file. If a ``sqlite3`` CLI
is on PATH, its ``.recover`` is tried too.

It also measures two *floors* no implementation of the issue can go under, each as a ratio to
the same integrity_check: the evidence handling the issue requires (copy the file, sha256 of
original and copy, hash the original again at the end to show it is unchanged), done the
fastest way Python can (kernel copy, hashing in two threads), and storing the rows that were
recovered: their required fields, already encoded, inserted into a fresh SQLite table (no
journal, no fsync) and written once as JSON lines. Neither includes reading a single page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bakestore.demo import build_demo, scale_for_rows  # noqa: E402
from bakestore.forensics import analyze  # noqa: E402
from bakestore.registry import REGISTRY  # noqa: E402
from bakestore.sqlite import sqlite3  # noqa: E402

MARKER = re.compile(rb"MK\d{9}Z")
#: A bakestore row version: 13-digit ms, 5-digit counter, 32 hex digits of device id.
ROW_VERSION = re.compile(rb"\d{13}-\d{5}-[0-9a-f]{32}")
#: Demo rows per MB of database file (measured: scale 65, 342,550 rows, 149.1 MB).
DEMO_ROWS_PER_MB = 342_550 / 149.1
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


def build_demo_case(path: Path, size_mb: float, delete_share: float, seed: int = 1) -> dict[str, int]:
    """The demo at about ``size_mb`` MB with rows deleted the ways a real loss deletes them."""
    rng = random.Random(seed)
    scale = scale_for_rows(int(size_mb * DEMO_ROWS_PER_MB))
    counts = build_demo(path, scale=scale)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")  # the default of most SQLite builds (not Debian's 3.40)
    conn.execute("PRAGMA foreign_keys = OFF")  # deleted the way the upstream app's import did: blindly
    deleted = 0
    wiped = ("recipients", "packages")
    reseeded = ("recipe_categories", "material_categories")
    for spec in REGISTRY.domain_tables:
        name = spec.name
        quoted = '"' + name + '"'
        if name in wiped:
            deleted += conn.execute(f"DELETE FROM {quoted}").rowcount
            continue
        if name in reseeded:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({quoted})")]
            rows = conn.execute(f"SELECT * FROM {quoted}").fetchall()
            conn.execute("BEGIN")
            deleted += conn.execute(f"DELETE FROM {quoted}").rowcount
            day = 86_400_000
            for n, row in enumerate(rows):
                rec = dict(zip(cols, row))
                ms = int(rec["row_version"][:13]) + day
                rec["row_version"] = f"{ms:013d}-{n:05d}-{rec['row_version'][20:]}"
                for col in ("created_at", "updated_at"):
                    when = datetime.strptime(rec[col], "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(days=1)
                    rec[col] = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                conn.execute(f"INSERT INTO {quoted} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             list(rec.values()))
            conn.execute("COMMIT")
            continue
        rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {quoted}")]
        doomed = rng.sample(rowids, int(len(rowids) * delete_share))
        conn.execute("BEGIN")
        conn.executemany(f"DELETE FROM {quoted} WHERE rowid = ?", [(r,) for r in doomed])
        conn.execute("COMMIT")
        deleted += len(doomed)
    conn.execute("PRAGMA journal_mode = DELETE")  # checkpoints: the whole case is in the one file
    conn.close()
    return {"scale": scale, "rows_inserted": sum(counts.values()), "rows_deleted": deleted}


def live_demo_markers(path: Path) -> set[bytes]:
    """Every row version that occurs in any live value of any table (tombstones included)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    found: set[bytes] = set()
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute('SELECT * FROM "' + name.replace('"', '""') + '"'):
                for v in row:
                    if isinstance(v, str) and len(v) >= 51:
                        found.update(ROW_VERSION.findall(v.encode()))
    finally:
        conn.close()
    return found


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


def _sha256(path: Path, out: list[str]) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    out.append(h.hexdigest())


def evidence_floor(db: Path, scratch: Path) -> float:
    """Copy + sha256 of original and copy (two threads: hashlib releases the GIL) + re-hash of the original."""
    dst = scratch / "floor-copy.db"
    t = time.perf_counter()
    shutil.copyfile(db, dst)  # sendfile/copy_file_range: the kernel copies, no bytes through Python
    digests: list[str] = []
    threads = [threading.Thread(target=_sha256, args=(p, digests)) for p in (db, dst)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    _sha256(db, digests)  # the originals are hashed again at the end: unchanged?
    elapsed = time.perf_counter() - t
    dst.unlink()
    if len(set(digests)) != 1:
        raise SystemExit("evidence floor: the copy's hash differs from the original's")
    return elapsed


def output_floor(items: list, scratch: Path) -> float:
    """Store the recovered rows' required fields once in SQLite and once as JSON lines, pre-encoded."""
    rows = [(r.table, r.source, r.page, r.offset, r.rowid, json.dumps(r.values, default=repr), r.confidence)
            for r in items]
    lines = "".join(json.dumps({"table": t, "source": s, "page": p, "offset": o, "rowid": i, "confidence": c})[:-1]
                    + ', "values": ' + v + "}\n" for t, s, p, o, i, v, c in rows).encode()
    path = scratch / "floor-out.db"
    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("CREATE TABLE recovered (tbl TEXT, source TEXT, page INT, offset INT, rowid_ INT, "
                 "values_json TEXT, confidence REAL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO recovered VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    (scratch / "floor-out.ndjson").write_bytes(lines)
    elapsed = time.perf_counter() - t
    path.unlink()
    (scratch / "floor-out.ndjson").unlink()
    return elapsed


def try_recover(path: Path, present: set[bytes], live: set[bytes], marker: re.Pattern[bytes] = MARKER
                ) -> dict[str, object]:
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
    found = set(marker.findall(proc.stdout))
    deleted_found = (found & present) - live
    return {"available": True, "version": version, "seconds": round(elapsed, 2),
            "recall": round(len(deleted_found) / len(present), 4) if present else None,
            "note": "lost_and_found rows are not attributed to tables"}


DATASETS = {
    # name: (build, markers of live rows, marker pattern)
    "demo": (build_demo_case, live_demo_markers, ROW_VERSION),
    "synthetic": (build, live_markers, MARKER),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="demo",
                    help="demo: the bakestore demo at scale (the issue's benchmark); synthetic: see above")
    ap.add_argument("--size-mb", type=float, default=8.0)
    ap.add_argument("--delete-share", type=float, default=None,
                    help="share of rows deleted at random (default: 0.2 demo, 0.25 synthetic)")
    ap.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: reuse bench.db from an earlier run with the same options instead of "
                         "rebuilding it")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--cold", action="store_true",
                    help="drop the OS page cache before each timed step (Linux, needs root)")
    args = ap.parse_args()
    share = args.delete_share if args.delete_share is not None else (0.2 if args.dataset == "demo" else 0.25)
    builder, live_of, marker = DATASETS[args.dataset]
    tmp = Path(tempfile.mkdtemp(prefix="bench-forensics-"))
    root = args.keep or tmp
    root.mkdir(parents=True, exist_ok=True)
    try:
        db = root / "bench.db"
        built_file = root / "bench.built.json"
        wanted = {"dataset": args.dataset, "size_mb": args.size_mb, "delete_share": share}
        previous = json.loads(built_file.read_text()) if args.reuse and built_file.exists() else None
        if previous is not None and "dataset" not in previous.get("options", {}):
            previous["options"]["dataset"] = "synthetic"  # files kept before there was a choice
        t = time.perf_counter()
        if previous is not None and previous.get("options") == wanted and db.exists():
            built = previous["built"]
        else:
            if db.exists():
                db.unlink()
            built = builder(db, args.size_mb, share)
            built_file.write_text(json.dumps({"options": wanted, "built": built}))
        build_s = time.perf_counter() - t
        raw = db.read_bytes()
        in_file = set(marker.findall(raw))
        live = live_of(db)
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
        tp = fp = live_hits = unmarked = 0
        for item in report.recovered:
            if item.table.startswith("sqlite_"):
                continue
            ms = {m for v in item.values if isinstance(v, str) for m in marker.findall(v.encode())}
            if not ms:
                unmarked += 1  # no marker left in what was recovered (e.g. cut short): cannot be checked
            elif ms - live:
                tp += 1
                found |= ms - live
            else:
                fp += 1
                live_hits += bool(ms & live)
        evidence_s = evidence_floor(db, root)
        output_s = output_floor(report.recovered, root)
        pages = report.pages["page_count"]
        result = {
            "dataset": args.dataset, "size_bytes": len(raw), "pages": pages, "page_size": report.pages["page_size"],
            **built, "build_seconds": round(build_s, 1), "integrity_check_seconds": round(integ_s, 3),
            "integrity_result": integ, "forensics_seconds": round(forensics_s, 3),
            "ratio": round(forensics_s / integ_s, 2), "pages_per_second": round(pages / forensics_s),
            "cache": "cold" if cold else "warm", "stages": report.meta.get("timings"),
            # Floors (warm cache, measured after the analysis): see the module docstring.
            "floor_evidence_seconds": round(evidence_s, 3), "floor_evidence_ratio": round(evidence_s / integ_s, 2),
            "floor_outputs_seconds": round(output_s, 3), "floor_outputs_ratio": round(output_s / integ_s, 2),
            "free_pages": report.pages["free_pages"], "recovered_rows": len(report.recovered),
            "deleted_markers_in_file": len(present_deleted),
            "recall": round(len(found & present_deleted) / len(present_deleted), 4) if present_deleted else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recovered_without_marker": unmarked,
            "precision_counting_those_as_wrong": round(tp / (tp + fp + unmarked), 4) if tp + fp + unmarked else None,
            "live_rows_reported": live_hits,
            "sqlite3_recover": try_recover(copy, present_deleted, live, marker),
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            for k, v in result.items():
                print(f"{k:34} {v}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
