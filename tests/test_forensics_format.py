"""The raw reader against SQLite itself: varints, records, headers, schemas, WAL checksums, journals."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakestore.forensics.analysis import parse_database
from bakestore.forensics.fileformat import (canonical_record, decode_record, encode_varint, parse_create_table,
                                            parse_header, read_varint, serial_type_of)
from bakestore.forensics.fileformat import _fallback_schema  # noqa: PLC2701 - tested directly
from bakestore.forensics.journal import parse_journal
from bakestore.forensics.wal import parse_wal
from bakestore.sqlite import sqlite3
from tests.forensics_corpus import build_persist, build_rollback, build_wal


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_varint_roundtrip(n: int) -> None:
    raw = encode_varint(n)
    assert 1 <= len(raw) <= 9
    assert read_varint(raw + b"\xff", 0) == (n, len(raw))


values = st.one_of(st.none(), st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
                   st.floats(allow_nan=False), st.text(max_size=300), st.binary(max_size=300))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(values, values, values), min_size=1, max_size=40))
def test_reader_decodes_what_sqlite_wrote(tmp_path_factory: pytest.TempPathFactory,
                                          rows: list[tuple[Any, Any, Any]]) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a, b, c)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    expected = conn.execute("SELECT rowid, a, b, c FROM t ORDER BY rowid").fetchall()
    conn.close()
    db = parse_database(path.read_bytes())
    got = [(rowid, *vals) for rowid, vals in db.tables["t"].rows]
    assert got == expected
    for _, vals in db.tables["t"].rows:
        sts_body = [serial_type_of(v, "utf-8") for v in vals]
        rec = canonical_record([s for s, _ in sts_body], b"".join(b for _, b in sts_body))
        assert decode_record(rec, "utf-8") == vals


def test_header_fields_match_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 8192")
    conn.execute("PRAGMA user_version = 42")
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 100)
    conn.commit()
    conn.execute("DELETE FROM t")
    conn.commit()
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    data = path.read_bytes()
    h = parse_header(data, len(data))
    assert (h.page_size, h.user_version, h.application_id) == (8192, 42, 1234)
    assert (h.page_count, h.freelist_count, h.page_count_trusted) == (pages, free, True)
    assert h.problems == [] and h.encoding == "utf-8" and h.journal_mode_hint == "rollback"


def test_garbage_header_is_reported_not_raised() -> None:
    h = parse_header(b"hello", 5)
    assert not h.magic_ok and h.page_size == 4096
    assert any("magic" in p for p in h.problems) and any("only 5 bytes" in p for p in h.problems)


@pytest.mark.parametrize("sql, names, alias, without_rowid", [
    ('CREATE TABLE "odd ""name""" ([a b] INTEGER PRIMARY KEY, `c` TEXT NOT NULL DEFAULT (\'x,y\'), '
     'd REAL CHECK (d > 0), CONSTRAINT u UNIQUE (c))', ["a b", "c", "d"], 0, False),
    ("CREATE TABLE w (k TEXT, v BLOB, PRIMARY KEY (k)) WITHOUT ROWID", ["k", "v"], None, False),
    ("CREATE TABLE g (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL, c TEXT)", ["a", "c"], None, False),
    ("CREATE TABLE f (id INTEGER, parent INTEGER REFERENCES f(id), PRIMARY KEY (id))", ["id", "parent"], 0, False),
])
def test_schema_parsing(sql: str, names: list[str], alias: int | None, without_rowid: bool) -> None:
    name = sql.split("(")[0].split("TABLE", 1)[1].strip()
    name = name.strip('"').replace('""', '"')
    ts = parse_create_table(name, sql, 2)
    assert ts.column_names == names
    assert ts.rowid_alias == alias
    if "WITHOUT ROWID" in sql:
        assert ts.without_rowid
    fb = _fallback_schema("f", "CREATE TABLE f (id INTEGER, parent INTEGER REFERENCES f(id), "
                               "name TEXT NOT NULL, PRIMARY KEY (id))", 2)
    assert fb.column_names == ["id", "parent", "name"] and fb.rowid_alias == 0 and fb.columns[2].notnull
    assert fb.related == {"f"}


def test_wal_frames_validated_by_salt_and_checksum(tmp_path: Path) -> None:
    db = build_wal(tmp_path / "w", secure_delete=False, n_recipes=100, n_big=2)
    wal_path = db.path.with_name(db.path.name + "-wal")
    data = bytearray(wal_path.read_bytes())
    info = parse_wal(bytes(data), 4096)
    assert info.magic_ok and info.header_checksum_ok
    committed = [f for f in info.frames if f.state == "committed"]
    assert committed and committed[-1].commit_size > 0 and info.summary()["commits"] >= 3
    # Flip one byte in the middle frame's page: it and every later frame become invalid.
    mid = info.frames[len(info.frames) // 2]
    data[mid.data_offset + 100] ^= 0xFF
    broken = parse_wal(bytes(data), 4096)
    states = [f.state for f in broken.frames]
    assert states[mid.index - 1] == "invalid"
    assert all(s in ("invalid", "stale") for s in states[mid.index - 1:])
    # A different salt in a frame header marks it as stale (an older WAL generation).
    data2 = bytearray(wal_path.read_bytes())
    last = info.frames[-1]
    struct.pack_into(">I", data2, last.offset + 8, info.salt1 - 1)
    assert parse_wal(bytes(data2), 4096).frames[-1].state == "stale"


def test_persist_journal_without_header(tmp_path: Path) -> None:
    db = build_persist(tmp_path / "p")
    data = db.path.with_name(db.path.name + "-journal").read_bytes()
    info = parse_journal(data, 4096, 100)
    assert info.header_zeroed and not info.header_valid
    assert info.records and all(r.checksum_ok for r in info.records)
    assert info.sector_size in (512, 4096)


def test_page_census_counts_ptrmap_and_freelist(tmp_path: Path) -> None:
    db = build_rollback(tmp_path / "av", secure_delete=False, n_recipes=300, n_big=4, auto_vacuum="incremental")
    conn = sqlite3.connect(db.path)
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    parsed = parse_database(db.path.read_bytes())
    kinds: dict[str, int] = {}
    for pg in range(1, parsed.current_pages + 1):
        k = parsed.page_kind.get(pg, "orphan")
        kinds[k] = kinds.get(k, 0) + 1
    assert parsed.current_pages == pages
    assert kinds.get("freelist_leaf", 0) + kinds.get("freelist_trunk", 0) == free
    assert kinds.get("ptrmap", 0) >= 1 and kinds.get("orphan", 0) == 0
    assert parsed.freelist.errors == []


def test_schema_sql_from_evidence_cannot_act(tmp_path: Path) -> None:
    """CREATE text comes from the file; anything but a plain CREATE TABLE is only parsed as text."""
    target = tmp_path / "attached.db"
    for sql in (f"ATTACH DATABASE '{target}' AS e", f"CREATE TABLE x (a); ATTACH '{target}' AS e",
                "CREATE TABLE x AS SELECT 1 AS a"):
        ts = parse_create_table("x", sql, 2)
        assert ts.parse_note.startswith("parsed without SQLite")
    assert not target.exists()
    ts = parse_create_table("x", "CREATE TABLE x (a INTEGER PRIMARY KEY, c REAL CHECK (abs(c) > 0))", 2)
    assert ts.parse_note == "" and ts.rowid_alias == 0
