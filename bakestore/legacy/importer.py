"""Legacy import = translate an upstream file into a row source, then restore (or merge) it.

There is no second way of writing to the live database here: the translated rows go through the
same pipeline as a bakestore export (``Store.restore`` / ``Store.merge``: validate everything,
build a fresh file, shrink guard, restore point, atomic swap, audit record). What this module adds
is the refusal rules that belong to the upstream formats:

* any refused record refuses the whole import, naming the file, record, field and reason, unless
  ``skip_invalid`` is given — then the report lists every skipped record (the shrink guard still
  applies, in the pipeline);
* a file that yields no rows at all is refused outright (the upstream incident file
  ``{"version": "4.0", "ingredients": []}`` emptied a database in replace mode, formats page W1).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import audit
from ..clock import HybridLogicalClock
from ..errors import BakestoreError, CancelledError, ConfigurationError, LegacyFormatError
from ..models.base import format_timestamp
from ..sources import MemorySource
from ..paths import refuse_own_file
from .coordinated import CoordinatedTranslator
from .detect import LegacyInput, detect
from .report import ImportReport
from .single import SingleFileTranslator

if TYPE_CHECKING:
    from ..restore import RestoreResult
    from ..store import Store

#: The ``operation`` name of legacy imports in the audit log.
OPERATION = "import-legacy"


@dataclass
class LegacyTranslation:
    """An upstream input translated into complete bakestore rows, with its report."""

    source: MemorySource
    report: ImportReport
    input: LegacyInput
    merge: bool


def _refuse(message: str, report: ImportReport) -> LegacyFormatError:
    error = LegacyFormatError(message)
    # The CLI prints the full report (every refused record) before the one-line error.
    error.report = report  # type: ignore[attr-defined]
    return error


def translate(path: str | os.PathLike[str], *, store: "Store | None" = None, merge: bool = False,
              skip_invalid: bool = False, device_id: str | None = None,
              import_time: str | None = None) -> LegacyTranslation:
    """Detect, verify and translate an upstream file or backup folder; nothing is written.

    ``store`` supplies the clock for row versions and, with ``merge``, the rows that references
    may resolve against. Without a store, pass ``device_id`` for the versions. ``import_time``
    (canonical UTC text) is the created/updated time of records the file gives none for; it
    defaults to the store's clock time, so one import stamps one time.
    """
    if merge and store is None:
        raise ConfigurationError("a legacy merge needs the store whose rows references may resolve against")
    if store is not None:
        clock = store.clock
        import_time = import_time or store.now()
    else:
        if device_id is None:
            raise ConfigurationError("translate() without a store needs a device_id for the row versions")
        clock = HybridLogicalClock(device_id)
        import_time = import_time or format_timestamp(_dt.datetime.now(_dt.timezone.utc))
    source_input = detect(path)
    kind = SingleFileTranslator if source_input.kind == "single" else CoordinatedTranslator
    translator = kind(source_input, store=store, merge=merge, clock=clock, import_time=import_time,
                      skip_invalid=skip_invalid)
    source = translator.translate()
    report = translator.report

    if report.problems and not skip_invalid:
        raise _refuse(report.refusal_message(), report)
    if report.total_read == 0:
        raise _refuse(f"{report.label}: holds no records to import; refusing an import that yields no rows "
                      "(in restore mode it would empty the store)", report)
    existing = sum(e.existing + e.folded for e in report.entities.values())
    if report.total_rows == 0 and existing == 0:
        raise _refuse(f"{report.label}: none of its {report.total_read} records could be imported; refusing an "
                      "import that yields no rows", report)
    return LegacyTranslation(source=source, report=report, input=source_input, merge=merge)


def prepare(store: "Store", path: str | os.PathLike[str], *, merge: bool = False,
            skip_invalid: bool = False, dry_run: bool = False) -> LegacyTranslation:
    """:func:`translate` for ``store``, with refusals written to the store's audit log.

    The pipeline audits its own refusals (shrink guard, validation); this records the ones that
    happen before it — an unreadable file, a changed backup, refused records — so every refused
    import leaves a trace next to the database, as the upstream incident did not. A ``dry_run``
    is a question, not an operation: its refusals are raised but not audited (as in the pipeline).
    """
    started = time.monotonic()
    try:
        refuse_own_file(Path(path), store.path)  # never open()/close() a file our connections hold
        return translate(path, store=store, merge=merge, skip_invalid=skip_invalid)
    except BakestoreError as exc:
        if dry_run:
            raise
        report = getattr(exc, "report", None)
        record = audit.AuditRecord(operation=OPERATION, db_path=str(store.path), outcome="refused", reason=str(exc),
                                   source=f"legacy {path}", source_sha256=report.sha256 if report else None,
                                   details={"legacy_import": report.as_dict()} if report else {"merge": merge})
        record.duration_ms = int((time.monotonic() - started) * 1000)
        audit.write(store.path, record)
        raise


@contextlib.contextmanager
def empty_preview_store() -> "Iterator[Store]":
    """An empty store in a temporary folder, for a dry run against a database that does not exist.

    A dry run must not create the user's database (nor anything beside it), yet "what would
    importing this file into a new database do" is a fair question: the preview answers it
    against a fresh, seeded store exactly like the one a real import would create, and the
    folder is removed afterwards. The store has its own throw-away device id, so not even the
    user's configuration folder is touched.
    """
    from ..store import Store

    with tempfile.TemporaryDirectory(prefix="bakestore-legacy-preview-") as folder:
        with Store(Path(folder) / "preview.db", device_id=uuid.uuid4().hex, create=True) as store:
            yield store


def apply(store: "Store", translation: LegacyTranslation, *, dry_run: bool = False, allow_shrink: bool = False,
          yes: bool = True, confirm: "Callable[[ImportReport, RestoreResult], bool] | None" = None,
          progress: Callable[..., Any] | None = None) -> "RestoreResult":
    """Run a translation through the restore (or merge) pipeline; returns its ``RestoreResult``.

    With ``yes=False`` the change is applied only when ``confirm(report, preview)`` returns true;
    a "no" raises :class:`~bakestore.errors.CancelledError` (audited as cancelled). In replace
    mode the question is asked inside the pipeline, so what is applied is what was previewed;
    a merge previews with a dry run first. No ``confirm`` → only the dry run happens.
    """
    run = store.merge if translation.merge else store.restore
    details = {"legacy_import": translation.report.as_dict()}
    kwargs = dict(allow_shrink=allow_shrink, progress=progress, operation=OPERATION, audit_details=details)
    if not dry_run and not yes and not translation.merge and confirm is not None:
        # Replace mode asks inside the pipeline, after validation and the diff and before any
        # change: what is applied is exactly what was shown, and a "no" is audited as cancelled.
        return run(translation.source, dry_run=False,
                   confirm=lambda preview: confirm(translation.report, preview), **kwargs)
    if dry_run or not yes:
        preview = run(translation.source, dry_run=True, **kwargs)
        if dry_run or confirm is None:
            return preview
        if not confirm(translation.report, preview):
            raise CancelledError(f"{OPERATION} cancelled; nothing was changed")
    return run(translation.source, dry_run=False, **kwargs)


def import_legacy(store: "Store", path: str | os.PathLike[str], *, dry_run: bool = False, merge: bool = False,
                  skip_invalid: bool = False, yes: bool = True, allow_shrink: bool = False,
                  confirm: "Callable[[ImportReport, RestoreResult], bool] | None" = None,
                  progress: Callable[..., Any] | None = None) -> tuple[ImportReport, "RestoreResult"]:
    """Import an upstream BakeTracker file or backup folder into ``store``.

    Restore mode (default) replaces the store's contents with the file's; ``merge`` adds the
    file's records to them (references may then resolve against the store). Returns the import
    report and the pipeline's ``RestoreResult`` (per-table diff, restore point, audit id).
    """
    translation = prepare(store, path, merge=merge, skip_invalid=skip_invalid, dry_run=dry_run)
    result = apply(store, translation, dry_run=dry_run, allow_shrink=allow_shrink, yes=yes, confirm=confirm,
                   progress=progress)
    return translation.report, result


__all__ = ["OPERATION", "LegacyTranslation", "apply", "empty_preview_store", "import_legacy", "prepare",
           "translate"]
