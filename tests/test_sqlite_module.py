"""bakestore.sqlite: the one SQLite module, and the None adapter it registers for speed."""

from __future__ import annotations

from bakestore.sqlite import sqlite3


def test_none_still_binds_as_null_with_the_adapter_registered() -> None:
    assert sqlite3.adapters.get((type(None), sqlite3.PrepareProtocol)) is not None
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b TEXT, c INTEGER NOT NULL DEFAULT 7)")
    conn.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(None, None), (1, "x"), (None, "")])
    assert conn.execute("SELECT typeof(a), typeof(b), a IS NULL, b IS NULL FROM t ORDER BY rowid").fetchall() == [
        ("null", "null", 1, 1), ("integer", "text", 0, 0), ("null", "text", 1, 0)]
    # Named parameters and NOT NULL checks behave as before: None is NULL, not a value.
    conn.execute("INSERT INTO t (a, b) VALUES (:a, :b)", {"a": None, "b": None})
    try:
        conn.execute("INSERT INTO t (c) VALUES (?)", (None,))
    except sqlite3.IntegrityError as exc:
        assert "NOT NULL" in str(exc)
    else:  # pragma: no cover - would mean None bound as something else
        raise AssertionError("None was not bound as NULL")
