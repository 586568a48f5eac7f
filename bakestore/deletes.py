"""Deletes with a plan and an audit record: what the CLI's ``delete`` and the UI's delete page run.

``Store.delete`` removes a row and what its foreign keys cascade to. A person deciding on that
must see everything it removes or clears first, and the delete must apply exactly that plan (not
a bigger one because rows were added meanwhile), and leave an audit record like every other
destructive operation. Both front ends use :func:`audited_delete`, so they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

from . import audit as audit_log
from .errors import CancelledError, DeleteRestrictedError, NotFoundError
from .store import DeleteResult


def delete_plan(result: DeleteResult) -> dict[str, Any]:
    """What a delete removes and clears, counted per table (what is shown before it is done)."""
    removed: dict[str, int] = {result.table: 1}
    for table, _ in result.cascaded:
        removed[table] = removed.get(table, 0) + 1
    cleared: dict[str, int] = {}
    for table, _, column in result.nulled:
        cleared[f"{table}.{column}"] = cleared.get(f"{table}.{column}", 0) + 1
    return {"removed": removed, "cleared": cleared}


def _same_plan(a: DeleteResult, b: DeleteResult) -> bool:
    return (a.table, a.id, sorted(a.cascaded), sorted(a.nulled)) == (b.table, b.id, sorted(b.cascaded), sorted(b.nulled))


def audited_delete(store: Any, table: str, key: str, *, ask: Callable[[DeleteResult], bool] | None = None,
                   expected: Callable[[DeleteResult], bool] | None = None, via: str = "cli") -> DeleteResult:
    """``store.delete`` with an audit record, as every destructive operation has one.

    ``ask`` is shown the plan (a dry run) and says yes or no, outside the write transaction (a
    person reading must not hold off every writer); the delete then goes ahead only if its plan
    is still the one shown. ``expected`` checks the plan inside the transaction (the UI: the plan
    its page showed). The record is written before anything is deleted (an audit log that cannot
    be written refuses the delete) and finished with the outcome: done, refused (a RESTRICT
    reference, no such row), cancelled (the person said no, or the plan changed since it was
    shown) or failed.
    """
    record = audit_log.AuditRecord(operation="delete", db_path=str(store.path), source=f"{table} {key}",
                                   details={"table": table, "key": key, "via": via})
    started = time.monotonic()

    def finish(outcome: str, reason: str | None = None) -> None:
        record.outcome, record.reason = outcome, reason
        record.duration_ms = int((time.monotonic() - started) * 1000)
        audit_log.write(store.path, record)

    def check(plan: DeleteResult) -> bool:
        if (shown is not None and not _same_plan(plan, shown)) or (expected is not None and not expected(plan)):
            raise CancelledError("delete cancelled; nothing was changed: the rows it would remove or clear "
                                 "changed since they were shown")
        counts = delete_plan(plan)
        record.counts_before = {t: store.count(t) for t in counts["removed"]}
        record.counts_after = {t: n - counts["removed"][t] for t, n in record.counts_before.items()}
        record.details.update(id=plan.id, **counts)
        finish("started")  # before anything changes: an unwritable audit log refuses the delete
        return True

    shown: DeleteResult | None = None
    try:
        if ask is not None:
            shown = store.delete(table, key, dry_run=True)
            record.details.update(id=shown.id, **delete_plan(shown))
            if not ask(shown):
                raise CancelledError("delete cancelled; nothing was changed")
        result = store.delete(table, key, confirm=check)
    except CancelledError as exc:
        with contextlib.suppress(Exception):
            finish("cancelled", str(exc))
        raise
    except (DeleteRestrictedError, NotFoundError) as exc:
        with contextlib.suppress(Exception):
            finish("refused", str(exc))
        raise
    except BaseException as exc:
        with contextlib.suppress(Exception):
            finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    with contextlib.suppress(Exception):
        finish("done")
    return result


__all__ = ["audited_delete", "delete_plan"]
