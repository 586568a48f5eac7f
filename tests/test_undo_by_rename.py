"""The fast undo: a restore point checked at creation and unchanged since becomes the live file by
rename — only when nobody else has the database open — and otherwise the verified backup-API
undo runs. Either way the result is the same content; only the speed differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from bakestore import audit, fileswap, restore
from bakestore.sqlite import sqlite3
from bakestore.store import Store

from .conftest import DEVICE_A, assert_live_in_wal_and_intact, db_fingerprint
from .test_exports import export_bytes, leftovers, populate_every_table

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the rename swap is Linux-only")


def _tables(store: Store, folder: Path, name: str) -> dict[str, bytes]:
    return export_bytes(store.export(folder, name=name).path, tables_only=True)


@pytest.fixture
def changed(tmp_path: Path) -> Iterator[tuple[Store, dict[str, bytes], dict[str, bytes]]]:
    """A store restored from an export of a *different* state, so undo has something to undo.
    Yields (store, content before the restore, content after it)."""
    with Store(tmp_path / "other.db", device_id=DEVICE_A) as other:
        populate_every_table(other, tag="other")
        source = other.export(tmp_path / "src", name="other").path
    store = Store(tmp_path / "live.db", device_id=DEVICE_A)
    try:
        populate_every_table(store)
        before = _tables(store, tmp_path / "x", "before")
        store.restore(source, allow_shrink=True)
        after = _tables(store, tmp_path / "x", "after")
        assert before != after
        yield store, before, after
    finally:
        store.close()


def _last_undo(store: Store) -> dict[str, Any]:
    return next(r for r in audit.read(store.path) if r["operation"] == "undo")


def test_undo_swaps_by_rename_when_alone(changed: Any, tmp_path: Path) -> None:
    store, before, after = changed
    point = store.restore_points()[0]
    result = store.undo()
    assert _tables(store, tmp_path / "x", "undone") == before
    record = _last_undo(store)
    assert (record["outcome"], record["details"]["swap"]) == ("done", "rename")
    assert record["counts_before"] and record["counts_after"]
    assert record["source_sha256"] and len(record["source_sha256"]) == 64
    # The restore point became the live file; the old live file is the new restore point.
    assert not point.exists() and result.restore_point is not None and result.restore_point.exists()
    assert result.restore_point != point
    assert any("fast undo" in note for note in result.notes)
    assert all(d.added is None for d in result.diff.values())  # counts only, said so
    assert_live_in_wal_and_intact(store.path)
    assert leftovers(tmp_path) == []
    # The undo is undoable: its restore point (not checked as a copy) takes the verified path.
    store.undo()
    assert _tables(store, tmp_path / "x", "redone") == after
    assert _last_undo(store)["details"].get("swap") != "rename"


#: A reader that has read once (holds a shared lock), and a process that merely has the file
#: open (no lock at all: only /proc can see it). Each prints a word when it is in place.
OTHER_PROCESSES = {
    "reader": """
import sys, time
from bakestore.sqlite import sqlite3
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM recipes").fetchone()
print("ready", flush=True)
time.sleep(60)
""",
    "opener": """
import sys, time
handle = open(sys.argv[1], "rb")  # open, never read through SQLite: holds no lock
print("ready", flush=True)
time.sleep(60)
""",
}


@pytest.mark.parametrize("other", sorted(OTHER_PROCESSES))
def test_another_process_with_the_file_open_means_the_verified_path(changed: Any, tmp_path: Path,
                                                                   other: str) -> None:
    store, before, _ = changed
    process = subprocess.Popen([sys.executable, "-c", OTHER_PROCESSES[other], str(store.path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        store.undo()
        assert _last_undo(store)["details"].get("swap") != "rename"  # the backup-API swap
    finally:
        process.kill()
        process.wait()
    assert _tables(store, tmp_path / "x", "undone") == before


def test_a_restore_point_changed_since_its_check_takes_the_verified_path(changed: Any, tmp_path: Path) -> None:
    store, before, _ = changed
    point = store.restore_points()[0]
    os.utime(point, ns=(time.time_ns(), time.time_ns() - 10 ** 9))  # same bytes, but no longer provably
    store.undo()
    assert _last_undo(store)["details"].get("swap") != "rename"
    assert _tables(store, tmp_path / "x", "undone") == before


def test_a_damaged_restore_point_is_refused_not_swapped_in(changed: Any, tmp_path: Path) -> None:
    store, _, after = changed
    point = store.restore_points()[0]
    with open(point, "r+b") as handle:
        handle.seek(4096)  # page 2: a b-tree page of some table, now garbage
        handle.write(b"\xff" * 4096)
    before = db_fingerprint(store.path)
    with pytest.raises(restore.BakestoreError):
        store.undo()
    assert db_fingerprint(store.path)["db"] == before["db"]
    assert _tables(store, tmp_path / "x", "kept") == after


@pytest.mark.parametrize("why", ["nfs", "turned-off"])
def test_not_a_local_filesystem_or_turned_off_means_the_verified_path(
        changed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    store, before, _ = changed
    if why == "nfs":
        monkeypatch.setattr(fileswap, "filesystem_type", lambda path: "nfs4")
    else:
        monkeypatch.setenv(fileswap.DISABLE_ENV, "1")
    store.undo()
    assert _last_undo(store)["details"].get("swap") != "rename"
    assert _tables(store, tmp_path / "x", "undone") == before


def test_a_late_opener_makes_the_rename_go_back(changed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Somebody opens the old file between the check and the rename: the rename is reversed
    (nothing changed, the record says so), then the verified path does the undo."""
    store, before, _ = changed
    point = store.restore_points()[0]
    real = fileswap.processes_holding
    live_file = (os.stat(store.path).st_dev, os.stat(store.path).st_ino)

    def late_holder(identities: set[tuple[int, int]]) -> set[int] | None:
        # After the rename (the restore point's name is gone), somebody holds the old live file.
        if not point.exists() and live_file in identities:
            return {999_999}
        return real(identities)

    monkeypatch.setattr(fileswap, "processes_holding", late_holder)
    store.undo()
    records = [r for r in audit.read(store.path, limit=2)]
    assert [(r["operation"], r["outcome"]) for r in records] == [("undo", "done"), ("undo", "superseded")]
    assert "reversed" in records[1]["reason"] and records[0]["details"].get("swap") != "rename"
    assert records[0]["details"]["restore_point_used"] == str(point)
    assert _tables(store, tmp_path / "x", "undone") == before
    assert leftovers(tmp_path) == []


