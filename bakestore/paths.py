"""Where bakestore keeps things by default, resolved only on request (the CLI asks; the library never does).

The upstream incident began with tests and the app sharing one default database location. Here
the library always takes an explicit path; only the CLI resolves a default, from ``--db`` /
``BAKESTORE_DB`` first, then the platform's per-user data dir for the ``bakestore`` app (never the
upstream ``BakeTracker`` folder). Under pytest, resolving a per-user location raises unless the
test has pointed ``BAKESTORE_HOME`` at a temporary folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from .errors import ConfigurationError, SourceError

APP_NAME = "bakestore"


def _under_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules


def _home_override() -> Path | None:
    value = os.environ.get("BAKESTORE_HOME")
    return Path(value) if value else None


def _user_dir(kind: str) -> Path:
    override = _home_override()
    if override is not None:
        return override / kind
    if _under_pytest():
        raise ConfigurationError(
            f"refusing to resolve the per-user {kind} directory under pytest; "
            "set BAKESTORE_HOME to a temporary folder or pass an explicit path")
    if kind == "data":
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    """The user's database: ``$BAKESTORE_DB``, else ``<user data dir>/bakestore.db``."""
    env = os.environ.get("BAKESTORE_DB")
    if env:
        return Path(env)
    return _user_dir("data") / "bakestore.db"


def config_dir() -> Path:
    """The per-user config directory (holds the device id)."""
    return _user_dir("config")


def demo_db_path() -> Path:
    """The demo database used by ``bakestore ui --demo``: kept apart from the user's real data."""
    return _user_dir("data") / "demo" / "demo.db"


def default_export_dir(db_path: Path) -> Path:
    """Where exports of a database go unless told otherwise: ``<db stem>-exports`` beside it."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + "-exports")


def audit_db_path(db_path: Path) -> Path:
    """``<db>.audit.db``: the audit log lives beside the database, in a file of its own."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".audit.db")


def sync_state_path(db_path: Path) -> Path:
    """``<db>.sync-state.db``: sync's private state, beside the database, never in a sync folder."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".sync-state.db")


def own_files(db_path: Path) -> list[Path]:
    """Every file bakestore itself keeps open with SQLite for a database.

    Reading one of these with plain file I/O in a process that holds a connection to it drops that
    process's POSIX locks (sqlite.org/howtocorrupt.html, posix_close_bug), so no command ever takes
    one of them as an input path.
    """
    db_path = Path(db_path)
    files: list[Path] = []
    for base in (db_path, audit_db_path(db_path), sync_state_path(db_path)):
        files += [base, *(Path(f"{base}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]
    return files


def refuse_own_file(path: Path, db_path: Path) -> None:
    """Raise SourceError if ``path`` is one of the database's own files (see :func:`own_files`)."""
    path = Path(path)
    if not path.exists():
        return
    for own in own_files(db_path):
        if own.exists() and os.path.samefile(path, own):
            raise SourceError(f"{path}: is one of the live database's own files ({own.name}); "
                              "bakestore never reads those as an input")
