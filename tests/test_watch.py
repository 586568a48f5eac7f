"""The watcher: debounce (injected clock), event filtering (synthetic events), and real observers:
a commit is exported within the debounce window, nothing is exported when nothing changed, a
restore or a deleted export folder does not break it, only changed tables are re-serialized, a
locked database is retried, Ctrl-C/SIGTERM stop it cleanly, and its status file tells the truth.

Every wait is a wait-until with a timeout, never a bare sleep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

import bakestore.exports as exports_module
from bakestore.errors import WatchError
from bakestore.exports import MANIFEST, list_exports
from bakestore.sqlite import sqlite3
from bakestore.store import Store
from bakestore.watch import Debouncer, Watcher, _Handler, start_watch, status_path_for, watcher_status

QUIET, MAX_WAIT = 0.1, 0.5


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until truthy; fail the test with a clear message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def table_bytes(export: Path, table: str) -> bytes:
    return (export / f"{table}.ndjson").read_bytes()


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def watch(store: Store, export_dir: Path) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(**kwargs: Any) -> Watcher:
        options = {"quiet": QUIET, "max_wait": MAX_WAIT, "poll": 30.0, **kwargs}
        watcher = Watcher(store.path, export_dir, **options).start()
        started.append(watcher)
        wait_until(lambda: watcher.stats.exports + watcher.stats.skipped_identical >= 1)  # the start-up export
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


# --------------------------------------------------------------------------- debounce and filtering (no threads)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_debouncer_fires_after_quiet_period() -> None:
    clock = FakeClock()
    debouncer = Debouncer(0.25, 2.0, clock=clock)
    assert debouncer.remaining() is None and not debouncer.take()
    debouncer.mark()
    assert debouncer.remaining() == pytest.approx(0.25)
    clock.now += 0.2
    debouncer.mark()  # another event restarts the quiet period (trailing edge)
    clock.now += 0.2
    assert not debouncer.take() and debouncer.remaining() == pytest.approx(0.05)
    clock.now += 0.05
    assert debouncer.take()
    assert not debouncer.pending and not debouncer.take()


def test_debouncer_caps_a_continuous_burst_at_max_wait() -> None:
    clock = FakeClock()
    debouncer = Debouncer(0.25, 2.0, clock=clock)
    fired = []
    for step in range(40):  # an event every 0.125 s for 5 s: never 0.25 s of silence
        clock.now = 100.0 + step * 0.125  # exact in binary floating point
        debouncer.mark()
        if debouncer.take():
            fired.append(step)
    # fires 2.0 s after the first event of each burst (steps 0 and 17), not when the writer stops
    assert fired == [16, 33]


def test_debouncer_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Debouncer(1.0, 0.5)


def test_watcher_refuses_negative_retention_counts(store: Store, export_dir: Path) -> None:
    # Before the fix a negative keep_last was taken as 1 at every prune: all but the newest deleted.
    for kwargs in ({"keep_last": -1}, {"keep_daily": -3}):
        with pytest.raises(WatchError, match="at least 0"):
            Watcher(store.path, export_dir, **kwargs)
    assert not export_dir.exists()


def test_handler_keeps_only_writes_to_the_database_files(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    marks: list[int] = []
    handler = _Handler(db, lambda: marks.append(1))
    relevant = [
        FileModifiedEvent(str(tmp_path / "x.db-wal")),  # every WAL commit
        FileCreatedEvent(str(tmp_path / "x.db-journal")),  # rollback mode
        FileDeletedEvent(str(tmp_path / "x.db")),
        FileMovedEvent(str(tmp_path / ".x.db.tmp"), str(tmp_path / "x.db")),  # a swap by rename
        FileModifiedEvent(str(tmp_path / "x.db")),  # a checkpoint
    ]
    noise = [
        FileModifiedEvent(str(tmp_path / "x.db-shm")),
        FileOpenedEvent(str(tmp_path / "x.db")),
        FileClosedNoWriteEvent(str(tmp_path / "x.db")),
        FileModifiedEvent(str(tmp_path / "other.db-wal")),
        FileModifiedEvent(str(tmp_path / "x.db.watch.json")),
        FileModifiedEvent(str(tmp_path / "x.db.audit.db-wal")),
        DirModifiedEvent(str(tmp_path)),
    ]
    for event in noise:
        handler.dispatch(event)
    assert marks == []
    for event in relevant:
        handler.dispatch(event)
    assert len(marks) == len(relevant)


# --------------------------------------------------------------------------- real observers


@pytest.mark.parametrize("force_polling", [False, True], ids=["inotify", "polling"])
def test_commit_produces_an_export_within_the_debounce_window(store: Store, watch: Callable[..., Watcher],
                                                              export_dir: Path, force_polling: bool) -> None:
    watcher = watch(force_polling=force_polling)
    assert watcher.stats.exports == 1 and len(list_exports(export_dir)) == 1
    committed = time.monotonic()
    store.insert("suppliers", {"name": "Acme", "slug": "acme"})
    wait_until(lambda: len(list_exports(export_dir)) == 2)
    latency = time.monotonic() - committed
    limit = MAX_WAIT + (1.5 if force_polling else 1.0)  # polling adds its own interval
    assert latency <= limit, f"export took {latency:.2f}s"
    newest = list_exports(export_dir)[-1]
    assert b'"slug":"acme"' in table_bytes(newest, "suppliers")
    assert json.loads((newest / MANIFEST).read_text())["total_rows"] == store.count("suppliers") + 42


def test_no_export_when_nothing_changed(store: Store, watch: Callable[..., Watcher], export_dir: Path,
                                        db_path: Path) -> None:
    watcher = watch()
    checks = watcher.stats.checks
    # Reads and a TRUNCATE checkpoint raise file events and bump data_version, with no content change.
    list(store.rows("units"))
    other = sqlite3.connect(str(db_path))
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        other.close()
    watcher.notify()
    wait_until(lambda: watcher.stats.checks > checks and watcher.wait_idle(0))
    assert watcher.stats.exports == 1 and len(list_exports(export_dir)) == 1
    # A restarted watcher compares with the newest export on disk: still nothing new.
    watcher.stop()
    again = Watcher(db_path, export_dir, quiet=QUIET, max_wait=MAX_WAIT).start()
    try:
        wait_until(lambda: again.stats.checks >= 1 and again.wait_idle(0))
        assert again.stats.exports == 0 and again.stats.skipped_identical == 1
        assert len(list_exports(export_dir)) == 1
    finally:
        again.stop()


def test_restore_while_watching_does_not_break_it(store: Store, watch: Callable[..., Watcher],
                                                  export_dir: Path) -> None:
    watcher = watch()
    store.insert("suppliers", {"name": "Acme", "slug": "acme"})
    first = wait_until(lambda: len(list_exports(export_dir)) == 2 and list_exports(export_dir)[-1])
    store.insert("suppliers", {"name": "Bakers", "slug": "bakers"})
    wait_until(lambda: len(list_exports(export_dir)) == 3)
    store.restore(first)  # backup-API swap of the whole content
    restored = wait_until(lambda: len(list_exports(export_dir)) == 4 and list_exports(export_dir)[-1])
    assert table_bytes(restored, "suppliers") == table_bytes(first, "suppliers")
    store.insert("suppliers", {"name": "Cakes", "slug": "cakes"})
    latest = wait_until(lambda: len(list_exports(export_dir)) == 5 and list_exports(export_dir)[-1])
    assert b'"slug":"cakes"' in table_bytes(latest, "suppliers") and watcher.running
    store.undo()  # the other kind of swap
    wait_until(lambda: len(list_exports(export_dir)) == 6)


def test_deleted_export_folder_is_recreated(store: Store, watch: Callable[..., Watcher], export_dir: Path) -> None:
    watch()
    shutil.rmtree(export_dir)
    store.insert("suppliers", {"name": "Acme", "slug": "acme"})
    export = wait_until(lambda: list_exports(export_dir) and list_exports(export_dir)[-1])
    assert b'"slug":"acme"' in table_bytes(export, "suppliers")
    assert len(list(export.glob("*.ndjson"))) == len(json.loads((export / MANIFEST).read_text())["tables"])


def test_incremental_export_rewrites_only_the_changed_table(store: Store, watch: Callable[..., Watcher],
                                                            export_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real_write_table = exports_module.write_table

    def spy(db: Any, spec: Any, path: Path) -> Any:
        written.append(spec.name)
        return real_write_table(db, spec, path)

    monkeypatch.setattr(exports_module, "write_table", spy)
    watcher = watch()
    assert len(written) == len(json.loads((list_exports(export_dir)[0] / MANIFEST).read_text())["tables"])
    written.clear()
    row = store.insert("suppliers", {"name": "Acme", "slug": "acme"})
    wait_until(lambda: len(list_exports(export_dir)) == 2)
    assert written == ["suppliers"] and watcher.stats.last_tables_rewritten == ["suppliers"]
    written.clear()
    store.delete("suppliers", row["id"])
    wait_until(lambda: len(list_exports(export_dir)) == 3)
    assert sorted(written) == ["_tombstones", "suppliers"]
    # The reused files are the previous export's bytes, and the result is a complete export.
    first, _, last = list_exports(export_dir)
    assert table_bytes(last, "units") == table_bytes(first, "units")


def test_a_damaged_previous_export_is_not_carried_forward(store: Store, export_dir: Path) -> None:
    """The previous auto-export's file was truncated (at a line boundary) after it was written; an
    unrelated table changes. The next incremental export used to re-hash and reuse the damaged
    file, so it verified with rows missing."""
    from bakestore.exports import ExportFolderSource

    store.insert_many("suppliers", [{"name": f"S{i}", "slug": f"s{i}"} for i in range(5)])
    watcher = Watcher(store.path, export_dir, poll=3600)
    try:
        first = watcher.check()
        assert first is not None
        damaged = first.path / "suppliers.ndjson"
        lines = damaged.read_bytes().splitlines(keepends=True)
        os.unlink(damaged)
        damaged.write_bytes(b"".join(lines[:2]))
        store.insert("recipients", {"name": "Grandma"})
        second = watcher.check()
    finally:
        watcher.close()
    assert second is not None
    ExportFolderSource(second.path).verify()
    assert {e["name"]: e["rows"] for e in second.manifest["tables"]}["suppliers"] == 5
    assert table_bytes(second.path, "suppliers").count(b"\n") == 5
    assert sorted(watcher.stats.last_tables_rewritten) == ["recipients", "suppliers"]


def _killed_between_the_two_renames(store: Store, export_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                    before: Callable[[], None] | None = None) -> Path:
    """Export once, then (after ``before``) insert a row and let the next export die between its
    two renames; returns the complete export it left in .watch-staging."""
    import bakestore.watch as watch_module

    staging = export_dir / ".watch-staging"
    first = Watcher(store.path, export_dir, poll=3600)
    try:
        assert first.check() is not None
        if before is not None:
            before()
        store.insert("recipients", {"name": "Grandma"})
        real_replace = os.replace

        def killed(src: Any, dst: Any) -> None:
            if Path(src).parent == staging and not Path(src).name.startswith("."):  # the second rename
                raise KeyboardInterrupt("killed between the two renames")
            real_replace(src, dst)

        monkeypatch.setattr(watch_module.os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            first.check()
        monkeypatch.setattr(watch_module.os, "replace", real_replace)
    finally:
        first.close()
    [left] = list(staging.iterdir())
    return left


def test_an_export_left_between_the_two_renames_is_promoted_or_removed(store: Store, export_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A watcher killed after the export's folder was renamed inside .watch-staging but before it
    was renamed into the export folder left a complete export there that nothing ever removed."""
    from bakestore.exports import ExportFolderSource

    staging = export_dir / ".watch-staging"
    left = _killed_between_the_two_renames(store, export_dir, monkeypatch)
    assert (left / MANIFEST).is_file() and len(list_exports(export_dir)) == 1
    # A stale, older leftover and a half-removed one (no manifest) go; the newer complete one is promoted.
    older = staging / "bakestore-export-20000101T000000000Z"
    shutil.copytree(left, older)
    torn = staging / "bakestore-export-20991231T235959999Z"
    torn.mkdir()
    (torn / "units.ndjson").write_bytes(b"")
    second = Watcher(store.path, export_dir, poll=3600)
    try:
        assert second.check(force=True) is None  # the promoted export already holds this content
    finally:
        second.close()
    assert not staging.exists()
    exports = list_exports(export_dir)
    assert [p.name for p in exports][-1] == left.name and len(exports) == 2
    ExportFolderSource(exports[-1]).verify()
    assert b"Grandma" in table_bytes(exports[-1], "recipients")


