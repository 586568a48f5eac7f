"""Sync through a shared folder: merge rules, FK and UNIQUE rules, debris, partial arrivals, the
shrink guard, change capture outside the API, crash recovery, all-or-nothing apply, the CLI."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bakestore import audit
from bakestore.cli import main
from bakestore.errors import ShrinkRefusedError, SyncError
from bakestore.store import Store
from bakestore.sync import (
    MANIFEST,
    ROOT_NAME,
    State,
    classify,
    materialize,
    merge_states,
    state_path_for,
    sync,
    sync_status,
)
from tests.conftest import DEVICE_A, DEVICE_B, db_fingerprint

DEVICE_C = "c" * 32


# --------------------------------------------------------------------------- helpers (reused by the other sync tests)


def device_dir(folder: Path, device: str) -> Path:
    return folder / ROOT_NAME / "devices" / device


def export_tables(store: Store, target: Path) -> dict[str, bytes]:
    """The table files of a fresh export of ``store`` (the manifest holds the db_id, which differs)."""
    result = store.export(target)
    return {p.name: p.read_bytes() for p in sorted(result.path.glob("*.ndjson"))}


def assert_converged(stores: list[Store], scratch: Path) -> None:
    exports = [export_tables(s, scratch / f"export-{i}") for i, s in enumerate(stores)]
    for other in exports[1:]:
        differing = [name for name in exports[0] if exports[0][name] != other.get(name)]
        assert not differing, f"exports differ in {differing}"


def make_supplier(store: Store, slug: str, **extra: Any) -> dict[str, Any]:
    return store.insert("suppliers", {"name": slug.title(), "slug": slug, **extra})


def make_product(store: Store, ingredient_id: str, **extra: Any) -> dict[str, Any]:
    return store.insert("products", {"ingredient_id": ingredient_id, "package_unit": "lb",
                                     "package_unit_quantity": 5.0, **extra})


def make_purchase(store: Store, product_id: str, supplier_id: str, **extra: Any) -> dict[str, Any]:
    return store.insert("purchases", {"product_id": product_id, "supplier_id": supplier_id,
                                      "purchase_date": "2026-01-02", "unit_price": 3.5, "quantity_purchased": 2,
                                      **extra})


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    opened: list[Store] = []
    ticks = itertools.count(1_767_225_600_000)  # one shared clock: every write is 1 ms after the previous

    def make(device: str) -> Store:
        store = Store(tmp_path / f"dev-{device[0]}" / "live.db", device_id=device, wall_clock=lambda: next(ticks))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def pair(make_store: Callable[[str], Store], shared: Path) -> tuple[Store, Store]:
    """Two devices that have synced once (B adopted A's seeds)."""
    a, b = make_store(DEVICE_A), make_store(DEVICE_B)
    sync(a, shared)
    sync(b, shared)
    sync(a, shared)
    return a, b


def exchange(stores: list[Store], folder: Path, rounds: int = 2, **kwargs: Any) -> None:
    for _ in range(rounds):
        for store in stores:
            sync(store, folder, **kwargs)


# --------------------------------------------------------------------------- the pure merge


def _entry(ms: int, device: str, text: str = "x") -> tuple[str, str]:
    version = f"{ms:013d}-00000-{device}"
    return version, f'{{"v":"{version}","t":"{text}"}}'


def test_greatest_version_wins_ties_broken_by_device() -> None:
    a, b = State(), State()
    a.put_row("suppliers", "k", _entry(5, DEVICE_A, "a"))
    b.put_row("suppliers", "k", _entry(5, DEVICE_B, "b"))
    assert merge_states(a, b).rows["suppliers"]["k"] == _entry(5, DEVICE_B, "b")
    c = State()
    c.put_row("suppliers", "k", _entry(6, DEVICE_A, "c"))
    assert merge_states(a, b, c).rows["suppliers"]["k"] == _entry(6, DEVICE_A, "c")


def test_tombstones_take_part_in_the_max(store: Store) -> None:
    """A delete newer than an update wins; an update newer than the delete revives; a tie deletes."""
    row = make_supplier(store, "acme")
    line_state = State()
    from bakestore.sync import read_live
    live = read_live(store.db.conn)
    version, line = live.rows["suppliers"][row["id"]]
    line_state.put_row("suppliers", row["id"], (version, line))

    def tomb(v: str) -> State:
        s = State()
        s.put_tomb(("suppliers", row["id"]), (v, f'{{"row_version":"{v}"}}'))
        return s

    older = f"{int(version[:13]) - 1:013d}{version[13:]}"
    newer = f"{int(version[:13]) + 1:013d}{version[13:]}"
    assert row["id"] in materialize(merge_states(line_state, tomb(older))).rows["suppliers"]
    assert row["id"] not in materialize(merge_states(line_state, tomb(newer))).rows["suppliers"]
    assert row["id"] not in materialize(merge_states(line_state, tomb(version))).rows["suppliers"]


@pytest.mark.parametrize("name, kind, base, engine", [
    ("recipes.ndjson", "plain", "recipes.ndjson", None),
    (".syncthing.recipes.ndjson.tmp", "in-progress", "recipes.ndjson", "syncthing"),
    ("~syncthing~recipes.ndjson.tmp", "in-progress", "recipes.ndjson", "syncthing"),
    ("recipes.sync-conflict-20260105-101112-ABCDEFG.ndjson", "conflict", "recipes.ndjson", "syncthing"),
    ("manifest (Alice's conflicted copy 2026-01-05).json", "conflict", "manifest.json", "dropbox"),
    ("manifest (Conflicted Copy).json", "conflict", "manifest.json", "dropbox"),
    ("recipes 2.ndjson", "conflict", "recipes.ndjson", "icloud"),
    ("tables 2", "conflict", "tables", "icloud"),
    (".recipes.ndjson.icloud", "stub", "recipes.ndjson", "icloud"),
    (".recipes.ndjson.bakestore-tmp-123", "own-tmp", "recipes.ndjson", "bakestore"),
    ("a" * 32 + ".sync-conflict-20260105-101112-ABCDEFG", "conflict", "a" * 32, "syncthing"),
])
def test_debris_names_are_classified(name: str, kind: str, base: str, engine: str | None) -> None:
    parsed = classify(name)
    assert (parsed.kind, parsed.base, parsed.engine) == (kind, base, engine)


# --------------------------------------------------------------------------- basic exchange


def test_two_devices_converge_and_each_writes_only_its_own_folder(make_store: Callable[[str], Store],
                                                                  shared: Path, tmp_path: Path) -> None:
    a, b = make_store(DEVICE_A), make_store(DEVICE_B)
    make_supplier(a, "acme")
    make_supplier(b, "bakers-co")
    sync(a, shared)
    sync(b, shared)
    sync(a, shared)
    a_files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in device_dir(shared, DEVICE_A).rglob("*") if p.is_file()}
    report = sync(b, shared)  # B reads A's folder and must never write to it
    assert {p: (p.stat().st_mtime_ns, p.read_bytes())
            for p in device_dir(shared, DEVICE_A).rglob("*") if p.is_file()} == a_files
    assert [d.device_id for d in report.devices] == [DEVICE_B, DEVICE_A]
    assert a.count("suppliers") == b.count("suppliers") == 2
    assert_converged([a, b], tmp_path)
    files = sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file())
    assert all(f.startswith(f"{ROOT_NAME}/devices/{DEVICE_A}/") or f.startswith(f"{ROOT_NAME}/devices/{DEVICE_B}/")
               for f in files)
    assert not [f for f in files if f.endswith((".db", "-wal", "-shm", "-journal"))]
    manifest = json.loads((device_dir(shared, DEVICE_B) / MANIFEST).read_text())
    assert manifest["device_id"] == DEVICE_B and len(manifest["tables"]) == len(list(
        (device_dir(shared, DEVICE_B) / "tables").glob("*.ndjson")))