UNDO_CHILD = """
import os, signal, sys
from bakestore.store import Store
live = sys.argv[1]
if os.environ.get("KILL_AT_RENAME"):
    real_replace = os.replace
    def replace(src, dst):
        if str(dst) == live:  # the live file is linked under its restore-point name; die before the rename
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace
with Store(live, device_id="c" * 32) as store:
    store.undo()
"""


@pytest.mark.parametrize("step, expected", [("before-rename-swap", "old"), ("between-link-and-rename", "old"),
                                            ("after-rename-swap", "new")])
def test_killed_fast_undo_leaves_old_or_new_and_no_stray_restore_point(
        changed: Any, tmp_path: Path, step: str, expected: str) -> None:
    store, before, after = changed
    point = store.restore_points()[0]
    store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), restore.FAULT_ENV: step}
    if step == "between-link-and-rename":
        env["KILL_AT_RENAME"] = "1"
    child = subprocess.run([sys.executable, "-c", UNDO_CHILD, str(store.path)], env=env, cwd=ROOT, timeout=60)
    assert child.returncode == -signal.SIGKILL
    live = store.path
    # Never is the live file itself listed as a restore point (a killed run's hard link).
    live_inode = os.stat(live).st_ino
    assert all(os.stat(p).st_ino != live_inode for p in restore.list_restore_points(live))
    if step == "between-link-and-rename":
        assert any(os.stat(p).st_ino == live_inode for p in restore.restore_point_dir(live).glob("*.db"))
    with Store(live, device_id=DEVICE_A) as again:
        assert _tables(again, tmp_path / "x", "after-kill") == (after if expected == "old" else before)
        again.export(tmp_path / "y", name="any")  # an operation sweeps what the killed run left
        if expected == "old":
            again.undo()  # the point is intact (only its meta was stamped): undo still works
            assert _tables(again, tmp_path / "x", "finally") == before
        else:
            assert not point.exists()
    with Store(live, device_id=DEVICE_A) as again:
        again.restore(again.restore_points()[-1], allow_shrink=True)  # any operation sweeps leftovers
    assert leftovers(tmp_path) == []
    folder = restore.restore_point_dir(live)
    assert all(os.stat(p).st_ino != os.stat(live).st_ino for p in folder.glob("*.db")), \
        "a hard link of the live file was left under a restore-point name"


def test_a_connection_of_this_process_that_has_not_read_yet_means_the_verified_path(
        changed: Any, tmp_path: Path) -> None:
    """Such a connection holds no lock, and /proc of *other* processes does not show it: the
    swap would leave it on the old file with the new file's -wal (found in review)."""
    store, before, _ = changed
    idle = sqlite3.connect(store.path)  # opened, never read
    try:
        store.undo()
        assert _last_undo(store)["details"].get("swap") != "rename"
        with store.write():
            for i in range(40):
                store.insert("recipients", {"name": f"after {i}"})
        assert idle.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    finally:
        idle.close()
    assert store.count("recipients") >= 40


def test_a_restore_point_whose_bytes_rotted_under_unchanged_metadata_takes_the_verified_path(
        changed: Any, tmp_path: Path) -> None:
    """Damage that leaves inode, size and times alone (a failing disk) is caught by the chunk
    hashes recorded at the check; the verified path then refuses the damaged point."""
    store, _, after = changed
    point = store.restore_points()[0]
    with open(point, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 4096)
    # What a failing disk would look like: the record's identity still matches the file.
    sidecar = restore._sidecar(point)
    data = json.loads(sidecar.read_text())
    data["identity"] = restore._file_identity(point)
    sidecar.write_text(json.dumps(data))
    live_before = db_fingerprint(store.path)["db"]
    with pytest.raises(restore.BakestoreError):
        store.undo()
    assert db_fingerprint(store.path)["db"] == live_before
    assert _tables(store, tmp_path / "x", "kept") == after


def test_a_failure_after_the_rename_is_reported_as_done_not_as_nothing_changed(
        changed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, before, _ = changed
    real = restore._read_meta

    def broken(path: Path, key: str) -> str | None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(restore, "_read_meta", broken)
    with pytest.raises(restore.RestoreError) as info:
        store.undo()
    message = str(info.value)
    assert message.startswith("undo done:") and "not changed" not in message
    assert "restore point" in message
    monkeypatch.setattr(restore, "_read_meta", real)
    assert _tables(store, tmp_path / "x", "undone") == before  # it did happen
