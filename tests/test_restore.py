"""The restore pipeline: dry run, replace, undo, reset, merge, and what never happens to the live file."""

from __future__ import annotations

import fcntl
import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import bakestore.sqlite
from bakestore import audit, fileswap, restore
from bakestore.errors import (
    ForeignKeyError,
    LockedError,
    RestoreError,
    ShrinkRefusedError,
    SourceError,
    ValidationError,
)
from bakestore.registry import REGISTRY
from bakestore.sqlite import sqlite3
from bakestore.store import Store

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint
from .test_exports import export_bytes, leftovers, populate_every_table


def _checkpointed_fingerprint(store: Store) -> dict[str, str | None]:
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db_fingerprint(store.path)


def _tables(store: Store, folder: Path, name: str) -> dict[str, bytes]:
    return export_bytes(store.export(folder, name=name).path, tables_only=True)


@pytest.fixture
def populated(store: Store) -> Store:
    populate_every_table(store)
    return store


def _change_a_little(store: Store) -> dict[str, str]:
    """One changed ingredient, one new recipient, one deleted alias."""
    ingredient = next(store.rows("ingredients"))["id"]
    store.update("ingredients", ingredient, {"notes": "changed after the export"})
    recipient = store.insert("recipients", {"name": "New neighbour"})["id"]
    alias = next(store.rows("ingredient_aliases"))["id"]
    store.delete("ingredient_aliases", alias)
    return {"ingredient": ingredient, "recipient": recipient, "alias": alias}


# --------------------------------------------------------------------------- dry run and replace


def test_dry_run_changes_nothing_and_reports_the_diff(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path, name="e")
    _change_a_little(populated)
    before = _checkpointed_fingerprint(populated)
    result = populated.restore(exported.path, dry_run=True)
    assert result.dry_run and result.restore_point is None
    assert db_fingerprint(populated.path) == before
    assert restore.list_restore_points(populated.path) == []
    assert leftovers(tmp_path) == []
    diff = result.diff
    assert (diff["ingredients"].changed, diff["ingredients"].added, diff["ingredients"].removed) == (1, 0, 0)
    assert (diff["recipients"].before, diff["recipients"].after, diff["recipients"].removed) == (2, 1, 1)
    assert (diff["ingredient_aliases"].before, diff["ingredient_aliases"].after) == (0, 1)
    assert diff["ingredient_aliases"].added == 1
    assert diff["_tombstones"].removed == 1  # the alias's tombstone is not in the export
    assert all(d.unchanged for t, d in diff.items()
               if t not in ("ingredients", "recipients", "ingredient_aliases", "_tombstones"))
    assert result.as_dict()["diff"]["recipients"] == {"before": 2, "after": 1, "added": 0, "removed": 1,
                                                       "changed": 0}


def test_restore_replaces_content_and_is_audited(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path, name="e")
    changed = _change_a_little(populated)
    steps: list[str] = []
    result = populated.restore(exported.path, progress=lambda table, done, total: steps.append(table))
    assert steps[-1] == REGISTRY.exported_tables[-1].name
    assert _tables(populated, tmp_path, "after") == export_bytes(exported.path, tables_only=True)
    assert populated.get("ingredients", changed["ingredient"])["notes"] != "changed after the export"
    assert result.restore_point is not None and result.restore_point.exists()
    record = next(audit.read(populated.path, limit=1))
    assert record["id"] == result.audit_id
    assert (record["operation"], record["outcome"]) == ("restore", "done")
    assert record["source"] == f"export folder {exported.path}"
    assert len(record["source_sha256"]) == 64 and record["restore_point"] == str(result.restore_point)
    assert record["counts_before"]["recipients"] == 2 and record["counts_after"]["recipients"] == 1
    assert record["pid"] == os.getpid() and record["user"] and record["cwd"] and record["argv"]
    assert leftovers(tmp_path) == []
    # The store's own connection keeps working and its clock never goes below the restored rows.
    high = max(r["row_version"] for r in populated.rows("ingredients"))
    assert populated.insert("recipients", {"name": "After"})["row_version"] > high


