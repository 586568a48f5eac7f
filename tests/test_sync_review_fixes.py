"""Sync fixes found in review: an undone sync stays undone, a first sync keeps this device's own
edits to seeded rows, a bad line from one device does not block the others, UNIQUE clashes never
hide user data, and a refused sync leaves no restore point behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from bakestore import audit
from bakestore.store import Store
from bakestore.sync import sync
from tests import test_sync as base
from tests.conftest import DEVICE_A, DEVICE_B, db_fingerprint

# The two-device fixtures of tests/test_sync.py.
shared = base.shared
make_store = base.make_store
pair = base.pair
exchange = base.exchange


def _generation(store: Store) -> str | None:
    row = store.db.execute("SELECT value FROM _bakestore_meta WHERE key = 'sync_generation'").fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- finding 1: undo of a sync


@pytest.mark.parametrize("swap", ["rename", "backup-api"])
def test_undoing_a_sync_and_syncing_again_propagates_the_undo(pair: tuple[Store, Store], shared: Path,
                                                              tmp_path: Path, swap: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The restore point a sync takes holds the previous sync generation; the fast (rename) undo
    made it live as it was, so the next sync ran as a "recovery" without a baseline and the
    merged rows came straight back."""
    if swap == "backup-api":
        monkeypatch.setenv("BAKESTORE_NO_RENAME_SWAP", "1")
    a, b = pair
    row = a.insert("suppliers", {"name": "Acme", "slug": "acme", "notes": "A's notes"})
    exchange([a, b], shared)
    b.update("suppliers", row["id"], {"notes": "B overwrote this"})
    sync(b, shared)
    applied = sync(a, shared)
    assert applied.restore_point is not None and a.get("suppliers", row["id"])["notes"] == "B overwrote this"
    a.undo()
    assert next(audit.read(a.path))["details"].get("swap") == ("rename" if swap == "rename" else None)
    assert a.get("suppliers", row["id"])["notes"] == "A's notes"
    assert _generation(a) is None  # "restored or replaced", whichever way the file became live
    report = sync(a, shared)
    assert report.mode == "baseline" and report.captured["minted_versions"] == 1
    assert a.get("suppliers", row["id"])["notes"] == "A's notes", "the undone sync came back"
    sync(b, shared)
    assert b.get("suppliers", row["id"])["notes"] == "A's notes", "the undo did not reach the other device"
    base.assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- finding 3: one bad line, one device


def _break_a_check_rule(shared: Path, device: str, table: str, row_id: str, field: str, value: Any) -> None:
    """Rewrite ``device``'s snapshot consistently (manifest, sizes and checksums all match) with one
    line whose JSON types are right but which breaks a CHECK rule: a hand-edited file, or a peer
    on another bakestore build."""
    from bakestore.sync import read_snapshot, write_snapshot

    folder = base.device_dir(shared, device)
    snap = read_snapshot(folder, expect_device=device)
    version, line = snap.state.rows[table][row_id]
    row = json.loads(line)
    row[field] = value
    snap.state.rows[table][row_id] = (version, json.dumps(row, sort_keys=True, separators=(",", ":"),
                                                          ensure_ascii=False))
    write_snapshot(folder, snap.state, device_id=device, sequence=99)


def test_a_line_breaking_a_check_rule_skips_only_that_device_and_names_the_line(
        make_store: Callable[[str], Store], shared: Path) -> None:
    """Such a line was accepted when read; every sync then failed in the apply step with a message
    naming no device, file or line, and the device was never skipped: nobody could sync."""
    a, b, c = make_store(DEVICE_A), make_store(DEVICE_B), make_store(base.DEVICE_C)
    exchange([a, b, c], shared, rounds=1)
    bad = base.make_supplier(b, "acme")
    sync(b, shared)
    _break_a_check_rule(shared, DEVICE_B, "suppliers", bad["id"], "slug", "x" * 500)
    good = base.make_supplier(c, "bakers")
    sync(c, shared)
    points_before = a.restore_points()
    report = sync(a, shared)
    assert a.get("suppliers", good["id"])["slug"] == "bakers", "the other devices still sync"
    assert not list(a.rows("suppliers", where="id = ?", params=[bad["id"]]))
    status = {d.device_id: d for d in report.devices}
    assert status[base.DEVICE_C].status == "accepted" and status[DEVICE_B].status == "skipped"
    message = status[DEVICE_B].message or ""
    assert f"bakestore-v1/devices/{DEVICE_B}/tables/suppliers.ndjson:1: suppliers.slug" in message
    assert "\n" not in message and "skipped this round" in message
    assert len(a.restore_points()) == len(points_before) + 1  # for C's rows, which did change A
    # Once B writes a good snapshot again, its rows come through.
    b.update("suppliers", bad["id"], {"notes": "fixed"})
    sync(b, shared)
    sync(a, shared)
    assert a.get("suppliers", bad["id"])["notes"] == "fixed"


