"""Restore (and reset, and the verified undo) swap the checked fresh file in by rename when nobody
else has the database open: the old live file becomes the restore point (a hard link, no copy),
checked as a restore point is. Otherwise the restore point is a copy and the backup API swaps.
Either way the content is the same; only the speed differs.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from bakestore import audit, fileswap, restore
from bakestore.registry import REGISTRY
from bakestore.store import Store

from .conftest import DEVICE_A, assert_live_in_wal_and_intact, db_fingerprint
from .test_exports import export_bytes, leftovers, populate_every_table
from .test_undo_by_rename import OTHER_PROCESSES

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the rename swap is Linux-only")


def _tables(store: Store, folder: Path, name: str) -> dict[str, bytes]:
    return export_bytes(store.export(folder, name=name).path, tables_only=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, Path, dict[str, bytes], dict[str, bytes]]]:
    """(live store, an export of other content, the live content, the other content)."""
    with Store(tmp_path / "other.db", device_id=DEVICE_A) as other:
        populate_every_table(other, tag="other")
        source = other.export(tmp_path / "src", name="other").path
        other_tables = _tables(other, tmp_path / "x", "other")
    store = Store(tmp_path / "live.db", device_id=DEVICE_A)
    try:
        populate_every_table(store)
        yield store, source, _tables(store, tmp_path / "x", "live"), other_tables
    finally:
        store.close()


def _last(store: Store, operation: str) -> dict[str, Any]:
    return next(r for r in audit.read(store.path) if r["operation"] == operation)


def test_restore_alone_swaps_by_rename_and_keeps_the_old_file_as_the_restore_point(world: Any, tmp_path: Path) -> None:
    store, source, live_tables, other_tables = world
    os.chmod(store.path, 0o600)  # the user's permissions survive the swap
    old_inode = os.stat(store.path).st_ino
    result = store.restore(source, allow_shrink=True)
    assert _tables(store, tmp_path / "x", "restored") == other_tables
    record = _last(store, "restore")
    assert (record["outcome"], record["details"]["swap"]) == ("done", "rename-built")
    point = result.restore_point
    assert point is not None and record["restore_point"] == str(point)
    assert os.stat(point).st_ino == old_inode  # the old live file itself, not a copy
    assert os.stat(store.path).st_ino != old_inode and os.stat(point).st_nlink == 1
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    sidecar = restore._read_sidecar(point)
    assert sidecar is not None and sidecar["checked"] == "quick_check" and len(sidecar["sha256"]) == 64
    assert_live_in_wal_and_intact(store.path)
    assert leftovers(tmp_path) == []
    # Its restore point is checked like a copied one: the undo is the fast one, and exact.
    store.undo()
    assert _last(store, "undo")["details"]["swap"] == "rename"
    assert _tables(store, tmp_path / "x", "undone") == live_tables


@pytest.mark.parametrize("other", sorted(OTHER_PROCESSES))
def test_another_process_with_the_file_open_means_a_copied_restore_point_and_the_backup_api(
        world: Any, tmp_path: Path, other: str) -> None:
    store, source, live_tables, other_tables = world
    process = subprocess.Popen([sys.executable, "-c", OTHER_PROCESSES[other], str(store.path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        inode = os.stat(store.path).st_ino
        result = store.restore(source, allow_shrink=True)
        assert "swap" not in _last(store, "restore")["details"]
        assert os.stat(store.path).st_ino == inode  # the same file, its content replaced
        assert result.restore_point is not None and os.stat(result.restore_point).st_ino != inode
    finally:
        process.kill()
        process.wait()
    assert _tables(store, tmp_path / "x", "restored") == other_tables


def test_a_late_opener_makes_the_rename_go_back_and_the_backup_api_swaps(
        world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, source, _, other_tables = world
    real = fileswap.processes_holding
    live_file = (os.stat(store.path).st_dev, os.stat(store.path).st_ino)
    calls = {"after": 0}

    def late_holder(identities: set[tuple[int, int]]) -> set[int] | None:
        # Once the old live file has a second name (the rename happened), somebody holds it.
        if live_file in identities and os.stat(restore.restore_point_dir(store.path)).st_nlink >= 2:
            points = [p for p in restore.restore_point_dir(store.path).glob("*.db")
                      if (os.stat(p).st_dev, os.stat(p).st_ino) == live_file]
            if points:
                calls["after"] += 1
                return {999_999}
        return real(identities)

    monkeypatch.setattr(fileswap, "processes_holding", late_holder)
    result = store.restore(source, allow_shrink=True)
    assert calls["after"] >= 1
    record = _last(store, "restore")
    assert record["outcome"] == "done" and "swap" not in record["details"]
    assert result.restore_point is not None and os.stat(result.restore_point).st_ino != live_file[1]
    assert os.stat(store.path).st_ino == live_file[1]  # put back, then swapped by the backup API
    assert _tables(store, tmp_path / "x", "restored") == other_tables
    assert leftovers(tmp_path) == []


def test_a_refused_reset_changes_nothing_and_an_allowed_one_swaps_by_rename(world: Any, tmp_path: Path) -> None:
    store, _, live_tables, _ = world
    before = db_fingerprint(store.path)
    with pytest.raises(restore.ShrinkRefusedError):
        store.reset()  # refused before any swap
    assert db_fingerprint(store.path) == before
    store.reset(allow_shrink=True)
    assert _last(store, "reset")["details"]["swap"] == "rename-built"
    seeds = {spec.name for spec in REGISTRY.seed_tables} | {"_bakestore_meta"}
    assert all(n == 0 for t, n in store.counts().items() if t not in seeds)
    store.undo()
    assert _tables(store, tmp_path / "x", "back") == live_tables


def test_a_symlinked_database_path_is_never_replaced_by_a_rename(tmp_path: Path) -> None:
    """The rename would put a plain file where the link is, leaving the link's target (which the
    UI opens, resolved) with the old content and the restore point as a copy of the link."""
    with Store(tmp_path / "other.db", device_id=DEVICE_A) as other:
        populate_every_table(other, tag="other")
        source = other.export(tmp_path / "src", name="other").path
        other_tables = _tables(other, tmp_path / "x", "other")
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.db"
    with Store(real, device_id=DEVICE_A) as store:
        populate_every_table(store)
        live_tables = _tables(store, tmp_path / "x", "live")
    link = tmp_path / "live.db"
    link.symlink_to(real)
    with Store(link, device_id=DEVICE_A) as store:
        store.restore(source, allow_shrink=True)
        assert "swap" not in _last(store, "restore")["details"]
        assert link.is_symlink()
        assert store.restore_points()  # found, so the undo works
        store.undo()
        assert _tables(store, tmp_path / "x", "undone") == live_tables
    with Store(real, device_id=DEVICE_A) as store:  # the target got the content, not a new file
        assert _tables(store, tmp_path / "x", "real") == live_tables
        store.restore(source, allow_shrink=True)
    with Store(link, device_id=DEVICE_A) as store:
        assert _tables(store, tmp_path / "x", "via-link") == other_tables


def test_a_database_with_a_second_name_is_never_replaced_by_a_rename(world: Any, tmp_path: Path) -> None:
    store, source, _, other_tables = world
    alias = tmp_path / "alias.db"
    os.link(store.path, alias)
    store.restore(source, allow_shrink=True)
    assert "swap" not in _last(store, "restore")["details"]
    assert os.stat(alias).st_ino == os.stat(store.path).st_ino  # both names still see one file
    assert _tables(store, tmp_path / "x", "restored") == other_tables


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to give a file to another user")
def test_the_live_files_owner_and_group_are_kept(world: Any, tmp_path: Path) -> None:
    """A restore run with sudo (or by another member of a household group) must not lock the
    owner out of the file."""
    store, source, _, other_tables = world
    os.chown(store.path, 1000, 2000)
    os.chmod(store.path, 0o660)
    store.restore(source, allow_shrink=True)
    assert _last(store, "restore")["details"]["swap"] == "rename-built"
    info = os.stat(store.path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 2000, 0o660)
    assert _tables(store, tmp_path / "x", "restored") == other_tables


def test_restore_points_elsewhere_mean_the_backup_api_not_a_failure(world: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore-points folder on another filesystem (or hard links refused there): the link
    fails, nothing has changed, and the copied restore point and the backup API do the restore."""
    store, source, _, other_tables = world
    real_link = os.link

    def cross_device(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(restore.restore_point_dir(store.path))):
            raise OSError(18, "Invalid cross-device link")
        real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", cross_device)
    result = store.restore(source, allow_shrink=True)
    record = _last(store, "restore")
    assert record["outcome"] == "done" and "swap" not in record["details"]
    assert result.restore_point is not None and result.restore_point.exists()
    assert _tables(store, tmp_path / "x", "restored") == other_tables
    assert leftovers(tmp_path) == []


def test_the_fresh_file_reaches_the_disk_before_any_name_points_at_it(world: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store, source, _, _ = world
    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(dst) == str(store.path):
            events.append(("rename", os.stat(src).st_ino))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.restore(source, allow_shrink=True)
    renamed = [ino for kind, ino in events if kind == "rename"]
    assert len(renamed) == 1
    assert ("fsync", renamed[0]) in events[:events.index(("rename", renamed[0]))]
