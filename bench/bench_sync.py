"""Benchmark: merging two devices' 100,000-row sync snapshots.

    python bench/bench_sync.py                 # 100,000 rows per device
    python bench/bench_sync.py --rows 20000    # quick

Device A holds a demo database; device B starts as a copy of it and then changes 1 % of the rows
(updates through the API), deletes some and inserts some, so the two snapshots overlap almost
entirely but disagree on every kind of change. Reported:

* the pure merge (``merge_states`` of the two states, then ``materialize``, the view with the
  FK/UNIQUE rules) over both snapshots' rows;
* reading one snapshot from its folder (manifest, sha256 of every file, parse and validate every
  line);
* a whole ``sync`` round on A that takes in B's snapshot: read + verify, capture, merge, view,
  shrink guard, restore point, apply in one transaction, audit, and rewrite A's own folder.

The floor for reading is ``json.loads`` of every line of the same files (no verification).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BAKESTORE_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bakestore-bench-home"))

try:
    from ._common import peak_rss_mb, print_header, print_line, print_ratio, scratch_dir, timer
except ImportError:  # run as a script
    from _common import peak_rss_mb, print_header, print_line, print_ratio, scratch_dir, timer

from bakestore.demo import build_demo, scale_for_rows  # noqa: E402
from bakestore.store import Store  # noqa: E402
from bakestore.sync import materialize, merge_states, read_snapshot, sync  # noqa: E402

DEVICE_A = "a1" * 16
DEVICE_B = "b2" * 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per device (default 100,000)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print_header(f"bench_sync: merge two devices' {args.rows:,}-row snapshots")
    with scratch_dir(keep=args.keep) as tmp:
        a_path, b_path = tmp / "a" / "live.db", tmp / "b" / "live.db"
        a_path.parent.mkdir()
        b_path.parent.mkdir()
        counts = build_demo(a_path, scale=scale_for_rows(args.rows))
        shutil.copyfile(a_path, b_path)  # no connection is open: a plain copy is safe here
        total = sum(counts.values())
        folder_a, folder_b = tmp / "folder-a", tmp / "folder-b"
        folder_a.mkdir()
        folder_b.mkdir()
        with Store(a_path, device_id=DEVICE_A) as a, Store(b_path, device_id=DEVICE_B) as b:
            with timer() as first:
                sync(a, folder_a)
            print_line("A's first sync (capture+write)", first.seconds, total, "no other device yet")
            changed = max(1, total // 100)
            with timer() as edits:
                ids = [r["id"] for r in b.rows("inventory_depletions", limit=changed)]
                with b.write():
                    for row_id in ids:
                        b.update("inventory_depletions", row_id, {"notes": "changed on B"})
                    for row in list(b.rows("recipe_ingredients", limit=changed // 10)):
                        b.delete("recipe_ingredients", row["id"])
                    for i in range(changed // 10):
                        b.insert("suppliers", {"name": f"B supplier {i}", "slug": f"b-supplier-{i}"})
            print_line("B's edits through the API", edits.seconds, changed + 2 * (changed // 10))
            sync(b, folder_b)
            a_dir = folder_a / "bakestore-v1" / "devices" / DEVICE_A
            b_dir = folder_b / "bakestore-v1" / "devices" / DEVICE_B
            size = sum(p.stat().st_size for p in b_dir.rglob("*.ndjson"))
            with timer() as read_b:
                snap_b = read_snapshot(b_dir)
            print_line("read + verify B's snapshot", read_b.seconds, snap_b.state.row_count,
                       f"{size / 2**20:.0f} MiB of NDJSON")
            with timer() as floor:
                parsed = 0
                for path in sorted(b_dir.rglob("*.ndjson")):
                    with open(path, "rb") as handle:
                        for line in handle:
                            json.loads(line)
                            parsed += 1
            print_line("floor: json.loads per line", floor.seconds, parsed)
            print_ratio("read + verify vs floor", read_b.seconds, floor.seconds)
            snap_a = read_snapshot(a_dir)
            both = snap_a.state.row_count + snap_b.state.row_count
            with timer() as merged:
                state = merge_states(snap_a.state, snap_b.state)
            print_line("merge_states (pure)", merged.seconds, both, f"{state.row_count:,} rows in the result")
            with timer() as viewed:
                view = materialize(state)
            print_line("materialize (view + FK/UNIQUE)", viewed.seconds, state.row_count,
                       f"{len(view.resolutions)} resolution(s)")
            print_line("merge + view", merged.seconds + viewed.seconds, both)
            # The same folders, as one sync folder: A takes in B's snapshot in a real round.
            shutil.copytree(b_dir, a_dir.parent / DEVICE_B)
            with timer() as round_a:
                report = sync(a, folder_a)
            print_line("A's sync round taking in B", round_a.seconds, both,
                       f"{report.changed_rows:,} row changes applied in one transaction")
            assert report.diff["inventory_depletions"].changed == changed
        print(f"   peak RSS {peak_rss_mb():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
