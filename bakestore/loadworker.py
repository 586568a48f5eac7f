"""The second process of a large restore: loads its share of an export's tables into a part file.

Started by :class:`bakestore.restore._LoadWorker` (``python -I``, this package put first on the
path explicitly; a worker that finds itself in another bakestore gives no answer). It reads
one JSON request on stdin (the verified export folder's hand-off, the shared list of tables,
the fresh file's path, the page size, the parent's pid); walking the list, it loads every table
it can claim before the parent does (:func:`restore.claim_table`) into the part file beside the
fresh file, and answers with one JSON line on stdout:
``{"ok": true, "rows": {table: count}}`` or ``{"error": {"type", "message", "table", "field",
"record"}}``. Rows go through exactly the checks the parent applies (:func:`restore._load_table`),
and the part file gets the tables' indexes so the parent can copy tables and indexes as they are.

The part file is never a live database: the parent removes it, and a killed run's part file is
swept with the other leftovers. The worker ends with its parent (``PR_SET_PDEATHSIG`` on Linux,
and a check of the parent's pid between tables elsewhere).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .errors import BakestoreError, ValidationError
from .exports import ExportFolderSource
from .registry import REGISTRY
from .restore import _connect_fresh, _fault, _load_table, _part_path, claim_table
from .schema import index_sql, table_sql

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(3)


def _error(exc: BaseException) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, ValidationError):
        error.update(table=exc.table, field=exc.field, record=exc.record)
    return error


def load(request: dict[str, Any]) -> dict[str, Any]:
    source = ExportFolderSource.from_handoff(request["source"], REGISTRY)
    fresh = Path(request["fresh"])
    parent = request["parent"]
    conn = _connect_fresh(_part_path(fresh), request["page_size"])
    rows: dict[str, int] = {}
    try:
        conn.execute("BEGIN")
        for name in request["order"]:
            if os.getppid() != parent:
                os._exit(3)
            if not claim_table(fresh, name):
                continue
            spec = REGISTRY[name]
            conn.execute(table_sql(spec))
            rows[name] = _load_table(conn, spec, source, source.label)
            # The same indexes as the parent's table: the transfer copies them as they are.
            for statement in index_sql(spec):
                conn.execute(statement)
            _fault("load-worker")  # crash tests: a worker that dies with a table done
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"ok": True, "rows": rows}


def main() -> int:
    request = json.loads(sys.stdin.buffer.readline())
    _die_with_parent(request["parent"])
    here = str(Path(__file__).resolve().parent)
    if here != request.get("package"):
        # Another bakestore than the parent's would check rows by other rules: no answer, so
        # the parent loads every table itself.
        return 3
    # Rows are short-lived, acyclic dicts and tuples: reference counting frees them, and the
    # cycle collector would only walk the batch in flight again and again.
    gc.disable()
    try:
        answer = load(request)
    except BakestoreError as exc:
        answer = {"error": _error(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent in one line
        answer = {"error": {"type": "RestoreError", "message": f"load worker: {type(exc).__name__}: {exc}"}}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
