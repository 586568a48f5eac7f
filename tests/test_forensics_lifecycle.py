"""What a failed, killed or timed-out analysis leaves behind: no process, no partial case.db, no
staging file; and a WAL that claims more pages than exist does not make the analysis read them."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bakestore.errors import ForensicsError
from bakestore.forensics import analyze, analyze_isolated, parse_database
from bakestore.forensics import casedb
from bakestore.forensics.wal import parse_wal, wal_checksum
from tests.conftest import processes_with
from tests.forensics_corpus import build_rollback, build_wal

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork workers and /proc are Linux-only")

#: Prepended to every script run in a fresh process: a slow carving (so a child is surely still
#: carving when its parent fails or dies) that counts, in a file, the work items each child carved.
SLOW_CARVING = """\
import os, sys, time
from bakestore.forensics import analysis
PARENT = os.getpid()
analysis.PARALLEL_MIN_PAGES = 0
analysis._CHUNK = 1
real_carve = analysis._carve_pages
def slow_carve(db, carver, pages, frames):
    if os.getpid() != PARENT:
        with open(os.environ["CARVED_LOG"], "a") as log:
            log.write("item\\n")
        time.sleep(0.4)
    return real_carve(db, carver, pages, frames)
analysis._carve_pages = slow_carve
def child_carving():
    while not os.path.exists(os.environ["CARVED_LOG"]):
        time.sleep(0.01)
"""


def _wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _run(tmp_path: Path, script: str, *args: str, marker: str | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh, single-threaded process (forks are refused beside foreign threads)."""
    env = {**os.environ, "BAKESTORE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT),
           "CARVED_LOG": str(tmp_path / "carved.log")}
    if marker:
        env["BAKESTORE_TEST_MARKER"] = marker
    # Output to files, not pipes: a pipe stays open (and run() waits) while any child of the
    # script still runs, and whether one does is what the tests look at.
    with open(tmp_path / "stdout", "w+") as out, open(tmp_path / "stderr", "w+") as err:
        done = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=ROOT, stdout=out, stderr=err,
                              text=True, timeout=120)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, out.read(), err.read())


def _carved_items(tmp_path: Path) -> int:
    log = tmp_path / "carved.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = build_rollback(tmp_path_factory.mktemp("lifecycle") / "src", secure_delete=False, n_recipes=200, n_big=2)
    return Path(db.path)


def _page_count(path: Path) -> int:
    return path.stat().st_size // int.from_bytes(path.read_bytes()[16:18], "big")


# --------------------------------------------------------------------------- forked children die with their parent


@linux_only
def test_a_parent_killed_while_its_child_carves_leaves_no_process(tmp_path: Path, corpus: Path) -> None:
    assert _page_count(corpus) >= 20, "the child must have more work (0.4 s an item) than the test waits for"
    marker = uuid.uuid4().hex
    script = SLOW_CARVING + (
        "import signal\n"
        "def killed(db, *a, **k):\n"
        "    child_carving()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # runs while the child carves\n"
        "import bakestore.forensics.timeline as tl\n"
        "tl.live_timeline = killed\n"
        "analysis.analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
    )
    child = _run(tmp_path, script, str(corpus), str(tmp_path / "case"), marker=marker)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert _carved_items(tmp_path) > 0, "the carving child must have been running"
    assert _wait_gone(marker) == [], "the carving child outlived the analysis that forked it"
    assert _carved_items(tmp_path) < _page_count(corpus) // 2


@linux_only
def test_a_parent_killed_while_its_child_writes_case_db_leaves_no_process_and_no_case_db(
        tmp_path: Path, corpus: Path) -> None:
    marker = uuid.uuid4().hex
    flag = tmp_path / "writer-started"
    script = (
        "import os, signal, sys, time\n"
        "from bakestore.forensics import analysis, casedb, report\n"
        "import bakestore.forensics.timeline as tl\n"
        "report.PARALLEL_MIN_ITEMS = 0\n"
        "real = casedb.write_recovered_rows\n"
        "def slow(path, *a):\n"
        "    open(sys.argv[3], 'w').close()\n"
        "    time.sleep(8)  # the parent dies meanwhile\n"
        "    real(path, *a)\n"
        "casedb.write_recovered_rows = slow\n"
        "def killed(*a, **k):\n"
        "    while not os.path.exists(sys.argv[3]):\n"
        "        time.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "tl.build_timeline = killed\n"
        "analysis.analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
    )
    child = _run(tmp_path, script, str(corpus), str(tmp_path / "case"), str(flag), marker=marker)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert flag.exists(), "the case.db writer must have started"
    assert _wait_gone(marker) == [], "the case.db writer outlived the analysis that forked it"
    time.sleep(0.2)
    assert not (tmp_path / "case" / "case.db").exists(), "a case.db beside no report"