def test_a_second_sync_without_changes_writes_nothing(pair: tuple[Store, Store], shared: Path) -> None:
    a, b = pair
    sync(b, shared)
    own = device_dir(shared, DEVICE_A)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in own.rglob("*")}
    fingerprint = db_fingerprint(a.path)
    report = sync(a, shared)
    assert report.changed_rows == 0 and report.exported_sequence is None and report.restore_point is None
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in own.rglob("*")} == before
    assert db_fingerprint(a.path) == fingerprint


def test_first_sync_adopts_the_others_seed_rows(make_store: Callable[[str], Store], shared: Path,
                                                tmp_path: Path) -> None:
    """A new device's freshly seeded units must not revert an edit made to a unit elsewhere."""
    a = make_store(DEVICE_A)
    a.update("units", "g", {"display_name": "gramme"})
    sync(a, shared)
    b = make_store(DEVICE_B)  # seeded after A's edit: its seed rows carry newer versions
    report = sync(b, shared)
    assert report.mode == "first-sync" and report.captured["adopted_seed_rows"] > 0
    assert b.get("units", "g")["display_name"] == "gramme"
    sync(a, shared)
    assert a.get("units", "g")["display_name"] == "gramme"
    assert_converged([a, b], tmp_path)


def test_concurrent_edits_newest_version_wins(pair: tuple[Store, Store], shared: Path, tmp_path: Path) -> None:
    a, b = pair
    row = make_supplier(a, "acme")
    exchange([a, b], shared)
    from_b = b.update("suppliers", row["id"], {"notes": "from b"})
    from_a = a.update("suppliers", row["id"], {"city": "Boston"})
    winner = max(from_a, from_b, key=lambda r: r["row_version"])  # the whole row of the greater version
    exchange([a, b], shared)
    for store in (a, b):
        got = store.get("suppliers", row["id"])
        assert got == winner
        # per-row LWW: the loser's edit to a *different* column is lost (documented in docs/sync.md)
        assert (got["city"], got["notes"]) in {("Boston", None), (None, "from b")}
    assert_converged([a, b], tmp_path)


