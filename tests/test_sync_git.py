"""A real transport: two devices sync through a git repository (a bare repo on local disk, two
clones, ``git push``/``git pull`` via subprocess) and converge after concurrent edits on both sides.

Each device commits only its own ``bakestore-v1/devices/<id>/`` folder, so pulls never conflict
textually (sqlite-facts D4); the clones are the sync folders, and they hold no database.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from bakestore.store import Store
from bakestore.sync import ROOT_NAME, sync
from tests.conftest import DEVICE_A, DEVICE_B
from tests.test_sync import assert_converged, make_product, make_purchase, make_supplier

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def clone(bare: Path, target: Path, who: str) -> Path:
    git(bare.parent, "clone", "--quiet", str(bare), str(target))
    git(target, "config", "user.name", who)
    git(target, "config", "user.email", f"{who}@example.invalid")
    git(target, "config", "pull.rebase", "true")
    return target


def publish(store: Store, repo: Path) -> None:
    """What a device does: pull, sync, commit its own folder, push (retrying if the other pushed first)."""
    git(repo, "pull", "--quiet")
    sync(store, repo)
    git(repo, "add", f"{ROOT_NAME}/devices/{store.device_id}")
    if git(repo, "status", "--porcelain"):
        git(repo, "commit", "--quiet", "-m", f"bakestore sync from {store.device_id[:8]}")
    for _ in range(3):
        done = subprocess.run(["git", "push", "--quiet"], cwd=repo, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return
        git(repo, "pull", "--quiet")
    raise AssertionError(f"git push kept failing: {done.stderr}")


def test_two_devices_converge_through_a_git_repository(tmp_path: Path) -> None:
    bare = tmp_path / "sync.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = clone(bare, tmp_path / "seed", "seed")
    (seed / "README").write_text("bakestore sync folder\n")
    git(seed, "add", "README")
    git(seed, "commit", "--quiet", "-m", "start")
    git(seed, "push", "--quiet", "origin", "main")
    repo_a = clone(bare, tmp_path / "clone-a", "device-a")
    repo_b = clone(bare, tmp_path / "clone-b", "device-b")
    ticks = itertools.count(1_767_225_600_000)
    a = Store(tmp_path / "a" / "live.db", device_id=DEVICE_A, wall_clock=lambda: next(ticks))
    b = Store(tmp_path / "b" / "live.db", device_id=DEVICE_B, wall_clock=lambda: next(ticks))
    try:
        flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
        acme = make_supplier(a, "acme")
        product = make_product(a, flour["id"], preferred_supplier_id=acme["id"])
        publish(a, repo_a)
        publish(b, repo_b)
        publish(a, repo_a)
        assert b.get("products", product["id"])["preferred_supplier_id"] == acme["id"]

        # Concurrent edits on both sides, neither having seen the other's.
        a.update("suppliers", acme["id"], {"city": "Boston"})
        sugar = a.insert("ingredients", {"display_name": "Sugar", "slug": "sugar", "category": "Sugar"})
        a.delete("suppliers", acme["id"])  # nulls the product's preferred supplier on A
        purchase_supplier = make_supplier(b, "bakers-co")
        make_purchase(b, product["id"], purchase_supplier["id"])
        b.update("products", product["id"], {"notes": "edited on B"})
        publish(a, repo_a)
        publish(b, repo_b)  # pulls A's commit (no textual conflict: disjoint paths), merges, pushes
        publish(a, repo_a)

        for store in (a, b):
            got = store.get("products", product["id"])
            assert got["notes"] == "edited on B" and got["preferred_supplier_id"] is None
            assert store.get("ingredients", sugar["id"])["slug"] == "sugar"
            assert store.count("purchases") == 1 and store.count("suppliers") == 1
        assert_converged([a, b], tmp_path / "exports")

        # The repository history holds only the device folders, never a database file.
        tracked = git(repo_a, "ls-files").split()
        assert tracked and all(p == "README" or p.startswith(f"{ROOT_NAME}/devices/") for p in tracked)
        assert not [p for p in tracked if p.endswith((".db", "-wal", "-shm"))]
        log = git(repo_a, "log", "--format=%an", "--", f"{ROOT_NAME}/devices/{DEVICE_A}").split()
        assert set(log) == {"device-a"}  # each device wrote only its own folder
    finally:
        a.close()
        b.close()