def test_confirmation_refused_changes_nothing(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path, name="e")
    _change_a_little(populated)
    before = _checkpointed_fingerprint(populated)
    with pytest.raises(RestoreError, match="cancelled"):
        restore.replace_contents(populated, exported.path, confirm=lambda result: False)
    assert db_fingerprint(populated.path) == before
    assert restore.list_restore_points(populated.path) == []


def test_restore_from_a_bakestore_db_file(populated: Store, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(tmp_path / "other.db", device_id=DEVICE_B) as other:
        populate_every_table(other, tag="other")
        expected = _tables(other, tmp_path, "other")
    loaded: list[str] = []
    real_load = restore._load_table
    monkeypatch.setattr(restore, "_load_table", lambda conn, spec, *a: loaded.append(spec.name) or real_load(
        conn, spec, *a))
    populated.restore(tmp_path / "other.db", allow_shrink=True)
    assert loaded == [], "a .db with this bakestore's exact schema is copied page by page, not row by row"
    assert _tables(populated, tmp_path, "after") == expected
    assert populated.check().ok


def test_restore_from_a_db_with_another_page_size_rebuilds_row_by_row(populated: Store, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big-pages.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 8192")
    conn.execute("VACUUM")
    conn.close()
    with Store(path, device_id=DEVICE_B) as other:
        populate_every_table(other, tag="other")
        expected = _tables(other, tmp_path, "other")
    loaded: list[str] = []
    real_load = restore._load_table
    monkeypatch.setattr(restore, "_load_table", lambda conn, spec, *a: loaded.append(spec.name) or real_load(
        conn, spec, *a))
    populated.restore(path, allow_shrink=True)
    assert "recipes" in loaded
    assert populated.db.execute("PRAGMA page_size").fetchone()[0] == 4096  # the live page size is kept
    assert _tables(populated, tmp_path, "after") == expected


def test_live_page_size_is_kept(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA page_size = 16384")
    conn.execute("VACUUM")
    conn.close()
    with Store(tmp_path / "src.db", device_id=DEVICE_B) as source:
        populate_every_table(source)
        exported = source.export(tmp_path, name="e")
    with Store(live, device_id=DEVICE_A) as store:
        store.restore(exported.path)
        assert store.db.execute("PRAGMA page_size").fetchone()[0] == 16384
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert _tables(store, tmp_path, "after") == export_bytes(exported.path, tables_only=True)


# --------------------------------------------------------------------------- undo and reset


def test_undo_restores_the_previous_content_and_is_itself_undoable(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path, name="e")
    _change_a_little(populated)
    changed = _tables(populated, tmp_path, "changed")
    restored = export_bytes(exported.path, tables_only=True)
    assert changed != restored
    populated.restore(exported.path)
    assert _tables(populated, tmp_path, "t1") == restored

    first = populated.undo()
    assert _tables(populated, tmp_path, "t2") == changed
    assert first.restore_point is not None and first.restore_point.name.endswith("-undo.db")
    second = populated.undo()  # undo the undo
    assert _tables(populated, tmp_path, "t3") == restored
    assert second.restore_point != first.restore_point
    records = list(audit.read(populated.path, limit=3))
    assert [(r["operation"], r["outcome"]) for r in records] == [("undo", "done"), ("undo", "done"),
                                                                 ("restore", "done")]
    assert records[0]["details"]["restore_point_used"] == str(first.restore_point)
    assert populated.check().ok


def test_undo_dry_run_and_nothing_to_undo(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no restore point"):
        store.undo()
    record = next(audit.read(store.path, limit=1))
    assert (record["operation"], record["outcome"]) == ("undo", "refused")
    populate_every_table(store)
    exported = store.export(tmp_path, name="e")
    store.insert("recipients", {"name": "extra"})
    store.restore(exported.path)
    before = _checkpointed_fingerprint(store)
    result = store.undo(dry_run=True)
    assert result.diff["recipients"].added == 1
    assert db_fingerprint(store.path) == before


def test_reset_is_shrink_guarded_audited_and_undoable(populated: Store, tmp_path: Path) -> None:
    before_content = _tables(populated, tmp_path, "before")
    before = _checkpointed_fingerprint(populated)
    with pytest.raises(ShrinkRefusedError, match=r"would empty .*ingredients \(2 → 0\)"):
        populated.reset()
    assert db_fingerprint(populated.path) == before
    assert next(audit.read(populated.path, limit=1))["outcome"] == "refused"

    result = populated.reset(allow_shrink=True)
    counts = {spec.name: populated.count(spec.name) for spec in REGISTRY.exported_tables}
    assert counts.pop("units") == 35 and counts.pop("recipe_categories") == 7
    assert set(counts.values()) == {0}
    assert result.restore_point is not None
    record = next(audit.read(populated.path, limit=1))
    assert (record["operation"], record["outcome"]) == ("reset", "done")
    assert record["counts_before"]["ingredients"] == 2 and record["counts_after"]["ingredients"] == 0
    populated.undo()
    assert _tables(populated, tmp_path, "back") == before_content


def test_restore_points_keep_their_order_within_one_millisecond(store: Store,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore.time, "time", lambda: 1_767_225_600.123)
    made = [restore.make_restore_point(store.path, op) for op in ("restore", "merge", "undo", "restore")]
    assert restore.list_restore_points(store.path) == made[::-1]
    assert len({p.name for p in made}) == 4
    monkeypatch.setattr(restore.time, "time", lambda: 1_767_225_000.0)  # the clock went back
    older_clock = restore.make_restore_point(store.path, "reset")
    assert restore.list_restore_points(store.path)[0] == older_clock


def test_restore_points_are_pruned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        restore.make_restore_point(store.path, "restore")
    assert len(restore.prune_restore_points(store.path, keep=3)) == 2
    assert len(restore.list_restore_points(store.path)) == 3


# --------------------------------------------------------------------------- merge


def test_merge_is_all_or_nothing(populated: Store, tmp_path: Path) -> None:
    """A source row that clashes with the store deep in the table order rolls back every table."""
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        populate_every_table(b, tag="b")
        clash = b.insert("recipes", {"name": "Clash", "slug": "sugar_cookies_0", "category": "Cakes"})
        exported = b.export(tmp_path, name="b")
    content = _tables(populated, tmp_path, "before")
    before = _checkpointed_fingerprint(populated)
    with pytest.raises(ValidationError, match=r"recipes.*slug.*clashes"):
        populated.merge(exported.path)
    assert _tables(populated, tmp_path, "after") == content
    populated.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db_fingerprint(populated.path)["db"] == before["db"]
    assert next(audit.read(populated.path, limit=1))["outcome"] == "refused"
    assert populated.count("recipes") == 2 and clash["id"] not in {r["id"] for r in populated.rows("recipes")}


def test_merge_refuses_references_found_nowhere(populated: Store, tmp_path: Path) -> None:
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        populate_every_table(b, tag="b")
        exported = b.export(tmp_path, name="b")
    # Drop the ingredients file's rows: the aliases in the source now point nowhere (not in the
    # source, not in the store) and the merge must refuse everything.
    folder = exported.path
    from .test_restore_bad_sources import _set_file

    _set_file(folder, "ingredients", b"")
    content = _tables(populated, tmp_path, "before")
    with pytest.raises(ForeignKeyError, match=r"ingredient_\w+.ndjson:1: ingredient_\w+.ingredient_id: no ingredients row"):
        populated.merge(folder)
    assert _tables(populated, tmp_path, "after") == content


def test_merge_newest_version_wins(populated: Store, tmp_path: Path) -> None:
    old = populated.export(tmp_path, name="old")
    recipient = next(populated.rows("recipients"))["id"]
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        b.restore(old.path)
        populated.update("recipients", recipient, {"notes": "newer, in the store"})
        # An older copy does not overwrite the newer row …
        result = populated.merge(old.path)
        assert populated.get("recipients", recipient)["notes"] == "newer, in the store"
        assert result.diff["recipients"].changed == 0
        # … and the newer copy replaces the older one elsewhere.
        newer = populated.export(tmp_path, name="newer")
        result = b.merge(newer.path)
        assert b.get("recipients", recipient)["notes"] == "newer, in the store"
        assert result.diff["recipients"].changed == 1
        assert result.restore_point is not None
        assert (next(audit.read(b.path, limit=1))["operation"], next(audit.read(b.path, limit=1))["outcome"]) == (
            "merge", "done")


def test_merge_applies_tombstones(populated: Store, tmp_path: Path) -> None:
    ingredient = next(populated.rows("ingredient_aliases"))["ingredient_id"]
    populated.insert("ingredient_aliases", {"ingredient_id": ingredient, "alias": "second alias"})
    shared = populated.export(tmp_path, name="shared")
    aliases = [r["id"] for r in populated.rows("ingredient_aliases")]
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        b.restore(shared.path)
        populated.delete("ingredient_aliases", aliases[0])
        after_delete = populated.export(tmp_path, name="deleted")
        before = _checkpointed_fingerprint(b)
        preview = b.merge(after_delete.path, dry_run=True)
        assert preview.diff["ingredient_aliases"].removed == 1
        assert db_fingerprint(b.path) == before
        result = b.merge(after_delete.path)
        assert (result.diff["ingredient_aliases"].before, result.diff["ingredient_aliases"].after) == (2, 1)
        assert aliases[0] not in {r["id"] for r in b.rows("ingredient_aliases")}
        assert aliases[0] in {r["row_id"] for r in b.rows("_tombstones")}


def test_merge_keeps_a_row_edited_after_the_delete(populated: Store, tmp_path: Path) -> None:
    shared = populated.export(tmp_path, name="shared")
    alias = next(populated.rows("ingredient_aliases"))["id"]
    with Store(tmp_path / "b.db", device_id=DEVICE_B) as b:
        b.restore(shared.path)
        populated.delete("ingredient_aliases", alias)
        deleted = populated.export(tmp_path, name="deleted")
        b.update("ingredient_aliases", alias, {"alias": "edited later"})
        b.merge(deleted.path)
        assert b.get("ingredient_aliases", alias)["alias"] == "edited later"


# --------------------------------------------------------------------------- what never happens to the live file


def _path_of(database: Any) -> str:
    text = str(database)
    if text.startswith("file:"):
        text = urllib.parse.unquote(text[5:].split("?", 1)[0])
    return os.path.realpath(text)


@pytest.mark.parametrize("swap", ["backup-api", "rename"])
def test_no_delete_statement_ever_runs_against_the_live_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  swap: str) -> None:
    if swap == "backup-api":
        monkeypatch.setenv(fileswap.DISABLE_ENV, "1")
    statements: list[tuple[str, str]] = []
    real_connect = sqlite3.connect

    def traced_connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        conn = real_connect(database, *args, **kwargs)
        target = _path_of(database)
        conn.set_trace_callback(lambda sql: statements.append((target, sql)))
        return conn

    monkeypatch.setattr(bakestore.sqlite.sqlite3, "connect", traced_connect)
    monkeypatch.setattr(restore.sqlite3, "connect", traced_connect)
    live = tmp_path / "live.db"
    with Store(live, device_id=DEVICE_A) as store:
        populate_every_table(store)
        exported = store.export(tmp_path, name="e")
        _change_a_little(store)
        with Store(tmp_path / "other.db", device_id=DEVICE_B) as other:
            populate_every_table(other, tag="o")
        statements.clear()

        store.restore(exported.path)
        store.undo()
        store.restore(tmp_path / "other.db", allow_shrink=True)
        with pytest.raises(ShrinkRefusedError):
            store.reset()
        store.reset(allow_shrink=True)

        on_live = [sql for target, sql in statements if target == os.path.realpath(live)]
        if swap == "backup-api":
            assert any(sql.startswith("VACUUM INTO") for sql in on_live)  # the trace does see the live file
            assert any("wal_checkpoint" in sql for sql in on_live)
        else:  # the probe that proves nobody else has the file open (fileswap._exclusive)
            assert any(sql.startswith("PRAGMA journal_mode = DELETE") for sql in on_live)
            assert any(r["details"].get("swap") == "rename-built" for r in audit.read(live, limit=20))
        deletes = [sql for sql in on_live if sql.lstrip().upper().startswith("DELETE")]
        assert deletes == []
        # Stronger: no SQL statement writes to the live file at all; only the backup API's page
        # copy (which is no statement) changes it.
        writes = [sql for sql in on_live
                  if sql.lstrip().upper().split(" ", 1)[0] in {"INSERT", "UPDATE", "REPLACE", "DROP", "CREATE", "ALTER"}]
        assert writes == []
        # … and the detector works: an ordinary delete through the Store is seen.
        store.delete("recipients", next(store.rows("recipients"))["id"]) if store.count("recipients") else None
        store.insert("recipients", {"name": "x"})
        store.delete("recipients", next(store.rows("recipients"))["id"])
        assert any(sql.lstrip().upper().startswith("DELETE") for target, sql in statements
                   if target == os.path.realpath(live))


def test_a_reader_keeps_its_snapshot_until_it_ends_its_transaction(populated: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore, "CHECKPOINT_TIMEOUT_S", 0.3)
    exported = populated.export(tmp_path, name="e")
    populated.insert_many("recipients", [{"name": f"r{i}"} for i in range(5)])
    reader = sqlite3.connect(f"file:{populated.path}?mode=ro", uri=True, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM recipients").fetchone()[0] == 6
        populated.restore(exported.path, allow_shrink=True)  # the checkpoint gives up; the swap does not wait
        assert reader.execute("SELECT count(*) FROM recipients").fetchone()[0] == 6
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM recipients").fetchone()[0] == 1
    finally:
        reader.close()
    assert populated.count("recipients") == 1


def test_another_operation_holding_the_lock_is_refused_and_audited(populated: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    exported = populated.export(tmp_path, name="e")
    monkeypatch.setattr(restore, "LOCK_TIMEOUT_S", 0.2)
    fd = os.open(str(populated.path) + ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = _checkpointed_fingerprint(populated)
        with pytest.raises(LockedError, match="another bakestore operation"):
            populated.restore(exported.path)
        with pytest.raises(LockedError):
            populated.merge(exported.path)
        assert db_fingerprint(populated.path) == before
    finally:
        os.close(fd)
    assert next(audit.read(populated.path, limit=1))["outcome"] == "refused"
    populated.restore(exported.path)


def test_files_left_by_a_killed_operation_are_swept(populated: Store, tmp_path: Path) -> None:
    exported = populated.export(tmp_path, name="e")
    stale = [tmp_path / ".live.db.fresh-0123456789ab", tmp_path / ".live.db.fresh-0123456789ab-journal"]
    for path in stale:
        path.write_bytes(b"half-built")
    points = restore.restore_point_dir(populated.path)
    points.mkdir()
    (points / ".20250101T000000000Z-000-restore.db.tmp-abcd1234").write_bytes(b"half-vacuumed")
    assert len(leftovers(tmp_path)) == 3
    populated.restore(exported.path)
    assert leftovers(tmp_path) == []


def test_failed_swap_leaves_the_live_file_and_names_the_restore_point(populated: Store, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    exported = populated.export(tmp_path, name="e")
    _change_a_little(populated)
    content = _tables(populated, tmp_path, "before")

    def failing_swap(fresh: Path, live: Path, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(restore, "swap_in", failing_swap)
    monkeypatch.setenv(fileswap.DISABLE_ENV, "1")  # the backup-API swap (a rename cannot fail this way)
    with pytest.raises(RestoreError, match="restore failed: disk I/O error; the live database was not changed"):
        populated.restore(exported.path)
    assert _tables(populated, tmp_path, "after") == content
    record = next(audit.read(populated.path, limit=1))
    assert record["outcome"] == "failed" and "disk I/O error" in record["reason"]
    assert leftovers(tmp_path) == []


def test_source_copies_of_the_template_are_independent(populated: Store, tmp_path: Path) -> None:
    """Restoring from a copy of the live file is fine (only the live file itself is refused)."""
    populated.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    conn = sqlite3.connect(populated.path)
    conn.execute("VACUUM INTO ?", [str(copy)])
    conn.close()
    populated.insert("recipients", {"name": "only in live"})
    result = populated.restore(copy)
    assert result.diff["recipients"].removed == 1
    shutil.rmtree(restore.restore_point_dir(populated.path))


def test_audit_records_of_one_millisecond_keep_their_order(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    for i in range(6):  # ids out of order, as when two processes write in the same millisecond
        audit.write(db, audit.AuditRecord(operation=f"op{i}", db_path=str(db), outcome="done",
                                          at="2026-01-01T00:00:00.000Z", id=f"id-{[3, 0, 5, 1, 4, 2][i]}"))
    assert [r["operation"] for r in audit.read(db)] == [f"op{i}" for i in reversed(range(6))]
    assert [r["operation"] for r in audit.read(db, limit=2)] == ["op5", "op4"]
