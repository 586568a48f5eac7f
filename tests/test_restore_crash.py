"""Crash safety: a restore killed at any point leaves the live database whole, with exactly the old
or exactly the new content; a full disk mid-restore or mid-export is a clean one-line error.

The restore runs in a child process (``sys.executable -c``). It is killed with SIGKILL by the
fault hook (``BAKESTORE_FAULT=<step>``) at every step of the pipeline, and by the test at random
moments. Afterwards the test opens the database (which recovers any ``-wal`` the child left),
runs ``integrity_check`` and compares an export of it with exports of the old and new content.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bakestore import audit, fileswap, restore
from bakestore.clock import uuid7
from bakestore.registry import REGISTRY
from bakestore.sqlite import sqlite3
from bakestore.store import Store, bulk_insert

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint
from .test_exports import export_bytes, leftovers, populate_every_table

ROOT = Path(__file__).resolve().parent.parent
#: Steps of the backup-API swap (taken when a rename cannot be proven safe; forced here with
#: fileswap.DISABLE_ENV) and of the rename swap (taken when nobody else has the file open).
FAULT_STEPS = ["after-verify", "after-build", "after-restore-point", "before-swap", "after-swap", "after-checkpoint",
               "before-rename-swap-in", "after-rename-swap-in"]
EXPECTED_AFTER_KILL = {"after-verify": "old", "after-build": "old", "after-restore-point": "old",
                       "before-swap": "old", "after-swap": "new", "after-checkpoint": "new",
                       "before-rename-swap-in": "old", "after-rename-swap-in": "new"}
RENAME_STEPS = {"after-verify", "after-build", "before-rename-swap-in", "after-rename-swap-in"}

RESTORE_CHILD = """
import sys
from bakestore.store import Store
with Store(sys.argv[1], device_id="c" * 32) as store:
    print("ready", flush=True)
    store.restore(sys.argv[2])
print("done", flush=True)
"""

LIMITED_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
from bakestore.errors import BakestoreError
from bakestore.store import Store
live, action, target, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Store(live, device_id="c" * 32) as store:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        if action == "restore":
            store.restore(target)
        else:
            store.export(target, name="e")
    except BakestoreError as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
        sys.exit(3)
print("no error", flush=True)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An old database and export, and a larger new export to restore over it."""
    folder = tmp_path_factory.mktemp("crash-world")
    with Store(folder / "old.db", device_id=DEVICE_A) as old:
        populate_every_table(old)
        old_export = old.export(folder, name="old")
    with Store(folder / "new.db", device_id=DEVICE_B) as new:
        populate_every_table(new, n=2, tag="new")
        now = new.now()
        with new.write():
            bulk_insert(new.db, REGISTRY["recipients"], (
                {"id": uuid7(), "created_at": now, "updated_at": now, "row_version": new.clock.now(),
                 "name": f"Recipient {i}", "household_name": "The Bakers", "address": f"{i} Oven Lane",
                 "notes": "Likes ginger snaps. " * 20} for i in range(6000)))
        new_export = new.export(folder, name="new")
    return {"folder": folder, "old_db": folder / "old.db", "old": export_bytes(old_export.path, tables_only=True),
            "new_export": new_export.path, "new": export_bytes(new_export.path, tables_only=True)}


