"""Backup commands: export, restore, merge, restore-points, undo, reset, audit."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import audit as audit_log
from ..exports import prune_exports
from ..paths import default_export_dir
from ..restore import list_restore_points
from . import CliContext
from .common import allow_shrink_option, confirmed_run, dry_run_option, json_option, progress_bar, yes_option

@click.command()
@click.option("--to", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the export into (default: <db name>-exports next to the DB).")
@click.option("--keep-last", type=click.IntRange(min=1), default=None,
              help="Retention: keep the newest N exports in the folder (N >= 1).")
@click.option("--keep-daily", type=click.IntRange(min=0), default=30, show_default=True,
              help="Retention (with --keep-last): also keep the newest export of each of the last M days.")
@json_option
@click.pass_obj
def export(obj: CliContext, target: Path | None, keep_last: int | None, keep_daily: int, as_json: bool) -> None:
    """Write a complete, verified export folder (NDJSON per table + manifest)."""
    target = target or default_export_dir(obj.db_path)
    with obj.open_store() as store:
        with progress_bar("export", enabled=not as_json) as progress:
            result = store.export(target, progress=progress)
    removed = prune_exports(target, keep_last=keep_last, keep_daily=keep_daily) if keep_last is not None else []
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
        confirmed_run(lambda **kw: store.restore(source, **kw), dry_run=dry_run, yes=yes, as_json=as_json,
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
        confirmed_run(lambda **kw: store.merge(source, **kw), dry_run=dry_run, yes=yes, as_json=as_json,
                       verb="merge", ask_inside=False, allow_shrink=allow_shrink)


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
    """Swap the newest restore point back in; the current content becomes a restore point, so
    undo is undoable. When no other program has the database open this is an instant rename
    (`--yes` then shows row counts only), otherwise a verified copy (docs/guarantees.md, S16)."""
    with obj.open_store() as store:
        confirmed_run(lambda **kw: store.undo(**kw), dry_run=dry_run, yes=yes, as_json=as_json, verb="undo")


@click.command()
@dry_run_option
@yes_option
@allow_shrink_option
@json_option
@click.pass_obj
def reset(obj: CliContext, dry_run: bool, yes: bool, allow_shrink: bool, as_json: bool) -> None:
    """Replace the content with an empty, seeded database (audited and undoable)."""
    with obj.open_store() as store:
        confirmed_run(lambda **kw: store.reset(**kw), dry_run=dry_run, yes=yes, as_json=as_json,
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
