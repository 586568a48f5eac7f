"""The parallel paths (carving in a forked worker) give exactly the report of one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bakestore.forensics import analyze
from bakestore.forensics import analysis
from tests.forensics_corpus import build_rollback, build_wal

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork workers are Linux-only")


def _doc(report: Any) -> str:
    doc = report.to_dict()
    for key in ("meta", "file", "integrity"):  # times and case paths differ between runs
        doc.pop(key)
    return json.dumps(doc, sort_keys=True, default=repr)


@pytest.mark.parametrize("build", [
    lambda d: build_rollback(d, secure_delete=False, n_recipes=300, n_big=6),
    lambda d: build_wal(d, secure_delete=False, n_recipes=250, n_big=4),
], ids=["rollback", "wal"])
def test_two_workers_give_the_same_report_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    db = build(tmp_path / "src")
    one = analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    monkeypatch.setattr(analysis, "PARALLEL_MIN_PAGES", 0)
    monkeypatch.setattr(analysis, "_CHUNK", 3)  # many alternating slices even on a small file
    import os as _os

    forks: list[int] = []
    real_fork = _os.fork

    def counting_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(_os, "fork", counting_fork)
    two = analyze(db.path, tmp_path / "two", integrity="none", workers=2)
    assert forks, "the parallel path must really have run (no other thread: fork is allowed)"
    assert one.recovered, "the corpus must yield recovered rows for the comparison to mean anything"
    assert _doc(one) == _doc(two)
    for name in ("report.json", "report.md"):
        assert (tmp_path / "two" / name).exists()


def test_a_failing_worker_costs_time_not_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=200, n_big=2)
    one = analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    monkeypatch.setattr(analysis, "PARALLEL_MIN_PAGES", 0)
    monkeypatch.setattr(analysis, "_CHUNK", 2)

    def broken(item: Any) -> Any:  # runs only in the worker (packing its results): it dies there
        raise RuntimeError("worker failure")

    monkeypatch.setattr(analysis, "_pack", broken)
    two = analyze(db.path, tmp_path / "two", integrity="none", workers=2)
    assert _doc(one) == _doc(two)


def test_case_db_written_by_a_worker_matches_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=200, n_big=2)
    analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    analyze(db.path, tmp_path / "two", integrity="none", workers=2)

    def dump(case: Path) -> dict[str, list[Any]]:
        conn = sqlite3.connect(case / "case.db")
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {n: conn.execute(f"SELECT * FROM [{n}] ORDER BY rowid").fetchall() for n in names
                    if n not in ("file_info", "evidence")}
        finally:
            conn.close()

    one, two = dump(tmp_path / "one"), dump(tmp_path / "two")
    assert one["recovered_rows"] and one == two


def test_no_fork_while_other_threads_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os as _os
    import threading

    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=120, n_big=2)
    monkeypatch.setattr(analysis, "PARALLEL_MIN_PAGES", 0)
    monkeypatch.setattr(_os, "fork", lambda: (_ for _ in ()).throw(AssertionError("forked beside a thread")))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="an-application-thread")
    other.start()
    try:
        report = analyze(db.path, tmp_path / "case", integrity="none", workers=2)
    finally:
        stop.set()
        other.join()
    assert report.recovered