def _env(tmp_path: Path, fault: str | None = None, *, rename: bool = True) -> dict[str, str]:
    env = {**os.environ, "BAKESTORE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop(restore.FAULT_ENV, None)
    env.pop(fileswap.DISABLE_ENV, None)
    if fault:
        env[restore.FAULT_ENV] = fault
    if not rename:
        env[fileswap.DISABLE_ENV] = "1"
    return env


def _content(live: Path, tmp_path: Path, world: dict[str, object]) -> str:
    """'old' or 'new' (or 'other'), after checking the file opens and passes integrity_check."""
    conn = sqlite3.connect(live)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    folder = tmp_path / f"check-{time.monotonic_ns()}"
    with Store(live, device_id=DEVICE_A) as store:
        tables = export_bytes(store.export(folder, name="x").path, tables_only=True)
    shutil.rmtree(folder)
    return "old" if tables == world["old"] else "new" if tables == world["new"] else "other"


def _fresh_live(tmp_path: Path, world: dict[str, object]) -> Path:
    live = tmp_path / "live.db"
    shutil.copyfile(world["old_db"], live)  # type: ignore[arg-type]
    return live


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_killed_at_each_step_leaves_old_or_new_content(step: str, world: dict[str, object], tmp_path: Path) -> None:
    live = _fresh_live(tmp_path, world)
    child = subprocess.run([sys.executable, "-c", RESTORE_CHILD, str(live), str(world["new_export"])],
                           env=_env(tmp_path, step, rename=step in RENAME_STEPS), cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "done" not in child.stdout
    wal = Path(str(live) + "-wal")
    if step == "after-swap":  # the new content is committed only in the WAL the killed process left
        assert wal.exists() and wal.stat().st_size > live.stat().st_size / 2
    if step not in ("after-verify", "after-rename-swap-in"):  # (after the rename the fresh file *is* live)
        assert any(".fresh-" in name for name in leftovers(tmp_path)), "the killed restore left its fresh file"
    assert _content(live, tmp_path, world) == EXPECTED_AFTER_KILL[step]
    # The next operation cleans up what the killed one left and works normally.
    with Store(live, device_id=DEVICE_A) as store:
        store.restore(world["new_export"])  # type: ignore[arg-type]
    assert leftovers(tmp_path) == []
    assert _content(live, tmp_path, world) == "new"


def test_killed_at_random_moments_leaves_old_or_new_content(world: dict[str, object], tmp_path: Path) -> None:
    # How long does an undisturbed restore take in the child (after it said "ready")?
    live = _fresh_live(tmp_path, world)
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", RESTORE_CHILD, str(live), str(world["new_export"])],
                             env=_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.monotonic()
    assert child.wait(timeout=60) == 0
    duration = time.monotonic() - started
    assert _content(live, tmp_path, world) == "new"

    outcomes: list[tuple[float, str]] = []
    for seed in range(8):
        live = _fresh_live(tmp_path, world)
        for path in live.parent.glob("live.db*"):
            if path != live and path.is_file():
                path.unlink()
        shutil.rmtree(restore.restore_point_dir(live), ignore_errors=True)
        delay = random.Random(seed).uniform(0.0, duration * 1.1)
        child = subprocess.Popen([sys.executable, "-c", RESTORE_CHILD, str(live), str(world["new_export"])],
                                 env=_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        state = _content(live, tmp_path, world)
        outcomes.append((round(delay / duration, 2), state))
        assert state in ("old", "new"), outcomes
    print(f"restore took {duration:.2f}s in the child; (kill time / duration, content): {outcomes}")


# --------------------------------------------------------------------------- full disk


def _limited(tmp_path: Path, live: Path, action: str, target: Path, limit: int, *, rename: bool = True
             ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIMITED_CHILD, str(live), action, str(target), str(limit)],
                          env=_env(tmp_path, rename=rename), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_full_disk_while_building_is_a_clean_error(world: dict[str, object], tmp_path: Path) -> None:
    live = _fresh_live(tmp_path, world)
    before = db_fingerprint(live)
    child = _limited(tmp_path, live, "restore", world["new_export"], 256 * 1024)  # type: ignore[arg-type]
    assert child.returncode == 3, child.stdout + child.stderr
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("RestoreError: restore failed: ")
    assert "the live database was not changed" in lines[0]
    assert db_fingerprint(live) == before
    assert leftovers(tmp_path) == []
    record = next(audit.read(live, limit=1))
    assert record["outcome"] == "failed" and record["restore_point"] is None
    assert _content(live, tmp_path, world) == "old"


def test_full_disk_during_the_swap_is_a_clean_error(world: dict[str, object], tmp_path: Path) -> None:
    # The size the live file has after a successful restore = the size of the fresh file. Allow a
    # little more than that: the fresh file fits, the live WAL (one 24-byte header per page more)
    # does not, so the write fails inside the swap's transaction.
    (tmp_path / "probe").mkdir()
    probe = _fresh_live(tmp_path / "probe", world)
    with Store(probe, device_id=DEVICE_A) as store:
        store.restore(world["new_export"])  # type: ignore[arg-type]
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    size = probe.stat().st_size
    assert pages > 200 and size == pages * 4096

    live = _fresh_live(tmp_path, world)
    # The backup-API swap writes the whole database into the live file's WAL (a rename swap
    # writes nothing there: DISABLE_ENV forces the backup path that can run out of space).
    child = _limited(tmp_path, live, "restore", world["new_export"], size + 2048, rename=False)  # type: ignore[arg-type]
    assert child.returncode == 3, child.stdout + child.stderr
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("RestoreError: restore failed: "), lines
    assert "disk I/O error" in lines[0] or "database or disk is full" in lines[0]
    record = next(audit.read(live, limit=1))
    assert record["outcome"] == "failed"
    assert record["restore_point"] and Path(record["restore_point"]).exists(), "it failed before the swap"
    assert _content(live, tmp_path, world) == "old"
    assert leftovers(tmp_path) == []


def test_full_disk_mid_export_is_a_clean_error(world: dict[str, object], tmp_path: Path) -> None:
    live = _fresh_live(tmp_path, world)
    with Store(live, device_id=DEVICE_A) as store:
        store.restore(world["new_export"])  # type: ignore[arg-type]
    before = db_fingerprint(live)
    target = tmp_path / "exports"
    child = _limited(tmp_path, live, "export", target, 64 * 1024)
    assert child.returncode == 3, child.stdout + child.stderr
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ExportError: export to ")
    assert "File too large" in lines[0] and "nothing was written" in lines[0]
    assert list(target.iterdir()) == []  # no partial export, no temp folder
    assert db_fingerprint(live) == before
