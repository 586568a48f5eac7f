"""``bakestore import-legacy``: bring an upstream BakeTracker backup into bakestore, losing nothing.

A thin layer over :mod:`bakestore.legacy`: translate (which refuses, with the full report, when
any record cannot be imported), print the per-entity report, show the dry-run diff and ask —
unless ``--yes`` — then run the same restore/merge pipeline as ``bakestore restore``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import legacy
from ..errors import LegacyFormatError
from ..restore import RestoreResult
from . import CliContext
from .common import allow_shrink_option, ask, dry_run_option, json_option, print_diff, progress_bar, yes_option

#: Refused records listed on the terminal before "… and N more" (a refusal's report can be long).
MAX_LISTED = 20


@click.command(name="import-legacy")
@click.argument("path", type=click.Path(path_type=Path))
@dry_run_option
@click.option("--merge", is_flag=True,
              help="Add the file's records to the current data (references may resolve against it) "
                   "instead of replacing the data.")
@yes_option
@click.option("--skip-invalid", is_flag=True,
              help="Import what can be imported and list every skipped record (refused by default).")
@allow_shrink_option
@json_option
@click.pass_obj
def import_legacy(obj: CliContext, path: Path, dry_run: bool, merge: bool, yes: bool, skip_invalid: bool,
                  allow_shrink: bool, as_json: bool) -> None:
    """Import an upstream BakeTracker v4 JSON file or coordinated backup folder (or its manifest.json).

    Every record is accounted for: the report lists, per entity, records read, imported, already
    present (merge) and refused with the reason. Without --merge the database's content is
    replaced through the safe restore path (fresh file, shrink guard, restore point, audit).
    """
    if as_json and not (yes or dry_run):
        raise click.UsageError("--json needs --yes or --dry-run (a confirmation prompt is not machine-readable)")
    # A dry run never creates the database: against a path that does not exist yet it previews
    # the import into an empty temporary store (what a real import would start from).
    previewing_new = dry_run and not obj.db_path.exists()
    opened = legacy.empty_preview_store() if previewing_new else obj.open_store(create=True)
    with opened as store:
        try:
            translation = legacy.prepare(store, path, merge=merge, skip_invalid=skip_invalid, dry_run=dry_run)
        except LegacyFormatError as exc:
            report = getattr(exc, "report", None)
            if report is not None and as_json:
                click.echo(json.dumps({"report": report.as_dict(), "error": str(exc)}, indent=2, ensure_ascii=False))
            elif report is not None:
                click.echo(report.format_text(max_problems=MAX_LISTED), err=True)
            raise
        if not as_json:
            click.echo(translation.report.format_text())
        verb = "legacy merge" if merge else "legacy import"
        question = f"Apply this {verb}? A restore point of the current data is taken first"
        if not (dry_run or yes) and not merge:
            def ask_inside(report: object, preview: RestoreResult) -> bool:
                print_diff(preview)
                return ask(question)  # Ctrl+C / end of input: a no, audited as cancelled

            result = legacy.apply(store, translation, allow_shrink=allow_shrink, yes=False, confirm=ask_inside)
        else:
            if not (dry_run or yes):
                preview = legacy.apply(store, translation, dry_run=True, allow_shrink=allow_shrink)
                print_diff(preview)
                if not ask(question):
                    raise click.ClickException(f"{verb} cancelled; nothing was changed")
            with progress_bar(verb, enabled=not as_json) as progress:
                result = legacy.apply(store, translation, dry_run=dry_run, allow_shrink=allow_shrink,
                                      progress=progress)
    if as_json:
        output = {"report": translation.report.as_dict(), "result": result.as_dict()}
        if previewing_new:
            output["database"] = {"path": str(obj.db_path), "exists": False, "created": False}
        click.echo(json.dumps(output, indent=2, ensure_ascii=False))
        return
    print_diff(result)
    if result.dry_run:
        if previewing_new:
            click.echo(f"dry run against an empty database: {obj.db_path} does not exist and was not created "
                       f"({verb} of {path})")
        else:
            click.echo(f"dry run: nothing was changed ({verb} of {path})")
        return
    click.echo(f"{verb} done: {translation.report.total_rows} rows from {path}")
    if result.restore_point:
        click.echo(f"restore point: {result.restore_point}  (undo with `bakestore undo`)")


commands = [import_legacy]
