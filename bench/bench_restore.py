"""Benchmark: restore of an N-row export, and undo of a large database, against their floors.

Restore (validation + build + swap, ``Store.restore`` in a child process, which also reports its
peak RSS) is compared in the same run with:

* **floor**: the same rows, already decoded in memory, inserted with one sorted ``executemany``
  per table into a fresh file with the same DDL (``schema_statements()``), one transaction;
* **floor + checks**: the floor plus the two checks the pipeline must run on the fresh file
  (``integrity_check`` and ``foreign_key_check``): what any restore that verifies must do at least;
* **in place**: what the upstream app did — in the live file, one transaction that DELETEs every
  table and inserts the decoded rows (reading the export included), then a WAL checkpoint;
* **anchor**: ``sqlite-diffable dump`` / ``load`` of the same data (bench-only dependency).

Undo of a database of about ``--undo-mb`` MB (``Store.undo``: verify the restore point, copy it
into a fresh file, integrity_check, restore point of the current state, swap, checkpoint) is
compared with a plain file copy (with and without fsync).

Targets: restore ≤ 1.5 × floor, peak RSS ≤ 250 MB, undo ≤ 2 × file copy.
Run: ``.venv/bin/python bench/bench_restore.py --rows 1000000 --undo-mb 150``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_export import (  # noqa: E402
    DEVICE,
    build_dataset,
    diffable,
    drop_caches_hint,
    make_source,
    peak_rss_mb,
    timed,
)

from bakestore import fileswap, restore  # noqa: E402
from bakestore.registry import REGISTRY  # noqa: E402
from bakestore.schema import schema_statements  # noqa: E402
from bakestore.sqlite import sqlite3  # noqa: E402
from bakestore.store import Store  # noqa: E402


def _insert_sql(spec: Any) -> str:
    columns = spec.column_names
    return (f'INSERT INTO "{spec.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
            f'VALUES ({", ".join("?" for _ in columns)})')


def decode_export(folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for spec in REGISTRY.exported_tables:
        getter = spec.column_names
        with open(folder / f"{spec.name}.ndjson", encoding="utf-8") as handle:
            rows[spec.name] = [tuple(map(row.__getitem__, getter)) for row in map(json.loads, handle)]
    return rows


def floor_restore(path: Path, rows: dict[str, list[tuple[Any, ...]]], *, checks: bool) -> None:
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in schema_statements():
            conn.execute(statement)
        for spec in REGISTRY.exported_tables:
            conn.executemany(_insert_sql(spec), rows[spec.name])
        conn.execute("COMMIT")
        if checks:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def in_place_restore(live: Path, export: Path) -> None:
    """The upstream pattern: DELETE everything in the live file, insert the export, one transaction."""
    conn = sqlite3.connect(str(live), isolation_level=None)
    try:
        # Foreign keys off: the cheapest in-place variant (RESTRICT cycles would need ordering),
        # which only makes the comparison harder for bakestore.
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        for spec in reversed(REGISTRY.exported_tables):
            conn.execute(f'DELETE FROM "{spec.name}"')
        for spec in REGISTRY.exported_tables:
            columns = spec.column_names
            with open(export / f"{spec.name}.ndjson", encoding="utf-8") as handle:
                conn.executemany(_insert_sql(spec), (tuple(map(row.__getitem__, columns))
                                                     for row in map(json.loads, handle)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def child_restore(live: Path, export: Path) -> None:
    """Run in a subprocess: one restore, then print seconds and peak RSS (MB) as JSON."""
    import resource

    with Store(live, device_id=DEVICE) as store:
        seconds, result = timed(lambda: store.restore(export, allow_shrink=True))
    # The load worker is this process's child: its peak RSS (ru_maxrss, KiB on Linux).
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "worker_rss_mb": worker_mb,
                      "rows": sum(result.counts_after.values())}))


def child_undo(live: Path) -> None:
    with Store(live, device_id=DEVICE) as store:
        seconds, _ = timed(store.undo)
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb()}))


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    child = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, **(env or {})})
    return json.loads(child.stdout.strip().splitlines()[-1])


def copy_file(src: Path, dst: Path, *, fsync: bool) -> None:
    shutil.copyfile(src, dst)
    if fsync:
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def best(values: list[float]) -> float:
    return min(values)


def cached_source(work: Path, rows: int, dataset: str, cache: Path | None) -> tuple[float, Path, Path]:
    """The source database and its export: built in ``work``, or reused from / kept in ``cache``
    (one subfolder per size and dataset, so a second run skips the ~20 s build of 1M rows)."""
    if cache is None:
        source_seconds, source = timed(lambda: make_source(work, rows, dataset))
        with Store(source, device_id=DEVICE) as store:
            export = store.export(work, name="export").path
        return source_seconds, source, export
    folder = cache / f"{dataset}-{rows}"
    source, export = folder / "source.db", folder / "export"
    if (export / "manifest.json").is_file() and source.is_file():
        return 0.0, source, export
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source_seconds, _ = timed(lambda: make_source(folder, rows, dataset))
    with Store(source, device_id=DEVICE) as store:
        store.export(folder, name="export")
    return source_seconds, source, export


def bench_restore(work: Path, rows: int, dataset: str, repeat: int, anchor: bool,
                  cache: Path | None = None) -> dict[str, Any]:
    source_seconds, source, export = cached_source(work, rows, dataset, cache)
    with Store(source, device_id=DEVICE) as store:
        counts = {spec.name: store.count(spec.name) for spec in REGISTRY.exported_tables}
    total = sum(counts.values())
    size_mb = source.stat().st_size / 1e6
    print(f"dataset ({dataset}): {total:,} rows in {sum(1 for c in counts.values() if c)} tables, "
          f"{size_mb:.0f} MB database, {sum(p.stat().st_size for p in export.iterdir()) / 1e6:.0f} MB export; "
          f"built in {source_seconds:.0f}s")
    decoded = decode_export(export)
    results: dict[str, list[float]] = {k: [] for k in ("floor", "floor_checks", "restore", "in_place")}
    rss: list[float] = []
    worker_rss: list[float] = []
    for attempt in range(repeat):
        for key, checks in (("floor", False), ("floor_checks", True)):
            target = work / f"floor-{attempt}-{key}.db"
            drop_caches_hint()
            results[key].append(timed(lambda: floor_restore(target, decoded, checks=checks))[0])
            target.unlink()
        live = work / f"live-{attempt}.db"
        Store(live, device_id=DEVICE).close()  # an empty, seeded store
        drop_caches_hint()
        report = run_child("--child-restore", str(live), str(export))
        results["restore"].append(report["seconds"])
        rss.append(report["rss_mb"])
        worker_rss.append(report["worker_rss_mb"])
        restore._remove_db_files(live)
        shutil.rmtree(restore.restore_point_dir(live), ignore_errors=True)
        in_place = work / f"inplace-{attempt}.db"
        conn = sqlite3.connect(str(source))
        conn.execute("VACUUM INTO ?", [str(in_place)])
        conn.close()
        Store(in_place, device_id=DEVICE).close()  # back to WAL, as a live store is
        drop_caches_hint()
        results["in_place"].append(timed(lambda: in_place_restore(in_place, export))[0])
        restore._remove_db_files(in_place)
    decoded.clear()  # the decoded rows are not needed any more: free them before the undo benchmark
    out = {key: best(values) for key, values in results.items()}
    out["rss_mb"] = max(rss)
    out["worker_rss_mb"] = max(worker_rss)
    if anchor:
        dump_dir = work / "diffable"
        drop_caches_hint()
        out["diffable_dump"] = diffable("dump", str(source), str(dump_dir), "--all")
        drop_caches_hint()
        out["diffable_load"] = diffable("load", str(work / "diffable.db"), str(dump_dir))
        shutil.rmtree(dump_dir, ignore_errors=True)
    floor = out["floor"]
    print(f"floor          sorted executemany, same DDL, fresh file   {floor:8.2f} s")
    print(f"floor + checks floor + integrity_check + foreign_key_check {out['floor_checks']:8.2f} s   "
          f"({out['floor_checks'] / floor:.2f}x floor)")
    print(f"restore        bakestore (validate, build, swap, audit)    {out['restore']:8.2f} s   "
          f"{out['restore'] / floor:.2f}x floor (target <= 1.5x), {out['restore'] / out['floor_checks']:.2f}x "
          f"floor+checks; peak RSS {out['rss_mb']:.0f} MB + load worker {out['worker_rss_mb']:.0f} MB = "
          f"{out['rss_mb'] + out['worker_rss_mb']:.0f} MB (target <= 250)")
    print(f"in place       DELETE all + insert, one transaction        {out['in_place']:8.2f} s   "
          f"restore is {out['restore'] / out['in_place']:.2f}x in-place")
    if anchor:
        print(f"anchor         sqlite-diffable dump {out['diffable_dump']:.2f} s + load {out['diffable_load']:.2f} s "
              f"= {out['diffable_dump'] + out['diffable_load']:.2f} s   "
              f"(load alone {out['diffable_load'] / floor:.2f}x floor)")
    out.update(rows=total, dataset=dataset, db_mb=round(size_mb, 1))
    return out


def bench_undo(work: Path, megabytes: float, repeat: int, cache: Path | None = None) -> dict[str, Any]:
    live = work / "undo-live.db"
    rows = max(1000, int(megabytes * 1e6 / 406))
    built = cache / f"undo-{rows}.db" if cache is not None else None
    if built is not None and built.is_file():
        shutil.copyfile(built, live)
    else:
        build_dataset(live, rows, seed=11)
        if built is not None:
            built.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(live, built)
    size_mb = live.stat().st_size / 1e6
    with Store(live, device_id=DEVICE) as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copies, copies_sync, undos, verified = [], [], [], []
    for attempt in range(repeat):
        drop_caches_hint()
        copies.append(timed(lambda: copy_file(live, work / "copy.db", fsync=False))[0])
        (work / "copy.db").unlink()
        drop_caches_hint()
        copies_sync.append(timed(lambda: copy_file(live, work / "copy.db", fsync=True))[0])
        (work / "copy.db").unlink()
        point = restore.make_restore_point(live, "bench")
        with Store(live, device_id=DEVICE) as store:
            store.insert("recipients", {"name": f"after the restore point {attempt}"})
        drop_caches_hint()
        undos.append(run_child("--child-undo", str(live))["seconds"])
        shutil.rmtree(restore.restore_point_dir(live))
        assert point  # the undo swapped it in
        # The same undo when the rename swap is not allowed (as when another process has the
        # database open): the verified backup-API path.
        restore.make_restore_point(live, "bench")
        with Store(live, device_id=DEVICE) as store:
            store.insert("recipients", {"name": f"after the second restore point {attempt}"})
        drop_caches_hint()
        verified.append(run_child("--child-undo", str(live), env={fileswap.DISABLE_ENV: "1"})["seconds"])
        shutil.rmtree(restore.restore_point_dir(live))
    copy, copy_sync, undo, slow = best(copies), best(copies_sync), best(undos), best(verified)
    print(f"undo of a {size_mb:.0f} MB database: {undo:.2f} s; plain copy {copy:.2f} s "
          f"({undo / copy:.1f}x), copy + fsync {copy_sync:.2f} s ({undo / copy_sync:.1f}x) (target <= 2x)")
    print(f"  the verified backup-API undo (when others have the file open): {slow:.2f} s "
          f"({slow / copy:.1f}x copy, {slow / copy_sync:.1f}x copy + fsync)")
    return {"undo_db_mb": round(size_mb, 1), "undo_s": undo, "undo_verified_s": slow, "copy_s": copy,
            "copy_fsync_s": copy_sync}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows in the restored export (default 50,000)")
    parser.add_argument("--dataset", choices=("demo", "simple"), default="demo",
                        help="demo: bakestore.demo (all tables); simple: 8 related tables (bench_export)")
    parser.add_argument("--undo-mb", type=float, default=20, help="size of the database for the undo benchmark")
    parser.add_argument("--repeat", type=int, default=2, help="take the best of this many runs")
    parser.add_argument("--no-anchor", action="store_true", help="skip sqlite-diffable")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="reuse the built source database, its export and the undo database from DIR "
                             "(built there on the first run)")
    parser.add_argument("--only", choices=("restore", "undo"), help="run only one of the two benchmarks")
    parser.add_argument("--child-restore", nargs=2, metavar=("DB", "EXPORT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-undo", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_restore:
        child_restore(Path(args.child_restore[0]), Path(args.child_restore[1]))
        return 0
    if args.child_undo:
        child_undo(Path(args.child_undo))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    os.environ.setdefault("BAKESTORE_HOME", str(work / "home"))
    try:
        print(f"SQLite {sqlite3.sqlite_version} via {sqlite3.__name__}, {os.cpu_count()} CPUs")
        figures: dict[str, Any] = {}
        if args.only != "undo":
            figures.update(bench_restore(work, args.rows, args.dataset, args.repeat, not args.no_anchor,
                                         args.cache))
        if args.only != "restore":
            figures.update(bench_undo(work, args.undo_mb, args.repeat, args.cache))
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
