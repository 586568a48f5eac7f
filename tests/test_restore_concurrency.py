"""Readers in other processes during repeated restores see the old or the new content, never a mix,
and get no errors.

A reader process loops over queries on the live file (Datasette-style ``mode=ro``): one statement
reading two tables and a checksum of one of them, and the same three reads as separate statements
inside one read transaction. Both must always match one of the two datasets exactly. The restores
alternate between the two datasets while the reader runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bakestore.clock import uuid7
from bakestore.registry import REGISTRY
from bakestore.store import Store, bulk_insert

from .conftest import DEVICE_A, DEVICE_B
from .test_exports import leftovers, populate_every_table

ROOT = Path(__file__).resolve().parent.parent

READER = """
import json, os, sys
from bakestore.sqlite import sqlite3
db, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0, isolation_level=None)
ONE = ("SELECT (SELECT count(*) FROM recipients), (SELECT count(*) FROM ingredients), "
       "(SELECT total(length(name)) + total(length(coalesce(notes, ''))) FROM recipients)")
seen, errors, queries = {}, [], 0
print("ready", flush=True)
while not os.path.exists(stop):
    try:
        if queries % 2:
            row = conn.execute(ONE).fetchone()
        else:
            conn.execute("BEGIN")
            a = conn.execute("SELECT count(*) FROM recipients").fetchone()[0]
            b = conn.execute("SELECT count(*) FROM ingredients").fetchone()[0]
            c = conn.execute("SELECT total(length(name)) + total(length(coalesce(notes, ''))) FROM recipients"
                             ).fetchone()[0]
            conn.execute("COMMIT")
            row = (a, b, c)
        key = json.dumps(list(row))
        seen[key] = seen.get(key, 0) + 1
    except sqlite3.Error as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    queries += 1
conn.close()
print(json.dumps({"seen": seen, "errors": errors[:20], "queries": queries}), flush=True)
"""


def _signature(store: Store) -> str:
    row = store.db.execute("SELECT (SELECT count(*) FROM recipients), (SELECT count(*) FROM ingredients), "
                           "(SELECT total(length(name)) + total(length(coalesce(notes, ''))) FROM recipients)"
                           ).fetchone()
    return json.dumps(list(row))


def test_readers_see_old_or_new_never_a_mix(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", device_id=DEVICE_A) as a:
        populate_every_table(a)
        a_export = a.export(tmp_path, name="a")
        a_signature = _signature(a)
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        populate_every_table(b, n=2, tag="b")
        now = b.now()
        with b.write():
            bulk_insert(b.db, REGISTRY["recipients"], (
                {"id": uuid7(), "created_at": now, "updated_at": now, "row_version": b.clock.now(),
                 "name": f"Recipient {i}", "notes": "x" * (i % 50)} for i in range(3000)))
        b_export = b.export(tmp_path, name="b")
        b_signature = _signature(b)
    assert a_signature != b_signature

    live = tmp_path / "live.db"
    stop = tmp_path / "stop"
    with Store(live, device_id=DEVICE_A) as store:
        store.restore(a_export.path)
        assert _signature(store) == a_signature
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        reader = subprocess.Popen([sys.executable, "-c", READER, str(live), str(stop)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
            durations = []
            for source in [b_export, a_export] * 3:
                started = time.monotonic()
                store.restore(source.path, allow_shrink=True)
                durations.append(time.monotonic() - started)
                time.sleep(0.05)
            assert _signature(store) == a_signature
        finally:
            stop.touch()
            out, err = reader.communicate(timeout=60)
    report = json.loads(out.strip().splitlines()[-1])
    print(f"reader: {report['queries']} queries, states {report['seen']}; restores took "
          f"{', '.join(f'{d:.2f}s' for d in durations)}")
    assert report["errors"] == [], report["errors"]
    assert set(report["seen"]) <= {a_signature, b_signature}, f"a reader saw a mix: {report['seen']}"
    assert set(report["seen"]) == {a_signature, b_signature}, "the reader should have seen both datasets"
    assert report["queries"] > 50
    assert leftovers(tmp_path) == []