def test_delete_newer_than_update_wins_and_update_newer_than_delete_revives(
        pair: tuple[Store, Store], shared: Path, tmp_path: Path) -> None:
    a, b = pair
    first, second = make_supplier(a, "first"), make_supplier(a, "second")
    exchange([a, b], shared)
    b.update("suppliers", first["id"], {"notes": "edited"})
    a.delete("suppliers", first["id"])  # newer than B's update: the delete wins
    a.delete("suppliers", second["id"])
    b.update("suppliers", second["id"], {"notes": "edited after the delete"})  # newer: revives
    exchange([a, b], shared)
    for store in (a, b):
        ids = {r["id"] for r in store.rows("suppliers")}
        assert first["id"] not in ids and second["id"] in ids
        assert store.get("suppliers", second["id"])["notes"] == "edited after the delete"
    assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- the FK and UNIQUE rules


def test_fk_cascade_child_edited_while_parent_deleted_is_hidden(pair: tuple[Store, Store], shared: Path,
                                                                tmp_path: Path) -> None:
    a, b = pair
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    product = make_product(a, flour["id"])
    exchange([a, b], shared)
    a.delete("ingredients", flour["id"])  # cascades to the product on A
    b.update("products", product["id"], {"notes": "edited on B after A's delete"})
    exchange([a, b], shared)
    for store in (a, b):
        assert store.count("products") == 0 and store.count("ingredients") == 0
        assert not list(store.db.execute("PRAGMA foreign_key_check"))
    report = sync(a, shared, dry_run=True)
    assert any(r.rule == "fk-hide-child" and r.row_id == product["id"] for r in report.resolutions)
    assert_converged([a, b], tmp_path)


def test_fk_set_null_child_keeps_living_with_the_column_nulled(pair: tuple[Store, Store], shared: Path,
                                                               tmp_path: Path) -> None:
    a, b = pair
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    supplier = make_supplier(a, "acme")
    product = make_product(a, flour["id"], preferred_supplier_id=supplier["id"])
    exchange([a, b], shared)
    a.delete("suppliers", supplier["id"])  # A nulls the product's column itself
    b.update("products", product["id"], {"notes": "newer edit still pointing at acme"})
    exchange([a, b], shared)
    for store in (a, b):
        got = store.get("products", product["id"])
        assert got["preferred_supplier_id"] is None and got["notes"] == "newer edit still pointing at acme"
    report = sync(b, shared, dry_run=True)
    assert [r.rule for r in report.resolutions if r.row_id == product["id"]] == ["fk-set-null"]
    assert_converged([a, b], tmp_path)


