"""Commands for the user's devices: ``bakestore watch`` (auto-export) and ``bakestore sync FOLDER``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..errors import WatchError
from . import CliContext
from .common import allow_shrink_option, dry_run_option, json_option


@click.command()
@click.option("--to", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the exports (default: <db name>-exports/auto next to the DB).")
@click.option("--quiet-ms", type=click.IntRange(min=0), default=250, show_default=True,
              help="Export after this much silence following a change.")
@click.option("--max-wait-ms", type=click.IntRange(min=0), default=2000, show_default=True,
              help="...but no later than this after the first change (continuous writers still get exported).")
@click.option("--poll-s", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Safety-net check interval, for changes no file event reported.")
@click.option("--keep-last", type=click.IntRange(min=1), default=20, show_default=True,
              help="Retention: keep the newest N auto-exports (plus the newest of each of the last 30 days).")
@click.pass_obj
def watch(obj: CliContext, target: Path | None, quiet_ms: int, max_wait_ms: int, poll_s: float,
          keep_last: int) -> None:
    """Export the database shortly after every change, until Ctrl-C or SIGTERM.

    Writes only when the content changed (identical exports are skipped) and re-serializes only
    the tables that changed. One log line per export.
    """
    from ..watch import Watcher, default_watch_dir

    db_path = obj.db_path
    if not db_path.exists():
        raise WatchError(f"{db_path}: no such database (use `bakestore init` to create one)")
    if max_wait_ms < quiet_ms:
        raise click.BadParameter("--max-wait-ms must be at least --quiet-ms", param_hint="--max-wait-ms")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("bakestore.watch").setLevel(logging.INFO)
    target = target or default_watch_dir(db_path)
    watcher = Watcher(db_path, target, quiet=quiet_ms / 1000, max_wait=max_wait_ms / 1000, poll=poll_s,
                      keep_last=keep_last)
    click.echo(f"watching {db_path} → {target} (Ctrl-C to stop)", err=True)
    watcher.run_forever()
    click.echo(f"stopped: {watcher.stats.exports} export(s) written, {watcher.stats.skipped_identical} "
               "identical one(s) skipped", err=True)


def _print_report(report: object, status: bool) -> None:
    from ..sync import SyncReport

    assert isinstance(report, SyncReport)
    click.echo(f"sync folder {report.folder}  (this device {report.device_id[:8]}, mode {report.mode})")
    for device in report.devices:
        when = f", exported {device.exported_at}" if device.exported_at else ""
        seq = f" seq {device.sequence}" if device.sequence is not None else ""
        rows = f", {device.rows} rows" if device.rows is not None else ""
        click.echo(f"  device {device.device_id[:8]}: {device.status}{seq}{rows}{when}")
        if device.message:
            click.echo(f"    {device.message}")
    for line in report.debris:
        click.echo(f"  debris: {line}")
    captured = {k: v for k, v in report.captured.items() if v}
    if captured:
        click.echo("  local changes captured: " + ", ".join(f"{k} {v}" for k, v in captured.items()))
    changed = [(t, d) for t, d in report.diff.items() if not d.unchanged]
    verb = "would change" if report.dry_run else "changed"
    if not changed:
        click.echo(f"  nothing {verb} in this database")
    else:
        width = max(len(t) for t, _ in changed)
        click.echo(f"  {verb}:")
        for table, d in changed:
            click.echo(f"    {table:<{width}}  {d.before:>7} → {d.after:<7} +{d.added} -{d.removed} ~{d.changed}")
    if report.resolutions:
        click.echo(f"  {len(report.resolutions)} conflict rule(s) applied:")
        for resolution in report.resolutions[:20]:
            click.echo(f"    {resolution.rule}: {resolution.table} {resolution.row_id}: {resolution.detail}")
        if len(report.resolutions) > 20:
            click.echo(f"    … and {len(report.resolutions) - 20} more (see --json)")
    for line in report.shrink:
        click.echo(f"  shrink guard: {line}")
    for line in report.messages:
        click.echo(f"  note: {line}")
    if report.restore_point:
        click.echo(f"  restore point: {report.restore_point}  (undo with `bakestore undo`)")
    if report.exported_sequence is not None:
        click.echo(f"  wrote this device's folder (sequence {report.exported_sequence})")
    if report.dry_run and not status:
        click.echo("dry run: nothing was changed")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--status", is_flag=True, help="Show devices seen, their last export and what would change.")
@dry_run_option
@allow_shrink_option
@json_option
@click.pass_obj
def sync(obj: CliContext, folder: Path, status: bool, dry_run: bool, allow_shrink: bool, as_json: bool) -> None:
    """Merge with the other devices through FOLDER (a git repo, Syncthing, Dropbox or iCloud folder).

    Writes only this device's subfolder of FOLDER, merges the others' (newest row version wins,
    deletes are tombstones, a written rule keeps foreign keys valid), all or nothing, with a
    restore point and an audit record. FOLDER must not contain the live database.
    """
    from ..sync import sync as run_sync
    from ..sync import sync_status

    with obj.open_store() as store:
        if status:
            report = sync_status(store, folder)
        else:
            report = run_sync(store, folder, dry_run=dry_run, allow_shrink=allow_shrink)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        _print_report(report, status)


commands = [watch, sync]
