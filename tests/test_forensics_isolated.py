"""Forensics for callers that hold connections: the evidence is read by a child process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakestore.errors import ForensicsError
from bakestore.forensics import analyze_isolated
from bakestore.store import Store

from .conftest import DEVICE_A, db_fingerprint


def test_analysis_runs_in_a_child_while_this_process_holds_a_write_lock(tmp_path: Path) -> None:
    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        store.insert("recipients", {"name": "Ann"})
        store.db.conn.execute("BEGIN IMMEDIATE")  # this process holds the write lock
        before = db_fingerprint(store.path)
        case = analyze_isolated(store.path, tmp_path / "case", integrity="quick")
        # Still ours: had a plain close() in this process dropped our locks, another writer could
        # now get in; here the lock holds, and the evidence is untouched.
        assert store.db.conn.in_transaction
        store.db.conn.execute("ROLLBACK")
        assert db_fingerprint(store.path) == before
    report = json.loads((case / "report.json").read_text(encoding="utf-8"))
    assert {"file", "header", "pages", "recovered"} <= set(report)


def test_errors_come_back_as_one_line(tmp_path: Path) -> None:
    with pytest.raises(ForensicsError) as info:
        analyze_isolated(tmp_path / "missing.db", tmp_path / "case")
    assert "missing.db" in str(info.value) and "\n" not in str(info.value)