@linux_only
@pytest.mark.skipif(sys.platform.startswith("linux") and len(os.sched_getaffinity(0)) < 2,
                    reason="the CLI forks a carving child only with two CPUs")
def test_analyze_isolated_timeout_leaves_no_process(tmp_path: Path, corpus: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The analysis runs in `python -m bakestore forensics`; a wrapper in place of the interpreter
    # makes its carving slow, so at the timeout the CLI process has a carving child.
    boot = tmp_path / "boot.py"
    boot.write_text(SLOW_CARVING + (
        "import bakestore.forensics.timeline as tl\n"
        "real_live = tl.live_timeline\n"
        "def stuck(*a, **k):  # this process is stuck while its child carves\n"
        "    time.sleep(60)\n"
        "    return real_live(*a, **k)\n"
        "tl.live_timeline = stuck\n"
        "import runpy\n"
        "assert sys.argv[1] == '-m'\n"
        "module = sys.argv[2]\n"
        "sys.argv = [module, *sys.argv[3:]]\n"
        "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
    ))
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {boot} \"$@\"\n")
    wrapper.chmod(0o755)
    marker = uuid.uuid4().hex
    monkeypatch.setattr(sys, "executable", str(wrapper))
    monkeypatch.setenv("BAKESTORE_TEST_MARKER", marker)
    monkeypatch.setenv("CARVED_LOG", str(tmp_path / "carved.log"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    with pytest.raises(ForensicsError, match="took longer than 4s"):
        analyze_isolated(corpus, tmp_path / "case", integrity="none", timeout=4)
    assert _carved_items(tmp_path) > 0, "the timeout must have hit while a carving child ran"
    assert _wait_gone(marker, 2.0) == [], "a process of the timed-out analysis is still running"


@linux_only
def test_an_error_while_the_child_carves_stops_the_child(tmp_path: Path, corpus: Path) -> None:
    marker = uuid.uuid4().hex
    script = SLOW_CARVING + (
        "import bakestore.forensics.timeline as tl\n"
        "pids = []\n"
        "real_fork = os.fork\n"
        "def fork():\n"
        "    pid = real_fork()\n"
        "    pids.append(pid)\n"
        "    return pid\n"
        "os.fork = fork\n"
        "def broken(db, *a, **k):\n"
        "    child_carving()\n"
        "    raise RuntimeError('bug in the live timeline')\n"
        "tl.live_timeline = broken\n"
        "try:\n"
        "    analysis.analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
        "except RuntimeError as exc:\n"
        "    assert str(exc) == 'bug in the live timeline'\n"
        "    gone = not os.path.exists(f'/proc/{pids[0]}')\n"
        "    print('raised', 'child gone' if gone else 'child still there')\n"
    )
    child = _run(tmp_path, script, str(corpus), str(tmp_path / "case"), marker=marker)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "raised child gone"
    # Stopped, not waited for: it carved a few items, not every page.
    assert 0 < _carved_items(tmp_path) < _page_count(corpus) // 2
    assert _wait_gone(marker, 1.0) == []


# --------------------------------------------------------------------------- no partial outputs


@linux_only
def test_a_failure_after_the_writer_started_leaves_no_case_db(tmp_path: Path, corpus: Path) -> None:
    marker = uuid.uuid4().hex
    script = (
        "import os, sys\n"
        "from bakestore.forensics import analysis, findings, report\n"
        "report.PARALLEL_MIN_ITEMS = 0\n"
        "forks = []\n"
        "real_fork = os.fork\n"
        "def fork():\n"
        "    forks.append(1)\n"
        "    return real_fork()\n"
        "os.fork = fork\n"
        "def broken(*a, **k):\n"
        "    raise RuntimeError('bug in the findings')\n"
        "findings.build_findings = broken\n"
        "try:\n"
        "    analysis.analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
        "except RuntimeError as exc:\n"
        "    print(exc, len(forks))\n"
    )
    child = _run(tmp_path, script, str(corpus), str(tmp_path / "case"), marker=marker)
    assert child.returncode == 0, child.stderr
    message, forks = child.stdout.strip().rsplit(" ", 1)
    # two forks: the carving child, then the case.db writer
    assert message == "bug in the findings" and int(forks) == 2, "the case.db writer must have been forked"
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == ["evidence"]
    assert _wait_gone(marker, 1.0) == []


@linux_only
def test_a_failing_staged_write_leaves_no_staging_file_and_no_case_db(tmp_path: Path, corpus: Path) -> None:
    script = (
        "import sys\n"
        "from bakestore.forensics import analysis, casedb, report\n"
        "report.PARALLEL_MIN_ITEMS = 0\n"
        "real = casedb.write_case_tables\n"
        "def failing(rep, path, *, new=False):\n"
        "    real(rep, path, new=new)\n"
        "    raise OSError(28, 'No space left on device')\n"
        "casedb.write_case_tables = failing\n"
        "try:\n"
        "    analysis.analyze(sys.argv[1], sys.argv[2], integrity='none', workers=2)\n"
        "except OSError as exc:\n"
        "    print('raised', exc.errno)\n"
    )
    child = _run(tmp_path, script, str(corpus), str(tmp_path / "case"))
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "raised 28"
    left = sorted(p.name for p in (tmp_path / "case").iterdir())
    assert "case-tables.tmp.db" not in left and "case.db" not in left and "case.db.partial" not in left, left


def test_a_failing_case_db_writer_leaves_no_partial_case_db(tmp_path: Path, corpus: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = casedb.write_case_tables

    def failing(report: object, path: Path, *, new: bool = False) -> None:
        real(report, path, new=new)  # type: ignore[arg-type]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(casedb, "write_case_tables", failing)
    with pytest.raises(OSError, match="No space left"):
        analyze(corpus, tmp_path / "case", integrity="none", workers=1)
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == ["evidence", "report.json", "report.md"]


def test_case_db_is_complete_when_written_in_one_process(tmp_path: Path, corpus: Path) -> None:
    analyze(corpus, tmp_path / "case", integrity="none", workers=1)
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == ["case.db", "evidence", "report.json",
                                                                     "report.md"]


# --------------------------------------------------------------------------- a WAL claiming a huge database


def _claim_db_size(wal_path: Path, claimed: int) -> None:
    """Rewrite the last commit frame's database size, checksums re-chained so SQLite would accept it."""
    data = bytearray(wal_path.read_bytes())
    page_size = struct.unpack_from(">I", data, 8)[0]
    info = parse_wal(bytes(data), page_size)
    assert info.last_commit_frame and all(f.state == "committed" for f in info.frames)
    big_endian = bool(struct.unpack_from(">I", data, 0)[0] & 1)
    s0, s1 = struct.unpack_from(">II", data, 24)
    frame_size = 24 + page_size
    for f in info.frames:
        off = 32 + (f.index - 1) * frame_size
        if f.index == info.last_commit_frame:
            struct.pack_into(">I", data, off + 4, claimed)
        s0, s1 = wal_checksum(bytes(data), off, off + 8, s0, s1, big_endian)
        s0, s1 = wal_checksum(bytes(data), off + 24, off + frame_size, s0, s1, big_endian)
        struct.pack_into(">II", data, off + 16, s0, s1)
    wal_path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def wal_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(build_wal(tmp_path_factory.mktemp("hostile") / "src", secure_delete=False, n_recipes=120,
                          n_big=2).path)


@pytest.mark.parametrize("claimed", [100_000, 0xFFFFFFFF])
def test_a_wal_claiming_a_huge_database_reads_only_the_pages_that_exist(
        tmp_path: Path, wal_corpus: Path, claimed: int) -> None:
    wal = Path(str(wal_corpus) + "-wal")
    data, wal_data = wal_corpus.read_bytes(), wal.read_bytes()
    honest = parse_database(data, wal_data)
    hostile = tmp_path / "wal" / "x.db-wal"
    hostile.parent.mkdir()
    hostile.write_bytes(wal_data)
    _claim_db_size(hostile, claimed)
    parsed = parse_database(data, hostile.read_bytes())
    assert parsed.wal is not None and parsed.wal.db_size_after_commit == claimed  # the frames are valid
    assert parsed.current_pages == honest.current_pages
    assert parsed.view_current.page_count == honest.current_pages
    said = f"{claimed:,} pages"
    assert any(said in e["error"] for e in parsed.errors), parsed.errors
    assert any(said in e for e in parsed.wal.errors)
    assert {name: lt.rows for name, lt in parsed.tables.items()} == {
        name: lt.rows for name, lt in honest.tables.items()}


def test_the_analysis_of_a_wal_claiming_a_huge_database_reports_the_claim(tmp_path: Path, wal_corpus: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.db").write_bytes(wal_corpus.read_bytes())
    (src / "x.db-wal").write_bytes(Path(str(wal_corpus) + "-wal").read_bytes())
    honest = analyze(src / "x.db", tmp_path / "honest", integrity="none", write=False, workers=1)
    _claim_db_size(src / "x.db-wal", 100_000)
    report = analyze(src / "x.db", tmp_path / "case", integrity="none", write=False, workers=1)
    doc = report.to_dict()
    assert doc["pages"]["page_count"] == honest.to_dict()["pages"]["page_count"] < 1000
    assert any("100,000 pages" in e["error"] for e in report.errors)
    assert any("100,000 pages" in e for e in doc["wal"]["errors"])
    assert any(f["kind"] == "page_errors" and "100,000 pages" in f["detail"] for f in report.findings)
    assert len(report.recovered) == len(honest.recovered)
