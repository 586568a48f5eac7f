"""Evidence safety: originals are never changed, copies are faithful, SQLite only sees a second copy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bakestore.errors import ForensicsError
from bakestore.forensics import analyze, collect
from tests.forensics_corpus import build_persist


def _state(path: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            out[suffix] = (hashlib.sha256(p.read_bytes()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


WRITER = textwrap.dedent("""
    import sys
    from bakestore.sqlite import sqlite3
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("BEGIN")
    for i in range(300):
        conn.execute("INSERT INTO notes (body) VALUES (?)", (f"MK{i:07d}Z note",))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.execute("DELETE FROM notes WHERE id % 2 = 0")
    print("ready", flush=True)
    sys.stdin.readline()  # keep the connection (and its locks) open until told to stop
    conn.close()
""")


def test_wal_database_with_open_writer_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        before = _state(db)
        assert "-wal" in before and "-shm" in before
        report = analyze(db, tmp_path / "case")
        after = _state(db)
        assert after == before
        assert report.file["originals_changed"] == []
        assert all(e["unchanged_after_analysis"] and e["copy_matches"] for e in report.file["evidence"])
        assert {e["role"] for e in report.file["evidence"]} == {"db", "wal", "shm"}
        # The WAL was read: 150 rows live, the 150 deleted ones recovered from older images.
        notes = next(t for t in report.tables if t["name"] == "notes")
        assert notes["rows"] == 150
        assert len([r for r in report.recovered if r.table == "notes"]) == 150
        assert report.wal["committed_frames"] > 0
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)


def test_persist_journal_is_copied_and_read(tmp_path: Path) -> None:
    db = build_persist(tmp_path / "p").path
    before = _state(db)
    assert "-journal" in before
    report = analyze(db, tmp_path / "case")
    assert _state(db) == before
    assert report.journal["present"] and report.journal["records"] > 0


def test_copies_are_read_only_and_hashed(tmp_path: Path) -> None:
    db = build_persist(tmp_path / "p").path
    ev = collect(db, tmp_path / "case")
    for f in ev.files.values():
        copy = Path(f.copy)
        assert copy.parent == tmp_path / "case" / "evidence"
        assert f.sha256_copy == f.sha256_original == hashlib.sha256(copy.read_bytes()).hexdigest()
        assert not os.access(copy, os.W_OK) or os.geteuid() == 0
        assert os.stat(copy).st_mode & 0o222 == 0
        assert os.stat(copy).st_mtime_ns == f.mtime_ns


def test_case_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    db = build_persist(tmp_path / "p").path
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "x").write_text("previous case")
    with pytest.raises(ForensicsError, match="not empty"):
        analyze(db, tmp_path / "case")
    with pytest.raises(ForensicsError, match="no such file"):
        analyze(tmp_path / "missing.db", tmp_path / "case2")


def test_sqlite_only_opens_the_second_copy(tmp_path: Path) -> None:
    db = build_persist(tmp_path / "p").path
    analyze(db, tmp_path / "case")
    evidence = sorted(p.name for p in (tmp_path / "case" / "evidence").iterdir())
    assert evidence == ["corpus.db", "corpus.db-journal"]
    # SQLite opened only work/ (where it may roll back or checkpoint); evidence/ is byte-identical.
    assert (tmp_path / "case" / "work" / "corpus.db").exists()
    ev_hash = hashlib.sha256((tmp_path / "case" / "evidence" / "corpus.db").read_bytes()).hexdigest()
    assert ev_hash == hashlib.sha256(db.read_bytes()).hexdigest()


HOT = textwrap.dedent("""
    import sys
    from bakestore.sqlite import sqlite3
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("BEGIN")
    for i in range(2000):
        conn.execute("INSERT INTO notes (body) VALUES (?)", (f"MK{i:07d}Z " + "flour " * 20,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA cache_size = 2")  # force the delete to spill into the main file
    conn.execute("BEGIN")
    conn.execute("DELETE FROM notes WHERE id % 2 = 0")
    print("ready", flush=True)
    sys.stdin.readline()
""")


def test_hot_journal_of_an_interrupted_transaction(tmp_path: Path) -> None:
    """A crash mid-transaction leaves a hot journal: its pre-images hold the deleted rows."""
    live = tmp_path / "live" / "crash.db"
    live.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOT, str(live)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        snap = tmp_path / "snap"
        snap.mkdir()
        for suffix in ("", "-journal"):
            src = live.with_name(live.name + suffix)
            (snap / src.name).write_bytes(src.read_bytes())
    finally:
        proc.kill()
        proc.wait(timeout=30)
    report = analyze(snap / "crash.db", tmp_path / "case")
    assert report.journal["header_valid"] and report.journal["hot"]
    assert report.journal["records"] > 0 and report.journal["records_checksum_ok"] == report.journal["records"]
    assert any(f["kind"] == "journal" for f in report.findings)