def test_a_conflict_copy_with_a_line_breaking_a_check_rule_is_ignored(pair: tuple[Store, Store],
                                                                       shared: Path) -> None:
    a, b = pair
    row = base.make_supplier(b, "acme")
    sync(b, shared)
    tables = base.device_dir(shared, DEVICE_B) / "tables"
    line = json.loads((tables / "suppliers.ndjson").read_text(encoding="utf-8").splitlines()[0])
    line["slug"] = "y" * 500
    (tables / "suppliers.sync-conflict-20260105-101112-ABCDEFG.ndjson").write_text(
        json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    report = sync(a, shared)
    assert a.get("suppliers", row["id"])["slug"] == "acme"
    assert any("suppliers.slug" in d and "ignored" in d for d in report.debris)


def test_a_refused_sync_leaves_no_restore_point(pair: tuple[Store, Store], shared: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync refused at the apply step (the last line of defence) took its restore point first,
    so every retry added one and real restore points were pushed out of retention."""
    import bakestore.sync as sync_module

    a, b = pair
    bad = base.make_supplier(b, "acme")
    sync(b, shared)
    _break_a_check_rule(shared, DEVICE_B, "suppliers", bad["id"], "slug", "x" * 500)
    # Reach the apply step's refusal: switch off the snapshot's CHECK-rule validation.
    monkeypatch.setattr(sync_module.RowRules, "add", lambda self, *args: None)
    points, fingerprint = a.restore_points(), db_fingerprint(a.path)
    for _ in range(3):
        with pytest.raises(base.SyncError, match="breaks a rule of the database"):
            sync(a, shared)
    assert a.restore_points() == points
    assert db_fingerprint(a.path) == fingerprint
    record = next(audit.read(a.path))
    assert record["outcome"] == "refused" and not record.get("restore_point")


def test_a_sync_failing_after_its_restore_point_removes_it(pair: tuple[Store, Store], shared: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bakestore.clock import HybridLogicalClock

    a, b = pair
    base.make_supplier(b, "acme")
    sync(b, shared)
    points, fingerprint = a.restore_points(), db_fingerprint(a.path)
    restore_dir_before = sorted(p.name for p in points[0].parent.iterdir()) if points else []

    def broken(self: Any) -> str:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(HybridLogicalClock, "high_water", property(broken))
    with pytest.raises(OSError):
        sync(a, shared)
    monkeypatch.undo()
    assert a.restore_points() == points and db_fingerprint(a.path) == fingerprint
    if points:
        assert sorted(p.name for p in points[0].parent.iterdir()) == restore_dir_before  # no check record left
    assert next(audit.read(a.path))["outcome"] == "failed"


# --------------------------------------------------------------------------- finding 2: own edits to seeded rows


@pytest.mark.parametrize("seeded_first", ["other device", "this device"])
def test_a_first_sync_keeps_this_devices_edits_to_seeded_rows(make_store: Callable[[str], Store], shared: Path,
                                                              tmp_path: Path, seeded_first: str) -> None:
    """A device used alone for a while edits a recipe category and a unit, then joins: its first
    sync adopted every seed row of the others, silently reverting its own edits."""
    if seeded_first == "other device":
        b = make_store(DEVICE_B)  # older, untouched seed rows
        sync(b, shared)
        a = make_store(DEVICE_A)
    else:
        a = make_store(DEVICE_A)
        b = make_store(DEVICE_B)  # seeded after A: its untouched copies carry *newer* versions
        sync(b, shared)
    a.update("recipe_categories", "cakes", {"name": "Cakes & Tortes", "description": "Layer cakes and sponges"})
    a.update("units", "cup", {"display_name": "US cup (240 ml)"})
    report = sync(a, shared)
    assert report.mode == "first-sync" and report.captured["adopted_seed_rows"] > 0  # the untouched ones
    for store in (a, b):
        if store is b:
            sync(b, shared)
        assert store.get("recipe_categories", "cakes")["name"] == "Cakes & Tortes"
        assert store.get("recipe_categories", "cakes")["description"] == "Layer cakes and sponges"
        assert store.get("units", "cup")["display_name"] == "US cup (240 ml)"
        assert store.get("units", "g")["display_name"] == "gram"
    base.assert_converged([a, b], tmp_path)


def test_two_edits_to_a_seeded_row_on_a_first_sync_compare_by_version(make_store: Callable[[str], Store],
                                                                      shared: Path, tmp_path: Path) -> None:
    a, b = make_store(DEVICE_A), make_store(DEVICE_B)
    a.update("units", "cup", {"display_name": "cup (A, older)"})
    b.update("units", "cup", {"display_name": "cup (B, newer)"})
    sync(b, shared)
    sync(a, shared)
    sync(b, shared)
    for store in (a, b):
        assert store.get("units", "cup")["display_name"] == "cup (B, newer)"
    base.assert_converged([a, b], tmp_path)


def test_a_recovery_round_keeps_this_devices_newer_edit_to_a_seeded_row(pair: tuple[Store, Store],
                                                                        shared: Path, tmp_path: Path) -> None:
    """A round without a baseline (the state DB lags the live DB) adopted every known seed row,
    even over a newer edit made here."""
    from bakestore.sync import state_path_for
    from bakestore.sqlite import sqlite3

    a, b = pair
    a.update("units", "cup", {"display_name": "US cup (240 ml)"})
    conn = sqlite3.connect(str(state_path_for(a.path)))
    with conn:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 7 WHERE key = 'generation'")
    conn.close()
    report = sync(a, shared)
    assert report.mode == "recovery"
    assert a.get("units", "cup")["display_name"] == "US cup (240 ml)"
    sync(b, shared)
    assert b.get("units", "cup")["display_name"] == "US cup (240 ml)"
    base.assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- findings 4 and 6: UNIQUE clashes


def test_the_same_name_created_on_two_devices_hides_no_data(pair: tuple[Store, Store], shared: Path,
                                                            tmp_path: Path) -> None:
    """Both devices create "Flour" before syncing (the commonest first-week situation). The older
    ingredient used to be hidden, and with it (CASCADE) the recipe line that used it, on both
    devices; now it stays visible under a disambiguated name, with its recipe line."""
    a, b = pair
    flour_a = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    bread = a.insert("recipes", {"name": "Bread", "slug": "bread", "category": "Breads"})
    line = a.insert("recipe_ingredients", {"recipe_id": bread["id"], "ingredient_id": flour_a["id"],
                                           "quantity": 3.0, "unit": "cup"})
    flour_b = b.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour",
                                       "notes": "B's"})  # newer: it keeps the name
    exchange([a, b], shared)
    suffix = flour_a["id"].replace("-", "")[-6:]
    for store in (a, b):
        assert store.get("recipe_ingredients", line["id"])["ingredient_id"] == flour_a["id"]
        assert store.get("ingredients", flour_b["id"])["slug"] == "flour"
        renamed = store.get("ingredients", flour_a["id"])
        assert (renamed["display_name"], renamed["slug"]) == (f"Flour ({suffix})", f"flour-{suffix}")
    report = sync(a, shared, dry_run=True)
    assert [(r.rule, r.row_id) for r in report.resolutions] == [("unique-rename", flour_a["id"])]
    assert "display_name 'Flour' is shown as" in report.resolutions[0].detail
    # The user settles it on one device (renames A's flour): the clash is gone everywhere.
    a.update("ingredients", flour_a["id"], {"display_name": "Rye flour", "slug": "rye-flour"})
    exchange([a, b], shared)
    for store in (a, b):
        assert store.get("ingredients", flour_a["id"])["slug"] == "rye-flour"
        assert store.get("recipe_ingredients", line["id"])["ingredient_id"] == flour_a["id"]
    assert sync(a, shared, dry_run=True).resolutions == []
    base.assert_converged([a, b], tmp_path)


def _products_clash_then_the_winner_is_cascaded(a: Store, b: Store, shared: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ing_a = a.insert("ingredients", {"display_name": "Flour A", "slug": "flour-a", "category": "Flour"})
    ing_b = a.insert("ingredients", {"display_name": "Flour B", "slug": "flour-b", "category": "Flour"})
    exchange([a, b], shared)
    older = base.make_product(a, ing_a["id"], slug="king-arthur")
    newer = base.make_product(b, ing_b["id"], slug="king-arthur")
    exchange([a, b], shared)
    # Concurrently: A deletes B's product's ingredient (cascading to the product on A), B edits it.
    a.delete("ingredients", ing_b["id"])
    b.update("products", newer["id"], {"notes": "edited on B"})
    exchange([a, b], shared)
    return older, newer


def test_a_renamed_row_gets_its_value_back_when_the_winner_is_hidden_by_a_cascade(
        pair: tuple[Store, Store], shared: Path, tmp_path: Path) -> None:
    """The winner of a UNIQUE clash hidden by an FK cascade kept its claim: the other row stayed
    hidden (no product left on either device)."""
    a, b = pair
    older, newer = _products_clash_then_the_winner_is_cascaded(a, b, shared)
    for store in (a, b):
        assert [(r["id"], r["slug"]) for r in store.rows("products")] == [(older["id"], "king-arthur")]
    rules = {(r.rule, r.row_id) for r in sync(a, shared, dry_run=True).resolutions}
    assert rules == {("fk-hide-child", newer["id"])}
    base.assert_converged([a, b], tmp_path)


def test_a_hidden_unique_loser_reappears_when_the_winner_is_hidden_by_a_cascade(
        pair: tuple[Store, Store], shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a loser cannot be renamed it is hidden; the joint fixpoint of UNIQUE and FK hiding
    still brings it back when the winner goes."""
    import bakestore.sync as sync_module

    if hasattr(sync_module, "_ViewBuilder"):  # (before renaming existed, every loser was hidden)
        monkeypatch.setattr(sync_module._ViewBuilder, "_valid", lambda self, spec, row: False)
    a, b = pair
    older, newer = _products_clash_then_the_winner_is_cascaded(a, b, shared)
    for store in (a, b):
        assert [(r["id"], r["slug"]) for r in store.rows("products")] == [(older["id"], "king-arthur")]
    base.assert_converged([a, b], tmp_path)


def test_the_same_relationship_recorded_twice_is_merged_and_its_children_re_pointed(
        pair: tuple[Store, Store], shared: Path, tmp_path: Path) -> None:
    """A UNIQUE set of foreign keys only (a composition of the same component into the same
    assembly, made on both devices) cannot be renamed: it is the same thing twice. The older one
    is merged into the newer, and what pointed at it (an inventory assignment) points there: no
    assignment disappears."""
    a, b = pair
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    product = base.make_product(a, flour["id"], slug="flour-5lb")
    items = [a.insert("inventory_items", {"product_id": product["id"], "last_updated": "2026-01-02T10:00:00.000Z"})
             for _ in range(2)]
    box = a.insert("finished_goods", {"slug": "gift-box", "display_name": "Gift box"})
    cookies = a.insert("finished_goods", {"slug": "cookies", "display_name": "Cookies"})
    exchange([a, b], shared)
    made: dict[str, dict[str, Any]] = {}
    for store, item, key in ((a, items[0], "a"), (b, items[1], "b")):
        comp = store.insert("compositions", {"assembly_id": box["id"], "finished_good_id": cookies["id"]})
        made[key] = store.insert("composition_assignments", {
            "composition_id": comp["id"], "inventory_item_id": item["id"], "quantity_assigned": 1.0,
            "assigned_at": "2026-01-03T10:00:00.000Z"})
        made[key + "-comp"] = comp
    exchange([a, b], shared)
    winner, loser = made["b-comp"], made["a-comp"]
    for store in (a, b):
        assert [r["id"] for r in store.rows("compositions")] == [winner["id"]]
        assigned = {r["id"]: r["composition_id"] for r in store.rows("composition_assignments")}
        assert assigned == {made["a"]["id"]: winner["id"], made["b"]["id"]: winner["id"]}
    rules = {(r.rule, r.row_id) for r in sync(a, shared, dry_run=True).resolutions}
    assert rules == {("unique-merge", loser["id"]), ("fk-repoint", made["a"]["id"])}
    base.assert_converged([a, b], tmp_path)


# --------------------------------------------------------------------------- second review


def test_deleting_a_relationship_shown_once_deletes_its_hidden_duplicate(pair: tuple[Store, Store], shared: Path,
                                                                        tmp_path: Path) -> None:
    """Two devices record the same composition; only the newer is shown (unique-merge). The user
    deletes it: the older duplicate no longer clashed and came back everywhere with its older
    values at the next sync."""
    a, b = pair
    box = a.insert("finished_goods", {"slug": "gift-box", "display_name": "Gift box"})
    cookies = a.insert("finished_goods", {"slug": "cookies", "display_name": "Cookies"})
    exchange([a, b], shared)
    older = a.insert("compositions", {"assembly_id": box["id"], "finished_good_id": cookies["id"],
                                      "component_quantity": 2})
    newer = b.insert("compositions", {"assembly_id": box["id"], "finished_good_id": cookies["id"],
                                      "component_quantity": 3})
    exchange([a, b], shared)
    assert [r["id"] for r in a.rows("compositions")] == [newer["id"]]
    a.delete("compositions", newer["id"])
    exchange([a, b], shared)
    for store in (a, b):
        assert list(store.rows("compositions")) == [], "the deleted relationship came back"
    rules = {(r.rule, r.row_id) for r in sync(a, shared, dry_run=True).resolutions}
    assert rules == {("unique-delete", older["id"])}
    # Recorded again after the delete, it is a new act: it shows.
    again = b.insert("compositions", {"assembly_id": box["id"], "finished_good_id": cookies["id"],
                                      "component_quantity": 4})
    exchange([a, b], shared)
    for store in (a, b):
        assert [(r["id"], r["component_quantity"]) for r in store.rows("compositions")] == [(again["id"], 4)]
    base.assert_converged([a, b], tmp_path)


def test_editing_another_column_of_a_renamed_row_keeps_the_suffix_in_the_view(pair: tuple[Store, Store],
                                                                               shared: Path, tmp_path: Path) -> None:
    """The API writes the whole row: a note added to a row shown as 'Flour (3f2a1b)' made the
    suffix its own value for good, on every device."""
    a, b = pair
    mine = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    theirs = b.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    exchange([a, b], shared)
    assert a.get("ingredients", mine["id"])["slug"] != "flour"
    a.update("ingredients", mine["id"], {"notes": "from the mill"})
    exchange([a, b], shared)
    b.delete("ingredients", theirs["id"])  # the clash is gone
    exchange([a, b], shared)
    for store in (a, b):
        row = store.get("ingredients", mine["id"])
        assert (row["display_name"], row["slug"], row["notes"]) == ("Flour", "flour", "from the mill")
    base.assert_converged([a, b], tmp_path)


def test_editing_a_re_pointed_or_nulled_child_keeps_its_own_foreign_key(pair: tuple[Store, Store], shared: Path,
                                                                        tmp_path: Path) -> None:
    """A child re-pointed to the row its parent was merged into (fk-repoint), or with a SET NULL
    column nulled (fk-set-null), took the shown foreign key as its own when another column was
    edited, so it never went back to its own parent."""
    a, b = pair
    flour = a.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
    product = base.make_product(a, flour["id"], slug="flour-5lb")
    items = [a.insert("inventory_items", {"product_id": product["id"], "last_updated": "2026-01-02T10:00:00.000Z"})
             for _ in range(2)]
    box = a.insert("finished_goods", {"slug": "gift-box", "display_name": "Gift box"})
    cookies = a.insert("finished_goods", {"slug": "cookies", "display_name": "Cookies"})
    brownies = a.insert("finished_goods", {"slug": "brownies", "display_name": "Brownies"})
    acme = base.make_supplier(a, "acme")
    bag = base.make_product(a, flour["id"], slug="flour-1lb", preferred_supplier_id=acme["id"])
    exchange([a, b], shared)
    made: dict[str, dict[str, Any]] = {}
    for store, item, key in ((a, items[0], "a"), (b, items[1], "b")):
        comp = store.insert("compositions", {"assembly_id": box["id"], "finished_good_id": cookies["id"]})
        made[key] = store.insert("composition_assignments", {
            "composition_id": comp["id"], "inventory_item_id": item["id"], "quantity_assigned": 1.0,
            "assigned_at": "2026-01-03T10:00:00.000Z"})
        made[key + "-comp"] = comp
    a.delete("suppliers", acme["id"])
    b.update("products", bag["id"], {"notes": "edited on B"})  # after the delete: stays, column nulled
    exchange([a, b], shared)
    assert a.get("composition_assignments", made["a"]["id"])["composition_id"] == made["b-comp"]["id"]
    assert a.get("products", bag["id"])["preferred_supplier_id"] is None
    # The user edits other columns of both children on A.
    a.update("composition_assignments", made["a"]["id"], {"quantity_assigned": 2.0})
    a.update("products", bag["id"], {"notes": "edited on A"})
    exchange([a, b], shared)
    # The clashes go: B records the winner for brownies instead, and edits the supplier after its delete.
    b.update("compositions", made["b-comp"]["id"], {"finished_good_id": brownies["id"]})
    b.insert("suppliers", {**{k: v for k, v in acme.items() if k not in ("row_version",)}, "notes": "back"})
    exchange([a, b], shared)
    for store in (a, b):
        assigned = store.get("composition_assignments", made["a"]["id"])
        assert (assigned["composition_id"], assigned["quantity_assigned"]) == (made["a-comp"]["id"], 2.0)
        assert store.get("products", bag["id"])["preferred_supplier_id"] == acme["id"]
        assert store.get("products", bag["id"])["notes"] == "edited on A"
    base.assert_converged([a, b], tmp_path)


def test_a_first_syncs_old_edit_to_a_seed_row_does_not_beat_a_later_delete(make_store: Callable[[str], Store],
                                                                          shared: Path, tmp_path: Path) -> None:
    """The first-sync seed rule gave this device's edit a fresh version whenever the others' copy
    was untouched, even when they had deleted it since: the deleted unit came back everywhere."""
    a = make_store(DEVICE_A)
    a.update("units", "cup", {"display_name": "A's cup"})  # before B even exists
    b = make_store(DEVICE_B)  # seeded later: newer untouched copies
    sync(b, shared)
    b.delete("units", "cup")
    sync(b, shared)
    report = sync(a, shared)
    assert report.mode == "first-sync" and report.captured["minted_versions"] == 0
    sync(b, shared)
    for store in (a, b):
        assert not list(store.rows("units", where="code = ?", params=["cup"]))
    base.assert_converged([a, b], tmp_path)


def test_a_first_syncs_edit_to_a_seed_row_made_after_the_delete_brings_it_back(
        make_store: Callable[[str], Store], shared: Path, tmp_path: Path) -> None:
    b = make_store(DEVICE_B)
    a = make_store(DEVICE_A)
    sync(b, shared)
    b.delete("units", "cup")
    sync(b, shared)
    a.update("units", "cup", {"display_name": "A's cup"})  # after B's delete
    sync(a, shared)
    sync(b, shared)
    for store in (a, b):
        assert [r["display_name"] for r in store.rows("units", where="code = ?", params=["cup"])] == ["A's cup"]
    base.assert_converged([a, b], tmp_path)


def test_a_seed_row_deleted_before_the_first_sync_stays_deleted_when_a_later_device_joins(
        make_store: Callable[[str], Store], shared: Path, tmp_path: Path) -> None:
    """The deleting device published only a tombstone; a device seeded later took its untouched
    copy as new, and its newer seed version beat the tombstone."""
    b = make_store(DEVICE_B)
    b.delete("units", "clamshell")
    sync(b, shared)
    c = make_store(base.DEVICE_C)
    report = sync(c, shared)
    assert report.mode == "first-sync" and report.captured["rows"] == 0
    sync(b, shared)
    for store in (b, c):
        assert not list(store.rows("units", where="code = ?", params=["clamshell"]))
    base.assert_converged([b, c], tmp_path)


def test_rows_several_devices_bring_alike_are_checked_once_and_status_checks_none(
        make_store: Callable[[str], Store], shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each snapshot was checked separately against the stored state: on a first sync every row
    of every device went through the CHECK rules again, and so on every --status."""
    import bakestore.sync as sync_module
    from bakestore.sync import read_snapshot, sync_status

    b, c = make_store(DEVICE_B), make_store(base.DEVICE_C)
    exchange([b, c], shared)
    for i in range(30):
        base.make_supplier(b, f"supplier-{i}")
    exchange([b, c], shared)
    states = [read_snapshot(base.device_dir(shared, d), expect_device=d).state for d in (DEVICE_B, base.DEVICE_C)]
    assert states[0] == states[1]
    distinct = states[0].row_count + len(states[0].tombs)
    checked: list[Any] = []
    real_add = sync_module.RowRules.add
    monkeypatch.setattr(sync_module.RowRules, "add", lambda self, *args: (checked.append(args), real_add(self, *args)))
    a = make_store(DEVICE_A)
    status = sync_status(a, shared)
    assert checked == [] and any("not checked" in m for m in status.messages)
    assert {d.device_id: d.status for d in status.devices}[DEVICE_B] == "accepted"
    report = sync(a, shared)
    assert report.mode == "first-sync" and len(checked) == distinct
    assert a.get("suppliers", next(iter(b.rows("suppliers", where="slug = 'supplier-7'")))["id"])["slug"] == "supplier-7"


@pytest.mark.parametrize("fault", ["sync-before-live-commit", "sync-after-live-commit"])
def test_a_sync_killed_around_its_commit_leaves_no_stray_restore_point(pair: tuple[Store, Store], shared: Path,
                                                                       tmp_path: Path, fault: str) -> None:
    """The restore point was taken before COMMIT under its listed name: a SIGKILL in between left
    the restore point of a sync that never committed (the newest one `undo` would pick)."""
    import os
    import subprocess
    import sys

    from bakestore.restore import restore_point_dir
    from bakestore.sqlite import sqlite3

    a, b = pair
    row = base.make_supplier(a, "acme")
    sync(a, shared)
    points = b.restore_points()
    b_path, wall = b.path, b._wall
    b.close()
    script = ("from bakestore.store import Store; from bakestore.sync import sync; "
              f"s = Store({str(b_path)!r}, device_id={DEVICE_B!r}); sync(s, {str(shared)!r})")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "BAKESTORE_FAULT": fault},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    b2 = Store(b_path, device_id=DEVICE_B, wall_clock=wall)
    try:
        assert b2.restore_points() == points, "a restore point of an unfinished sync is listed"
        hidden = [p.name for p in restore_point_dir(b_path).iterdir() if p.name.startswith(".sync-pending-")]
        assert hidden  # kept out of sight until the next sync settles it
        committed = fault == "sync-after-live-commit"
        assert bool(list(b2.rows("suppliers", where="id = ?", params=[row["id"]]))) == committed
        report = sync(b2, shared)
        assert not [p for p in restore_point_dir(b_path).iterdir() if p.name.startswith(".sync-pending-")]
        new_points = [p for p in b2.restore_points() if p not in points]
        assert len(new_points) == 1  # the killed sync's (published), or this sync's own: never both
        if committed:
            assert report.restore_point is None and report.changed_rows == 0
            point = sqlite3.connect(f"file:{new_points[0]}?mode=ro", uri=True)
            try:  # the content before the killed sync: without the supplier it brought
                assert point.execute("SELECT count(*) FROM suppliers WHERE id = ?", [row["id"]]).fetchone() == (0,)
            finally:
                point.close()
        else:
            assert report.restore_point == new_points[0] and report.changed_rows > 0
        assert b2.get("suppliers", row["id"])["slug"] == "acme"
    finally:
        b2.close()
