"""Shared fixtures. Every test runs with BAKESTORE_HOME in a temporary folder, so nothing a test
does can reach the user's real bakestore data (the upstream incident's root cause)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from bakestore.store import Store

DEVICE_A = "a" * 32
DEVICE_B = "b" * 32


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("bakestore-home")
    monkeypatch.setenv("BAKESTORE_HOME", str(home))
    monkeypatch.delenv("BAKESTORE_DB", raising=False)
    return home


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "live.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path, device_id=DEVICE_A) as s:
        yield s


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_live_in_wal_and_intact(path: Path) -> None:
    """After a swap: the live file is back in WAL mode and passes integrity_check."""
    from bakestore.sqlite import sqlite3

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def db_fingerprint(path: Path) -> dict[str, str | None]:
    """Hashes of a database and its sibling files: 'nothing changed' means all of these are equal.

    An empty ``-wal`` counts as none: it holds no frames, so SQLite reads the same database either
    way (a read-only connection that closes last cannot delete it, and leaves it behind).
    """
    path = Path(path)
    out: dict[str, str | None] = {}
    for suffix in ("", "-wal", "-journal"):
        p = Path(str(path) + suffix)
        out[suffix or "db"] = file_sha256(p) if p.exists() and (suffix != "-wal" or p.stat().st_size) else None
    return out


#: The read-only shared folder that sits beside the repository (on developer machines and in CI).
SHARED = Path(__file__).resolve().parents[2] / "shared"
LEGACY_SAMPLES = SHARED / "data" / "legacy"


def processes_with(marker: str) -> list[int]:
    """PIDs of the processes whose environment holds ``marker`` (how tests find the children an
    operation started, to prove none outlives it). Linux /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the upstream v4 single-file sample, imported once per test module; tests
    copy it before changing anything."""
    from bakestore.legacy import import_legacy

    from .legacy_files import SINGLE

    path = tmp_path_factory.mktemp("template") / "populated.db"
    with Store(path, device_id="7" * 32) as store:
        import_legacy(store, SINGLE)
    return path
