"""The parallel load of a large restore: a second process loads some tables into a part file,
which are then copied in. Same result, same refusals, same safety as loading in one process.

The size threshold is lowered to 0 here so that small test data takes the parallel path, and
the main process is told to leave chosen tables to the worker, so each test knows which process
loaded what (otherwise the main process may claim every table before the worker has started).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bakestore import restore
from bakestore.errors import ValidationError
from bakestore.exports import MANIFEST
from bakestore.store import Store

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint, processes_with
from .test_exports import export_bytes, leftovers, populate_every_table
from .test_restore_bad_sources import _edit_row

ROOT = Path(__file__).resolve().parent.parent
#: Tables the main process leaves to the worker in these tests (both have rows in every fixture).
WORKER_TABLES = {"recipes", "ingredients"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parallel")
    with Store(folder / "source.db", device_id=DEVICE_A) as store:
        counts = populate_every_table(store, n=2)
        assert all(counts[t] for t in WORKER_TABLES)
        return store.export(folder, name="export").path


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Force the parallel path; record every worker started; leave WORKER_TABLES to the worker."""
    started: list[Any] = []
    real_start = restore._LoadWorker.start.__func__  # type: ignore[attr-defined]

    def start(cls: Any, *args: Any, **kwargs: Any) -> Any:
        worker = real_start(cls, *args, **kwargs)
        started.append(worker)
        return worker

    real_claim = restore._LoadWorker.claim

    def claim(self: Any, table: str) -> bool:
        return table not in WORKER_TABLES and real_claim(self, table)

    monkeypatch.setattr(restore, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(restore._LoadWorker, "start", classmethod(start))
    monkeypatch.setattr(restore._LoadWorker, "claim", claim)
    return started


def _copy(folder: Path, target: Path) -> Path:
    target.mkdir()
    for path in folder.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_parallel_restore_is_byte_identical(source: Path, tmp_path: Path, workers: list[Any]) -> None:
    with Store(tmp_path / "live.db", device_id=DEVICE_B) as store:
        result = store.restore(source)
        again = store.export(tmp_path / "out", name="again")
    assert len(workers) == 1 and workers[0] is not None, "the parallel path was not taken"
    worker = workers[0]
    loaded_by_worker = {spec.name for spec in worker.order} - worker.mine
    assert WORKER_TABLES <= loaded_by_worker
    assert worker.proc.returncode == 0
    declared = {entry["name"]: entry["rows"] for entry in json.loads((source / MANIFEST).read_text())["tables"]}
    assert result.counts_after == declared
    a, b = export_bytes(source, tables_only=True), export_bytes(again.path, tables_only=True)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs after a parallel restore"
    assert leftovers(tmp_path) == []


def _refusal(source: Path, folder: Path) -> tuple[str, str | None, str | None]:
    live = folder / "live.db"
    with Store(live, device_id=DEVICE_B) as store:
        store.insert("recipients", {"name": "kept"})
        before = db_fingerprint(live)
        with pytest.raises(ValidationError) as info:
            store.restore(source)
        assert db_fingerprint(live) == before
    assert leftovers(folder) == []
    return str(info.value), info.value.field, info.value.record


def test_bad_row_in_the_workers_table_is_refused_like_in_one_process(
        source: Path, tmp_path: Path, workers: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _edit_row("recipes", 1, yield_quantity="twelve")(_copy(source, tmp_path / "bad"))
    (tmp_path / "parallel").mkdir()
    parallel = _refusal(bad, tmp_path / "parallel")
    assert workers and workers[0] is not None and "recipes" not in workers[0].mine
    monkeypatch.setattr(restore, "PARALLEL_MIN_ROWS", 10 ** 12)
    (tmp_path / "serial").mkdir()
    serial = _refusal(bad, tmp_path / "serial")
    assert len(workers) == 2 and workers[1] is None  # the second restore loaded in one process
    assert parallel == serial
    assert "recipes.ndjson:2" in parallel[0] and parallel[1] == "yield_quantity"


def test_a_worker_that_cannot_start_leaves_the_work_to_this_process(
        source: Path, tmp_path: Path, workers: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore.sys, "executable", str(tmp_path / "no-such-python"))
    with Store(tmp_path / "live.db", device_id=DEVICE_B) as store:
        store.restore(source)
        again = store.export(tmp_path / "out", name="again")
    assert workers == [None]
    assert export_bytes(source, tables_only=True) == export_bytes(again.path, tables_only=True)


def test_a_worker_that_dies_midway_leaves_its_tables_to_this_process(
        source: Path, tmp_path: Path, workers: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(restore.FAULT_ENV, "load-worker")  # the worker kills itself after one table
    with Store(tmp_path / "live.db", device_id=DEVICE_B) as store:
        store.restore(source)
        again = store.export(tmp_path / "out", name="again")
    assert workers and workers[0] is not None
    assert workers[0].proc.returncode == -signal.SIGKILL
    assert export_bytes(source, tables_only=True) == export_bytes(again.path, tables_only=True)
    assert leftovers(tmp_path) == []


KILLED_PARENT = """
import sys
from bakestore import restore
from bakestore.store import Store
restore.PARALLEL_MIN_ROWS = 0
with Store(sys.argv[1], device_id="c" * 32) as store:
    store.restore(sys.argv[2])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_dies_with_its_parent_and_the_next_run_sweeps_its_files(source: Path, tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    with Store(live, device_id=DEVICE_B) as store:
        store.insert("recipients", {"name": "kept"})
    before = db_fingerprint(live)
    marker = f"BAKESTORE_TEST_MARKER={uuid.uuid4().hex}"
    env = {**os.environ, restore.FAULT_ENV: "after-worker-start", marker.split("=")[0]: marker.split("=")[1],
           "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", KILLED_PARENT, str(live), str(source)], env=env, cwd=ROOT,
                           capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == [], "the load worker outlived the restore that started it"
    assert leftovers(tmp_path), "expected the killed run's fresh file"
    after = db_fingerprint(live)
    # The killed process had the store open: it may leave an empty -wal, nothing else.
    assert after["db"] == before["db"] and after["-wal"] in (None, hashlib.sha256(b"").hexdigest())
    with Store(live, device_id=DEVICE_B) as store:
        store.restore(source)  # sweeps what the killed run left (fresh, part and claim files)
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- the split check of a built file


def test_the_split_check_covers_every_table_once() -> None:
    from bakestore.registry import REGISTRY

    counts = {spec.name: (i * 37) % 1000 for i, spec in enumerate(REGISTRY)}
    mine, others = restore._split_tables(REGISTRY, counts)
    assert sorted(mine + others) == sorted(spec.name for spec in REGISTRY)
    assert mine and others


def _stale_index_db(path: Path) -> None:
    """A table whose index entries no longer match its rows (the index's definition rewritten
    by hand: the stored entries are of name, the schema now says upper(name))."""
    from bakestore.sqlite import sqlite3

    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    conn.execute("CREATE INDEX t_name ON t(name)")
    conn.executemany("INSERT INTO t(name) VALUES (?)", [(f"n{i}",) for i in range(500)])
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX t_name ON t(upper(name))' WHERE name = 't_name'")
    conn.close()


def test_the_split_check_finds_an_index_that_does_not_match_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "stale.db"
    _stale_index_db(path)
    assert restore._integrity_of_tables(path, [], whole_file=True) == ["ok"]  # quick_check cannot see it
    assert restore._integrity_of_tables(path, ["t"]) != ["ok"]  # the per-table check does


def test_the_split_check_finds_a_damaged_page(tmp_path: Path) -> None:
    from bakestore.sqlite import sqlite3

    path = tmp_path / "damaged.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO t(body) VALUES (?)", [("x" * 300,) for _ in range(2000)])
    conn.close()
    with open(path, "r+b") as handle:
        handle.seek(4096 * 5)
        handle.write(b"\x0d\xff\xff\xff" * 1024)  # a leaf page with nonsense cell pointers
    assert restore._integrity_of_tables(path, ["t"], whole_file=True) != ["ok"]


def test_a_bakestore_in_the_current_folder_is_not_what_the_worker_runs(
        source: Path, tmp_path: Path, workers: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m`` would put the current folder first on the path: a ``bakestore/`` there
    (a checkout, or worse) must not become the worker that checks half the rows."""
    shadow = tmp_path / "cwd" / "bakestore"
    shadow.mkdir(parents=True)
    marker = tmp_path / "shadow-ran"
    (shadow / "__init__.py").write_text("")
    (shadow / "loadworker.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef main():\n    return 0\n")
    monkeypatch.chdir(shadow.parent)
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    with Store(tmp_path / "live.db", device_id=DEVICE_B) as store:
        store.restore(source)
        again = store.export(tmp_path / "out", name="again")
    assert not marker.exists()
    assert workers and workers[0] is not None and workers[0].proc.returncode == 0
    assert WORKER_TABLES <= {spec.name for spec in workers[0].order} - workers[0].mine
    assert export_bytes(source, tables_only=True) == export_bytes(again.path, tables_only=True)
