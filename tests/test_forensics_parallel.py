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


def _analyze_in_a_fresh_process(tmp_path: Path, db_path: Path, case: Path, *, chunk: int,
                                broken_worker: bool = False) -> dict[str, Any]:
    """analyze(workers=2) in a new, single-threaded process (fork is refused beside foreign threads,
    and earlier tests in this pytest worker may have left some, e.g. Datasette's write threads).
    Returns the number of forks and the report document."""
    import os as _os
    import subprocess

    script = (
        "import json, os, sys\n"
        "from bakestore.forensics import analysis, analyze\n"
        "analysis.PARALLEL_MIN_PAGES = 0\n"
        f"analysis._CHUNK = {chunk}\n"
        "forks = []\n"
        "real_fork = os.fork\n"
        "def counting_fork():\n"
        "    forks.append(1)\n"
        "    return real_fork()\n"
        "os.fork = counting_fork\n"
        + ("def broken(item):\n    raise RuntimeError('worker failure')\nanalysis._pack = broken\n"
           if broken_worker else "")
        + "report = analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
        "doc = report.to_dict()\n"
        "for key in ('meta', 'file', 'integrity'):\n"
        "    doc.pop(key)\n"
        "out = {'forks': len(forks), 'doc': json.dumps(doc, sort_keys=True, default=repr)}\n"
        "open(sys.argv[3], 'w').write(json.dumps(out))\n"
    )
    out = tmp_path / f"{case.name}.json"
    subprocess.run([sys.executable, "-c", script, str(db_path), str(case), str(out)], check=True,
                   env={**_os.environ, "BAKESTORE_HOME": str(tmp_path / "home")})
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result["forks"] > 0, "the parallel path must really have run"
    return result


@pytest.mark.parametrize("build", [
    lambda d: build_rollback(d, secure_delete=False, n_recipes=300, n_big=6),
    lambda d: build_wal(d, secure_delete=False, n_recipes=250, n_big=4),
], ids=["rollback", "wal"])
def test_two_workers_give_the_same_report_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    db = build(tmp_path / "src")
    one = analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    child = _analyze_in_a_fresh_process(tmp_path, db.path, tmp_path / "two", chunk=3)
    assert one.recovered, "the corpus must yield recovered rows for the comparison to mean anything"
    assert _doc(one) == child["doc"]
    for name in ("report.json", "report.md"):
        assert (tmp_path / "two" / name).exists()


def test_a_failing_worker_costs_time_not_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=200, n_big=2)
    one = analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    # _pack runs only in the worker (packing its results): broken there, the worker dies.
    child = _analyze_in_a_fresh_process(tmp_path, db.path, tmp_path / "two", chunk=2, broken_worker=True)
    assert _doc(one) == child["doc"]


def test_case_db_written_by_a_worker_matches_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    db = build_rollback(tmp_path / "src", secure_delete=False, n_recipes=200, n_big=2)
    analyze(db.path, tmp_path / "one", integrity="none", workers=1)
    _analyze_in_a_fresh_process(tmp_path, db.path, tmp_path / "two", chunk=64)

    def dump(case: Path) -> dict[str, list[Any]]:
        conn = sqlite3.connect(case / "case.db")
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            out = {n: conn.execute(f"SELECT rowid, * FROM [{n}] ORDER BY rowid").fetchall() for n in names
                   if n not in ("file_info", "evidence")}
            # the same objects in the same order (a worker's tables are copied in, not recreated anyhow)
            out["sqlite_master"] = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                                "ORDER BY rowid").fetchall()
            return out
        finally:
            conn.close()

    one, two = dump(tmp_path / "one"), dump(tmp_path / "two")
    assert one["recovered_rows"] and one == two
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["case.db", "evidence", "report.json",
                                                                    "report.md"]  # no staging file left


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