def test_a_hand_named_export_does_not_make_a_staged_export_look_old(store: Store, export_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery compared a staged export with the last folder by name, and a hand-named export
    (``my-backup`` sorts after ``bakestore-export-…``) made a valid newer staged export look old:
    it was deleted."""
    def hand_named_copy() -> None:  # the user's own copy of the first export
        shutil.copytree(list_exports(export_dir)[-1], export_dir / "my-backup")

    left = _killed_between_the_two_renames(store, export_dir, monkeypatch, before=hand_named_copy)
    second = Watcher(store.path, export_dir, poll=3600)
    try:
        assert second.check(force=True) is None  # the promoted export already holds this content
    finally:
        second.close()
    names = [p.name for p in list_exports(export_dir)]
    assert left.name in names and "my-backup" in names and len(names) == 3
    assert b"Grandma" in table_bytes(export_dir / left.name, "recipients")


def test_write_outside_the_api_is_still_exported(store: Store, watch: Callable[..., Watcher],
                                                 export_dir: Path) -> None:
    """An edit that keeps count, max(rowid) and max(row_version) is caught by data_version."""
    watch()
    with store.write():
        store.db.execute("UPDATE units SET display_name = 'gramme' WHERE code = 'g'")
    export = wait_until(lambda: len(list_exports(export_dir)) == 2 and list_exports(export_dir)[-1])
    assert b'"display_name":"gramme"' in table_bytes(export, "units")


def test_a_continuous_writer_is_exported_before_it_stops(store: Store, watch: Callable[..., Watcher],
                                                         export_dir: Path) -> None:
    exported_at: list[float] = []
    watch(quiet=0.3, max_wait=0.6, on_export=lambda result: exported_at.append(time.monotonic()))
    stop = threading.Event()

    def writer() -> None:
        with Store(store.path, device_id=store.device_id) as other:
            n = 0
            while not stop.is_set():
                other.insert("suppliers", {"name": f"S{n}", "slug": f"s-{n}"})
                n += 1
                stop.wait(0.05)  # faster than the quiet period: silence never comes

    thread = threading.Thread(target=writer)
    started = time.monotonic()
    thread.start()
    try:
        wait_until(lambda: len(exported_at) >= 2, timeout=10)
    finally:
        stop.set()
        thread.join()
    assert exported_at[1] - started <= 3.0


def test_locked_database_is_retried(tmp_path: Path, export_dir: Path) -> None:
    db = tmp_path / "rollback.db"
    Store(db, device_id="a" * 32).close()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")  # a writer's EXCLUSIVE lock blocks readers here
    watcher = Watcher(db, export_dir, quiet=QUIET, max_wait=MAX_WAIT, busy_timeout=0.05).start()
    try:
        wait_until(lambda: watcher.stats.exports == 1)
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE units SET display_name = 'gramme' WHERE code = 'g'")
        watcher.notify()
        wait_until(lambda: (watcher_status(db) or {}).get("state") == "locked")
        assert watcher.stats.errors >= 1
        conn.execute("COMMIT")
        export = wait_until(lambda: len(list_exports(export_dir)) == 2 and list_exports(export_dir)[-1])
        assert b'"display_name":"gramme"' in table_bytes(export, "units")
        wait_until(lambda: (watcher_status(db) or {}).get("state") == "watching")
    finally:
        conn.close()
        watcher.stop()


def test_database_replaced_by_rename_is_followed(store: Store, watch: Callable[..., Watcher], export_dir: Path,
                                                 db_path: Path, tmp_path: Path) -> None:
    watch()
    copy = tmp_path / "offline.db"
    store.insert("suppliers", {"name": "Acme", "slug": "acme"})
    store.db.execute("VACUUM INTO ?", [str(copy)])
    wait_until(lambda: len(list_exports(export_dir)) == 2)
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(str(copy))
    conn.execute("UPDATE suppliers SET name = 'Acme Offline'")
    conn.commit()
    conn.close()
    os.replace(copy, db_path)  # the offline swap: a new inode under the same name
    export = wait_until(lambda: len(list_exports(export_dir)) == 3 and list_exports(export_dir)[-1])
    assert b'"name":"Acme Offline"' in table_bytes(export, "suppliers")


# --------------------------------------------------------------------------- status, lifecycle, CLI


def test_status_file_reports_state_and_stale_pids(store: Store, export_dir: Path, db_path: Path) -> None:
    assert watcher_status(db_path) is None
    watcher = start_watch(db_path, export_dir, quiet=QUIET, max_wait=MAX_WAIT)
    try:
        wait_until(lambda: watcher.stats.exports == 1)
        status = wait_until(lambda: (s := watcher_status(db_path)) and s.get("last_export") and s)
        assert status["pid"] == os.getpid() and status["state"] == "watching"
        assert status["last_export"]["path"] == str(list_exports(export_dir)[-1])
        assert status["started_at"] and status["last_check"]
        with pytest.raises(WatchError, match="already watched"):
            Watcher(db_path, export_dir).start()
    finally:
        watcher.stop()
    assert watcher_status(db_path)["state"] == "stopped"
    # A watcher killed without cleaning up: its pid is gone, so the dashboard must say stopped.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = status_path_for(db_path)
    status = json.loads(path.read_text())
    path.write_text(json.dumps({**status, "state": "watching", "pid": dead.pid}))
    assert watcher_status(db_path)["state"] == "stopped" and watcher_status(db_path)["stale"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_watch_stops_cleanly_on_a_signal(store: Store, db_path: Path, export_dir: Path,
                                             sig: signal.Signals) -> None:
    store.close()
    proc = subprocess.Popen([sys.executable, "-m", "bakestore", "--db", str(db_path), "watch", "--to",
                             str(export_dir), "--quiet-ms", "50", "--max-wait-ms", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: list_exports(export_dir) and (watcher_status(db_path) or {}).get("state") == "watching",
                   timeout=30)
        with Store(db_path, device_id="a" * 32) as writer:
            writer.insert("suppliers", {"name": "Acme", "slug": "acme"})
        wait_until(lambda: len(list_exports(export_dir)) == 2, timeout=15)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert stderr.count("exported ") == 2 and "stopped: 2 export(s) written" in stderr
    assert watcher_status(db_path)["state"] == "stopped"
    assert not [p for p in export_dir.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_cli_watch_refuses_a_missing_database(runner: Any, tmp_path: Path) -> None:
    from bakestore.cli import main

    result = runner.invoke(main, ["--db", str(tmp_path / "nope.db"), "watch"])
    assert result.exit_code == 1 and "no such database" in result.output


def test_a_merge_that_changes_rows_in_place_is_exported_in_full(tmp_path: Path) -> None:
    import json as _json
    import shutil

    from bakestore.store import Store as _Store
    from bakestore.watch import Watcher as _Watcher

    one = tmp_path / "a" / "one.db"
    one.parent.mkdir()
    with _Store(one, device_id="a" * 32) as s:
        s.insert("ingredients", {"display_name": "A", "slug": "a_ing", "category": "Flour"})
        s.insert("ingredients", {"display_name": "B", "slug": "b_ing", "category": "Flour"})
    two = tmp_path / "b" / "two.db"
    two.parent.mkdir()
    shutil.copy(one, two)
    with _Store(two, device_id="b" * 32) as s:
        s.update("ingredients", "a_ing", {"notes": "REMOTE EDIT"})
        s.insert("suppliers", {"name": "Sup", "slug": "sup"})
        remote = s.export(tmp_path / "exp2").path
    with _Store(one, device_id="a" * 32) as s:
        s.update("ingredients", "b_ing", {"notes": "local, later"})
    watcher = _Watcher(one, tmp_path / "auto", quiet=0.05, max_wait=0.1, poll=3600)
    try:
        assert watcher.check(full=True) is not None
        with _Store(one, device_id="a" * 32) as s:
            s.merge(remote)
        result = watcher.check()
    finally:
        watcher.close()
    assert result is not None
    exported = {r["slug"]: r["notes"] for r in
                map(_json.loads, (result.path / "ingredients.ndjson").read_text(encoding="utf-8").splitlines())}
    assert exported == {"a_ing": "REMOTE EDIT", "b_ing": "local, later"}