def test_fk_restrict_child_added_while_parent_deleted_revives_the_parent(pair: tuple[Store, Store], shared: Path,
                                                                         tmp_path: Path) -> None:
    a, b = pair
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    product = make_product(a, flour["id"])
    supplier = make_supplier(a, "acme")
    exchange([a, b], shared)
    a.delete("products", product["id"])  # allowed on A: no purchase there
    purchase = make_purchase(b, product["id"], supplier["id"])  # B records a purchase of it meanwhile
    exchange([a, b], shared)
    for store in (a, b):
        assert store.get("purchases", purchase["id"])["product_id"] == product["id"]
        assert store.get("products", product["id"])["id"] == product["id"]
        assert not list(store.db.execute("PRAGMA foreign_key_check"))
    report = sync(a, shared, dry_run=True)
    assert any(r.rule == "fk-revive-parent" and r.row_id == product["id"] for r in report.resolutions)
    assert_converged([a, b], tmp_path)


def test_unique_clash_keeps_the_newer_row_and_renames_the_other(pair: tuple[Store, Store], shared: Path,
                                                                tmp_path: Path) -> None:
    a, b = pair
    older = make_supplier(a, "acme", notes="A's")
    newer = make_supplier(b, "acme", notes="B's")
    exchange([a, b], shared)
    shown = "acme-" + older["id"].replace("-", "")[-6:]
    for store in (a, b):
        assert [r["id"] for r in store.rows("suppliers", where="slug = 'acme'")] == [newer["id"]]
        # The older row stays visible, under a disambiguated slug, with everything else as it was.
        assert {k: v for k, v in store.get("suppliers", older["id"]).items() if k != "slug"} == \
            {k: v for k, v in older.items() if k != "slug"}
        assert store.get("suppliers", older["id"])["slug"] == shown
    report = sync(a, shared, dry_run=True)
    assert [(r.rule, r.row_id) for r in report.resolutions] == [("unique-rename", older["id"])]
    assert f"'acme' is shown as '{shown}'" in report.resolutions[0].detail
    # Nothing is destroyed: when the winner goes, the other row gets its own value back.
    b.delete("suppliers", newer["id"])
    exchange([a, b], shared)
    for store in (a, b):
        assert [r["id"] for r in store.rows("suppliers", where="slug = 'acme'")] == [older["id"]]
    assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- change capture outside the API


def test_writes_outside_the_api_get_fresh_versions_and_tombstones(pair: tuple[Store, Store], shared: Path,
                                                                  tmp_path: Path) -> None:
    a, b = pair
    keep, drop = make_supplier(a, "keep"), make_supplier(a, "drop")
    exchange([a, b], shared)
    with a.write():  # like Datasette or the sqlite3 shell: no version bump, no tombstone
        a.db.execute("UPDATE suppliers SET notes = 'raw edit' WHERE id = ?", [keep["id"]])
        a.db.execute("DELETE FROM suppliers WHERE id = ?", [drop["id"]])
    report = sync(a, shared)
    assert report.captured["minted_versions"] == 1 and report.captured["minted_tombstones"] == 1
    sync(b, shared)
    assert b.get("suppliers", keep["id"])["notes"] == "raw edit"
    assert drop["id"] not in {r["id"] for r in b.rows("suppliers")}
    assert_converged([a, b], tmp_path)


def test_a_restore_is_captured_as_the_users_latest_act(pair: tuple[Store, Store], shared: Path,
                                                       tmp_path: Path) -> None:
    a, b = pair
    row = make_supplier(a, "acme", notes="v1")
    exchange([a, b], shared)
    backup = a.export(tmp_path / "backup")
    a.update("suppliers", row["id"], {"notes": "v2"})
    exchange([a, b], shared)
    a.restore(backup.path)  # brings back v1 with its older version
    sync(a, shared)
    sync(b, shared)
    assert b.get("suppliers", row["id"])["notes"] == "v1"
    assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- partial arrivals, debris, time travel


