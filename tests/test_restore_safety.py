"""Review findings turned into tests: the swap's deadline, audit-first, writers vs the swap,
refused merges, and tombstones that cascade."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bakestore import audit, restore
from bakestore.errors import LockedError, RestoreError, ValidationError
from bakestore.store import Store, exclusive_writes

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint


@pytest.fixture
def populated(tmp_path: Path) -> Store:
    store = Store(tmp_path / "live.db", device_id=DEVICE_A)
    flour = store.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    store.insert("products", {"ingredient_id": flour["id"], "package_unit": "lb", "package_unit_quantity": 5.0})
    store.insert_many("recipients", [{"name": f"R{i}"} for i in range(10)])
    yield store
    store.close()


def test_a_swap_that_finished_is_never_reported_as_timed_out(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path / "e")
    with Store(tmp_path / "fresh.db", device_id=DEVICE_B) as other:
        other.insert("recipients", {"name": "only in the fresh file"})
    # A deadline that has passed before the copy even starts: the single step still completes,
    # and completion must not be turned into "timed out; nothing was changed".
    restore.swap_in(tmp_path / "fresh.db", populated.path, timeout=0)
    names = {r["name"] for r in populated.rows("recipients")}
    assert names == {"only in the fresh file"}
    assert exported  # the export folder is unaffected


def test_an_unwritable_audit_log_refuses_before_anything_changes(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path / "e")
    populated.insert("recipients", {"name": "after the export"})
    populated.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    audit_file = audit.audit_path_for(populated.path)
    audit_file.unlink(missing_ok=True)
    audit_file.mkdir()  # a folder where the audit database should be: it cannot be opened
    before = db_fingerprint(populated.path)
    with pytest.raises(RestoreError, match="not changed"):
        populated.restore(exported.path, allow_shrink=True)
    assert db_fingerprint(populated.path) == before
    assert not populated.restore_points()


def test_api_writers_wait_while_a_swap_holds_exclusive_writes(populated: Store) -> None:
    started = threading.Event()
    done: list[float] = []

    def writer() -> None:
        started.set()
        with Store(populated.path, device_id=DEVICE_B) as other:
            other.insert("recipients", {"name": "waited"})
        done.append(time.monotonic())

    with exclusive_writes(populated.path):
        thread = threading.Thread(target=writer)
        thread.start()
        started.wait(5)
        time.sleep(0.3)
        assert not done  # blocked while the swap window is held
        released = time.monotonic()
    thread.join(10)
    assert done and done[0] >= released
    assert any(r["name"] == "waited" for r in populated.rows("recipients"))


def test_a_writer_gives_up_with_a_clear_error(populated: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import bakestore.store as store_module

    monkeypatch.setattr(store_module, "WRITE_LOCK_TIMEOUT_S", 0.2)
    with exclusive_writes(populated.path):
        with pytest.raises(LockedError, match="restore is swapping"):
            populated.insert("recipients", {"name": "too late"})


def test_a_refused_merge_leaves_no_restore_point(populated: Store, tmp_path: Path) -> None:
    with Store(tmp_path / "other.db", device_id=DEVICE_B) as other:
        # Same slug, different id: the merge clashes with the store's row and is refused.
        other.insert("ingredients", {"display_name": "Flour (other)", "slug": "flour", "category": "Flour"})
        source = other.export(tmp_path / "e").path
    before = populated.restore_points()
    with pytest.raises(ValidationError):
        populated.merge(source)
    assert populated.restore_points() == before


def test_merged_tombstones_cascade_with_tombstones_of_their_own(populated: Store, tmp_path: Path) -> None:
    snapshot = populated.export(tmp_path / "base", name="base").path
    with Store(tmp_path / "device_b.db", device_id=DEVICE_B) as other:
        other.restore(snapshot)
        other.delete("ingredients", "flour")  # cascades to the product on device B
        source = other.export(tmp_path / "b").path
    product_id = next(populated.rows("products"))["id"]
    # Device B's export carries tombstones for both; remove the product's to prove that the
    # merge itself applies the ON DELETE rule and records what it removed.
    import json

    tomb_file = source / "_tombstones.ndjson"
    lines = [line for line in tomb_file.read_text(encoding="utf-8").splitlines()
             if json.loads(line)["table_name"] != "products"]
    trimmed = tmp_path / "trimmed"
    from bakestore.exports import ExportFolderSource
    from bakestore.sources import MemorySource

    folder = ExportFolderSource(source)
    folder.verify()
    rows = {t: [r for _, r in folder.iter_rows(t)] for t in folder.tables()}
    rows["_tombstones"] = [json.loads(line) for line in lines]
    populated.merge(MemorySource(label=str(trimmed), rows_by_table=rows), allow_shrink=True)
    assert populated.count("products") == 0 and populated.count("ingredients") == 0
    tombstoned = {(r["table_name"], r["row_id"]) for r in populated.rows("_tombstones")}
    assert ("products", product_id) in tombstoned


def test_undo_refuses_when_a_newer_restore_point_appeared(populated: Store, tmp_path: Path) -> None:
    from bakestore.errors import SourceError

    exported = populated.export(tmp_path / "e")
    populated.restore(exported.path)
    previewed = populated.restore_points()[0]
    populated.restore(exported.path)  # someone else restored meanwhile: a newer point exists
    before = db_fingerprint(populated.path)
    with pytest.raises(SourceError, match="not the previewed"):
        populated.undo(expected_point=previewed)
    assert db_fingerprint(populated.path) == before
    assert populated.undo(expected_point=populated.restore_points()[0]).operation == "undo"


@pytest.mark.parametrize("suffix", ["-wal", "-shm", ".audit.db"])
def test_the_live_databases_own_files_are_never_read_as_a_source(populated: Store, suffix: str) -> None:
    # Reading them with plain I/O in this process would drop our SQLite locks (posix_close_bug).
    populated.restore_points()
    populated.db.execute("SELECT count(*) FROM recipients").fetchone()  # -wal/-shm exist now
    from bakestore import audit as _audit
    from bakestore.errors import SourceError

    _audit.write(populated.path, _audit.AuditRecord(operation="test", db_path=str(populated.path), outcome="done"))
    target = Path(f"{populated.path}{suffix}")
    assert target.exists()
    with pytest.raises(SourceError, match="live database's own files"):
        populated.restore(target)


def test_import_legacy_refuses_the_live_databases_own_files(populated: Store) -> None:
    from bakestore.errors import SourceError
    from bakestore.legacy import prepare

    populated.db.execute("SELECT 1").fetchone()
    with pytest.raises(SourceError, match="live database's own files"):
        prepare(populated, Path(f"{populated.path}-shm"))


def test_checking_a_restore_point_closes_no_descriptor_of_it_while_its_connection_is_open(
        populated: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it
    (sqlite-facts A1): the hash that runs beside quick_check must not close one mid-check."""
    import os

    point = restore.make_restore_point(populated.path, "probe")
    inode = os.stat(point).st_ino
    open_connections = [0]
    violations: list[str] = []
    real_connect, real_close = restore.sqlite3.connect, os.close

    class Tracked:
        def __init__(self, conn: object) -> None:
            self.conn = conn
            open_connections[0] += 1

        def execute(self, *args: object) -> object:
            return self.conn.execute(*args)  # type: ignore[attr-defined]

        def close(self) -> None:
            self.conn.close()  # type: ignore[attr-defined]
            open_connections[0] -= 1

    def connect(database: object, *args: object, **kwargs: object) -> object:
        conn = real_connect(database, *args, **kwargs)
        return Tracked(conn) if "restore-points" in str(database) else conn

    def close(fd: int) -> None:
        try:
            same = os.fstat(fd).st_ino == inode
        except OSError:
            same = False
        if same and open_connections[0]:
            violations.append(f"fd {fd} closed while a connection to the restore point was open")
        real_close(fd)

    import builtins

    real_open = builtins.open

    class TrackedFile:  # a file object whose close is checked the same way
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> "TrackedFile":
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def close(self) -> None:
            if os.fstat(self.handle.fileno()).st_ino == inode and open_connections[0]:
                violations.append("a file object of it closed while a connection to it was open")
            self.handle.close()

    def tracked_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, *args, **kwargs)
        return TrackedFile(handle) if "restore-points" in str(file) else handle

    monkeypatch.setattr(restore.sqlite3, "connect", connect)
    monkeypatch.setattr(os, "close", close)
    monkeypatch.setattr(builtins, "open", tracked_open)
    assert restore._check_restore_point(point) is None
    assert violations == [] and open_connections[0] == 0
    assert restore._read_sidecar(point)["checked"] == "quick_check"
