"""The one SQLite module of this process.

sqlite-utils and Datasette import ``pysqlite3`` when it is installed and the stdlib ``sqlite3``
otherwise. Two SQLite libraries opening the same file in one process can silently drop each
other's POSIX locks (sqlite.org/howtocorrupt.html §2.3), so bakestore picks the module in the
same order and everything in bakestore imports it from here.
"""

from __future__ import annotations

try:  # pragma: no cover - depends on the platform wheel
    import pysqlite3 as sqlite3  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover
    import sqlite3  # type: ignore[no-redef]

__all__ = ["sqlite3"]