def test_partially_arrived_snapshot_is_skipped_until_complete(pair: tuple[Store, Store], shared: Path,
                                                              tmp_path: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    table = device_dir(shared, DEVICE_B) / "tables" / "suppliers.ndjson"
    complete = table.read_bytes()
    table.write_bytes(complete[: len(complete) // 2])  # the sync engine has not finished
    report = sync(a, shared)
    status = {d.device_id: d for d in report.devices}[DEVICE_B]
    assert status.status == "skipped" and "suppliers.ndjson" in (status.message or "")
    assert "keeping its last accepted state" in (status.message or "")
    assert a.count("suppliers") == 0
    table.write_bytes(complete)
    report = sync(a, shared)
    assert {d.device_id: d.status for d in report.devices}[DEVICE_B] == "accepted"
    assert a.count("suppliers") == 1


def test_missing_file_and_icloud_placeholder_mean_not_arrived(pair: tuple[Store, Store], shared: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    table = device_dir(shared, DEVICE_B) / "tables" / "suppliers.ndjson"
    table.rename(table.with_name(".suppliers.ndjson.icloud"))
    report = sync(a, shared)
    status = {d.device_id: d for d in report.devices}[DEVICE_B]
    assert status.status == "skipped" and "iCloud" in (status.message or "")
    assert any("icloud" in line for line in report.debris)
    assert a.count("suppliers") == 0


def test_conflict_copies_are_merged_as_state_and_reported(pair: tuple[Store, Store], shared: Path,
                                                          make_store: Callable[[str], Store], tmp_path: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    # A losing copy of B's suppliers file holding a row that no current snapshot has (written by a
    # third writer of the same path: exactly what a sync engine preserves as a conflict copy).
    c = make_store(DEVICE_C)
    extra = make_supplier(c, "only-in-the-conflict-copy")
    (tmp_path / "elsewhere").mkdir()
    sync(c, tmp_path / "elsewhere")
    loser = (device_dir(tmp_path / "elsewhere", DEVICE_C) / "tables" / "suppliers.ndjson").read_bytes()
    tables = device_dir(shared, DEVICE_B) / "tables"
    (tables / "suppliers.sync-conflict-20260105-101112-ABCDEFG.ndjson").write_bytes(loser)
    shutil.copyfile(tables / "suppliers.ndjson", tables / "suppliers 2.ndjson")  # an iCloud duplicate
    (tables / ".syncthing.recipes.ndjson.tmp").write_bytes(b"half a download")
    (device_dir(shared, DEVICE_B) / "manifest (Bob's conflicted copy 2026-01-05).json").write_text("{}")
    report = sync(a, shared)
    assert a.get("suppliers", extra["id"])["slug"] == "only-in-the-conflict-copy"  # the conflict copy is state
    assert a.get("suppliers", "acme")["slug"] == "acme"
    assert any("sync-conflict" in line and "merged" in line for line in report.debris)
    assert any("suppliers 2.ndjson" in line and "merged" in line for line in report.debris)
    assert any(".syncthing.recipes.ndjson.tmp" in line and "ignored" in line for line in report.debris)
    assert any("conflicted copy" in line and "reported only" in line for line in report.debris)


def test_a_torn_conflict_copy_is_ignored(pair: tuple[Store, Store], shared: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    tables = device_dir(shared, DEVICE_B) / "tables"
    (tables / "suppliers.sync-conflict-20260105-101112-ABCDEFG.ndjson").write_bytes(b'{"id":"x"')
    report = sync(a, shared)
    assert any("unreadable" in line for line in report.debris)
    assert a.count("suppliers") == 1


def test_conflict_copy_in_own_folder_means_duplicate_device_id(pair: tuple[Store, Store], shared: Path) -> None:
    a, _ = pair
    own = device_dir(shared, DEVICE_A)
    shutil.copyfile(own / MANIFEST, own / "manifest.sync-conflict-20260105-101112-ABCDEFG.json")
    fingerprint = db_fingerprint(a.path)
    with pytest.raises(SyncError, match="same device id") as raised:
        sync(a, shared)
    assert db_fingerprint(a.path) == fingerprint
    assert next(audit.read(a.path))["outcome"] == "refused"
    # The alarm says what to do: which file, how to give a device a new id, what to do with the copy.
    message = str(raised.value)
    assert "manifest.sync-conflict-20260105-101112-ABCDEFG.json" in message and "\n" not in message
    assert "device_id" in message and "delete" in message and "move" in message and "nothing was changed" in message


def test_a_device_folder_that_went_back_in_time_cannot_undo_newer_state(
        pair: tuple[Store, Store], shared: Path, tmp_path: Path) -> None:
    a, b = pair
    row = make_supplier(b, "acme", notes="old")
    sync(b, shared)
    old_copy = tmp_path / "old-b"
    shutil.copytree(device_dir(shared, DEVICE_B), old_copy)
    b.update("suppliers", row["id"], {"notes": "new"})
    sync(b, shared)
    sync(a, shared)
    assert a.get("suppliers", row["id"])["notes"] == "new"
    shutil.rmtree(device_dir(shared, DEVICE_B))
    shutil.copytree(old_copy, device_dir(shared, DEVICE_B))  # e.g. a backup of the sync folder put back
    report = sync(a, shared)
    status = {d.device_id: d for d in report.devices}[DEVICE_B]
    assert status.went_backwards and "cannot undo newer state" in (status.message or "")
    assert a.get("suppliers", row["id"])["notes"] == "new"


# --------------------------------------------------------------------------- refusals and guards


def test_refuses_a_folder_that_contains_the_live_database(store: Store, db_path: Path) -> None:
    with pytest.raises(SyncError, match="contains the live database"):
        sync(store, db_path.parent)
    with pytest.raises(SyncError, match="no such folder"):
        sync(store, db_path.parent.parent / "nowhere")


def test_refuses_a_folder_holding_a_sqlite_file(store: Store, shared: Path) -> None:
    stray = shared / ROOT_NAME / "devices" / DEVICE_B / "copy.db"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(SyncError, match="SQLite file"):
        sync(store, shared)
    stray.unlink()
    (shared / f"{store.path.name}-wal").write_bytes(b"")
    with pytest.raises(SyncError, match="live SQLite file"):
        sync(store, shared)


@pytest.mark.parametrize("where", ["devices/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/tables/suppliers.ndjson.bak",
                                   "devices/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/notes", "old-backup"])
def test_refuses_a_sqlite_file_under_any_name_in_the_tree_bakestore_owns(store: Store, shared: Path,
                                                                          tmp_path: Path, where: str) -> None:
    """Only names ending in .db were refused; a database under another name went through."""
    other = Store(tmp_path / "other" / "x.db", device_id=DEVICE_B)
    other.close()
    stray = shared / ROOT_NAME / where
    stray.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(other.path, stray)
    fingerprint = db_fingerprint(store.path)
    with pytest.raises(SyncError, match="SQLite file inside the sync folder") as raised:
        sync(store, shared)
    assert str(stray) in str(raised.value)
    assert db_fingerprint(store.path) == fingerprint
    assert not (shared / ROOT_NAME / "devices" / DEVICE_A).exists()


def test_a_hard_link_to_the_live_database_in_the_tree_is_refused_without_reading_it(
        store: Store, shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.insert("recipients", {"name": "Ann"})
    stray = shared / ROOT_NAME / "devices" / DEVICE_B / "live-copy"
    stray.parent.mkdir(parents=True)
    os.link(store.path, stray)
    real_open = open
    opened: list[str] = []

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    import builtins

    monkeypatch.setattr(builtins, "open", spy)
    with pytest.raises(SyncError, match="is the live database's own file live.db"):
        sync(store, shared)
    monkeypatch.setattr(builtins, "open", real_open)
    assert str(stray) not in opened
    assert store.insert("recipients", {"name": "still writable"})  # our locks were never dropped


def test_a_device_that_lost_its_data_does_not_wipe_the_others(pair: tuple[Store, Store], shared: Path,
                                                              tmp_path: Path) -> None:
    a, b = pair
    for i in range(30):
        make_supplier(a, f"supplier-{i}")
    exchange([a, b], shared)
    # A's database file is replaced by an empty one behind bakestore's back (its sync state survives).
    a.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{a.path}{suffix}").unlink(missing_ok=True)
    a2 = Store(a.path, device_id=DEVICE_A, wall_clock=a._wall)
    try:
        with pytest.raises(ShrinkRefusedError, match="without tombstones"):
            sync(a2, shared)
        assert a2.count("suppliers") == 0
        sync(b, shared)
        assert b.count("suppliers") == 30  # nothing was published
        # Without its sync state (a reinstall), the device simply gets everything back.
        state_path_for(a.path).unlink()
        sync(a2, shared)
        assert a2.count("suppliers") == 30
    finally:
        a2.close()


def test_shrink_guard_refuses_a_mass_delete_from_another_device(pair: tuple[Store, Store], shared: Path) -> None:
    a, b = pair
    rows = [make_supplier(a, f"supplier-{i}") for i in range(40)]
    exchange([a, b], shared)
    for row in rows[:30]:
        b.delete("suppliers", row["id"])
    sync(b, shared)
    fingerprint = db_fingerprint(a.path)
    with pytest.raises(ShrinkRefusedError, match="must not wipe the others"):
        sync(a, shared)
    assert db_fingerprint(a.path) == fingerprint
    status = sync_status(a, shared)
    assert status.shrink and any("shrink guard" in m for m in status.messages)
    sync(a, shared, allow_shrink=True)
    assert a.count("suppliers") == 10


def test_apply_is_all_or_nothing(pair: tuple[Store, Store], shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = pair
    make_supplier(b, "acme")
    make_supplier(b, "bakers")
    sync(b, shared)
    import bakestore.sync as sync_module

    real_apply = sync_module._apply

    def failing_apply(conn: Any, *args: Any) -> None:
        real_apply(conn, *args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sync_module, "_apply", failing_apply)
    fingerprint = db_fingerprint(a.path)
    state_before = state_path_for(a.path).read_bytes()
    own_before = (device_dir(shared, DEVICE_A) / MANIFEST).read_bytes()
    with pytest.raises(OSError):
        sync(a, shared)
    assert db_fingerprint(a.path) == fingerprint
    assert a.count("suppliers") == 0
    assert state_path_for(a.path).read_bytes() == state_before
    assert (device_dir(shared, DEVICE_A) / MANIFEST).read_bytes() == own_before
    assert next(audit.read(a.path))["outcome"] == "failed"
    monkeypatch.setattr(sync_module, "_apply", real_apply)
    sync(a, shared)
    assert a.count("suppliers") == 2


def test_applied_sync_has_a_restore_point_and_an_audit_record(pair: tuple[Store, Store], shared: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    report = sync(a, shared)
    assert report.restore_point is not None and report.restore_point.exists()
    record = next(audit.read(a.path))
    assert record["operation"] == "sync" and record["outcome"] == "done" and record["id"] == report.audit_id
    assert record["counts_after"]["suppliers"] == 1
    a.undo()  # the restore point is a real one
    assert a.count("suppliers") == 0


def test_dry_run_and_status_change_nothing(make_store: Callable[[str], Store], shared: Path) -> None:
    a, b = make_store(DEVICE_A), make_store(DEVICE_B)
    make_supplier(a, "acme")
    sync(a, shared)
    fingerprint = db_fingerprint(b.path)
    report = sync(b, shared, dry_run=True)
    assert report.dry_run and report.diff["suppliers"].added == 1
    status = sync_status(b, shared)
    assert {d.device_id: d.status for d in status.devices} == {DEVICE_B: "own", DEVICE_A: "accepted"}
    assert status.devices[1].exported_at and status.devices[1].sequence == 1
    assert db_fingerprint(b.path) == fingerprint
    assert not device_dir(shared, DEVICE_B).exists()
    assert not state_path_for(b.path).exists()


# --------------------------------------------------------------------------- crash recovery


def test_crash_between_live_commit_and_state_write_recovers_without_guessing(
        make_store: Callable[[str], Store], shared: Path, tmp_path: Path) -> None:
    a, b = make_store(DEVICE_A), make_store(DEVICE_B)
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    supplier = make_supplier(a, "acme")
    product = make_product(a, flour["id"], preferred_supplier_id=supplier["id"])
    exchange([a, b], shared)
    a.delete("suppliers", supplier["id"])
    b.update("products", product["id"], {"notes": "newer"})  # B's next sync will null the column (a view rule)
    sync(a, shared)
    b_path = b.path
    b.close()
    script = ("import sys; from bakestore.store import Store; from bakestore.sync import sync; "
              f"s = Store({str(b_path)!r}, device_id={DEVICE_B!r}); sync(s, {str(shared)!r})")
    env = {**os.environ, "BAKESTORE_FAULT": "sync-after-live-commit"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr  # killed right after the live commit
    b2 = Store(b_path, device_id=DEVICE_B, wall_clock=b._wall)
    try:
        assert b2.get("products", product["id"])["preferred_supplier_id"] is None  # the commit landed
        report = sync(b2, shared)
        assert report.mode == "recovery"
        assert report.captured["minted_versions"] == 0 and report.captured["minted_tombstones"] == 0
        exchange([a, b2], shared)
        assert_converged([a, b2], tmp_path)
        assert sync(b2, shared).mode == "baseline"
    finally:
        b2.close()


# --------------------------------------------------------------------------- CLI


def test_cli_sync_status_dry_run_and_json(make_store: Callable[[str], Store], shared: Path, runner: Any,
                                          _isolated_home: Path) -> None:
    a = make_store(DEVICE_A)
    make_supplier(a, "acme")
    sync(a, shared)
    db = Path(str(a.path).replace("dev-a", "dev-cli"))
    db.parent.mkdir()
    Store(db).close()  # device id from the (isolated) config dir
    result = runner.invoke(main, ["--db", str(db), "sync", "--status", str(shared)])
    assert result.exit_code == 0, result.output
    assert f"device {DEVICE_A[:8]}: accepted seq 1" in result.output and "would change" in result.output
    result = runner.invoke(main, ["--db", str(db), "sync", "--dry-run", str(shared)])
    assert result.exit_code == 0 and "dry run: nothing was changed" in result.output
    result = runner.invoke(main, ["--db", str(db), "sync", "--json", str(shared)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["diff"]["suppliers"]["added"] == 1 and data["audit_id"]
    result = runner.invoke(main, ["--db", str(db), "sync", str(db.parent)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "contains the live database" in result.output


def test_a_device_with_a_clock_far_ahead_is_reported(make_store: Callable[[str], Store], shared: Path,
                                                     tmp_path: Path) -> None:
    a = make_store(DEVICE_A)
    future = Store(tmp_path / "future" / "live.db", device_id=DEVICE_C,
                   wall_clock=lambda: 4_102_444_800_000)  # the year 2100
    try:
        make_supplier(future, "from-the-future")
        sync(future, shared)
        report = sync(a, shared)
        assert any("ahead of this device's clock" in m for m in report.messages)
    finally:
        future.close()


def test_an_unwritable_audit_log_refuses_the_sync_before_anything_changes(pair: tuple[Store, Store],
                                                                           shared: Path) -> None:
    a, b = pair
    make_supplier(b, "acme")
    sync(b, shared)
    audit_file = audit.audit_path_for(a.path)
    audit_file.unlink(missing_ok=True)
    audit_file.mkdir()
    a.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db_fingerprint(a.path)
    with pytest.raises(SyncError, match="audit log cannot be written"):
        sync(a, shared)
    assert db_fingerprint(a.path) == before
    assert a.count("suppliers") == 0 and not a.restore_points()
