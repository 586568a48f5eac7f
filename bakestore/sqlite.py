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


def _null(value: None) -> None:
    return value


# Binding None as a parameter takes the module's slow "adapt this object" path (no adapter is
# found, then the protocol lookups fail): measured here ~0.7 µs per None with pysqlite3 and
# ~0.1 µs with the stdlib module, against ~0.05 µs with an adapter registered. Rows with many
# NULL columns (restores, sync, case.db's recovered_rows) bind millions of them. The adapter
# returns None itself, which is bound as NULL exactly as before: only the lookup is shorter. It is
# registered on the process-wide module (sqlite-utils and Datasette share it); the only visible
# difference is that ``sqlite3.adapt(None)`` returns None instead of raising, and an adapter for
# None that other code registers later replaces this one, costing only the speed.
sqlite3.register_adapter(type(None), _null)

__all__ = ["sqlite3"]
