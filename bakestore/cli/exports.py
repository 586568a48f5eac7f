"""Backup commands: export, restore, merge, restore-points, undo, reset, audit."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from .. import audit as audit_log
from ..exports import prune_exports
from ..restore import RestoreResult, list_restore_points
from . import CliContext

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
allow_shrink_option = click.option("--allow-shrink", is_flag=True,
                                   help="Allow emptying tables or losing many rows (refused by default).")


def default_export_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.stem + "-exports")


@contextlib.contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[str, int, int], None] | None]:
    """A click progress bar fed by the API's ``progress(table, done, total)`` callback."""
    if not enabled:
        yield None
        return
    state: dict[str, Any] = {}

    def callback(table: str, done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                    item_show_func=lambda item: item)
            bar.__enter__()
            state["bar"] = bar
        bar.update(done - bar.pos, table)

    try:
        yield callback
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)


def print_diff(result: RestoreResult, *, all_tables: bool = False) -> None:
    rows = [(t, d) for t, d in result.diff.items() if all_tables or not d.unchanged or d.before != d.after]
    if not rows:
        click.echo("no table changes")
    else:
        width = max(len(t) for t, _ in rows)
        click.echo(f"{'table':<{width}}  {'before':>8} → {'after':<8} {'+added':>8} {'-removed':>9} {'~changed':>9}")
        for table, d in rows:
            click.echo(f"{table:<{width}}  {d.before:>8} → {d.after:<8} {d.added:>8} {d.removed:>9} {d.changed:>9}")
    for note in result.notes:
        click.echo(f"note: {note}")


def _report(result: RestoreResult, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    print_diff(result)
    if result.dry_run:
        click.echo(f"dry run: nothing was changed ({verb} from {result.source_label})")
    else:
        click.echo(f"{verb} done from {result.source_label}")
        if result.restore_point:
            click.echo(f"restore point: {result.restore_point}  (undo with `bakestore undo`)")


def _confirmed_run(run: Callable[..., RestoreResult], *, dry_run: bool, yes: bool, as_json: bool,
                   verb: str, **kwargs: Any) -> None:
    """Dry-run first and ask, unless --yes; then run for real (which re-validates everything)."""
    if dry_run or yes:
        with progress_bar(f"{verb}", enabled=not as_json) as progress:
            result = run(dry_run=dry_run, progress=progress, **kwargs)
        _report(result, as_json, verb)
        return
    preview = run(dry_run=True, **kwargs)
    print_diff(preview)
    if not click.confirm(f"Apply this {verb}? A restore point of the current data is taken first", default=False):
        raise click.ClickException(f"{verb} cancelled; nothing was changed")
    with progress_bar(f"{verb}", enabled=not as_json) as progress:
        result = run(dry_run=False, progress=progress, **kwargs)
    _report(result, as_json, verb)


@click.command()
@click.option("--to", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the export into (default: <db name>-exports next to the DB).")
@click.option("--keep-last", type=int, default=None, help="Retention: keep the newest N exports in the folder.")
@click.option("--keep-daily", type=int, default=30, show_default=True,
              help="Retention (with --keep-last): also keep the newest export of each of the last M days.")
@json_option
@click.pass_obj
def export(obj: CliContext, target: Path | None, keep_last: int | None, keep_daily: int, as_json: bool) -> None:
    """Write a complete, verified export folder (NDJSON per table + manifest)."""
    target = target or default_export_dir(obj.db_path)
    with obj.open_store() as store:
        with progress_bar("export", enabled=not as_json) as progress:
            result = store.export(target, progress=progress)
    removed = prune_exports(target, keep_last=keep_last, keep_daily=keep_daily) if keep_last else []
    if as_json:
        click.echo(json.dumps({"path": str(result.path), "total_rows": result.total_rows,
                               "pruned": [str(p) for p in removed]}, indent=2))
        return
    click.echo(f"exported {result.total_rows} rows to {result.path}")
    for path in removed:
        click.echo(f"pruned old export {path.name}")


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@dry_run_option
@yes_option
@allow_shrink_option
@json_option
@click.pass_obj
def restore(obj: CliContext, source: Path, dry_run: bool, yes: bool, allow_shrink: bool, as_json: bool) -> None:
    """Replace the database's content with SOURCE (an export folder, its manifest.json, or a .db file).

    Validates everything first, builds a fresh file, refuses to shrink the data unless
    --allow-shrink, takes a restore point, swaps atomically and writes an audit record.
    """
    with obj.open_store() as store:
        _confirmed_run(lambda **kw: store.restore(source, **kw), dry_run=dry_run, yes=yes, as_json=as_json,
                       verb="restore", allow_shrink=allow_shrink)


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@dry_run_option
@yes_option
@allow_shrink_option
@json_option
@click.pass_obj
def merge(obj: CliContext, source: Path, dry_run: bool, yes: bool, allow_shrink: bool, as_json: bool) -> None:
    """Upsert SOURCE's rows into the database, all or nothing (newest row version wins)."""
    with obj.open_store() as store:
        _confirmed_run(lambda **kw: store.merge(source, **kw), dry_run=dry_run, yes=yes, as_json=as_json,
                       verb="merge", allow_shrink=allow_shrink)


@click.command(name="restore-points")
@json_option
@click.pass_obj
def restore_points(obj: CliContext, as_json: bool) -> None:
    """List restore points, newest first."""
    points = list_restore_points(obj.db_path)
    if as_json:
        click.echo(json.dumps([{"path": str(p), "bytes": p.stat().st_size} for p in points], indent=2))
        return
    if not points:
        click.echo("no restore points yet")
    for point in points:
        click.echo(f"{point.name}  {point.stat().st_size:>12} bytes")


@click.command()
@dry_run_option
@yes_option
@json_option
@click.pass_obj
def undo(obj: CliContext, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Swap the newest restore point back in (takes a restore point first, so undo is undoable)."""
    with obj.open_store() as store:
        _confirmed_run(lambda **kw: store.undo(**kw), dry_run=dry_run, yes=yes, as_json=as_json, verb="undo")


@click.command()
@dry_run_option
@yes_option
@allow_shrink_option
@json_option
@click.pass_obj
def reset(obj: CliContext, dry_run: bool, yes: bool, allow_shrink: bool, as_json: bool) -> None:
    """Replace the content with an empty, seeded database (audited and undoable)."""
    with obj.open_store() as store:
        _confirmed_run(lambda progress=None, **kw: store.reset(**kw), dry_run=dry_run, yes=yes, as_json=as_json,
                       verb="reset", allow_shrink=allow_shrink)


@click.command(name="audit")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many records.")
@json_option
@click.pass_obj
def audit_command(obj: CliContext, limit: int, as_json: bool) -> None:
    """The audit log of destructive operations, newest first."""
    records = list(audit_log.read(obj.db_path, limit=limit))
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    if not records:
        click.echo("no audited operations yet")
    for record in records:
        reason = f" — {record['reason']}" if record.get("reason") else ""
        click.echo(f"{record['at']}  {record['operation']:<14} {record['outcome']:<8} {record.get('source') or ''}{reason}")


commands = [export, restore, merge, restore_points, undo, reset, audit_command]
