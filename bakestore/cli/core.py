"""Core commands: init, doctor, tables, rows, insert, upsert, delete."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click

from ..deletes import audited_delete, delete_plan
from ..errors import SourceError, ValidationError
from ..registry import REGISTRY
from . import CliContext
from .common import ask, dry_run_option, json_option, yes_option

if TYPE_CHECKING:
    from ..store import DeleteResult



@click.command()
@json_option
@click.pass_obj
def init(obj: CliContext, as_json: bool) -> None:
    """Create an empty, seeded database (does nothing to an existing one)."""
    existed = obj.db_path.exists()
    with obj.open_store(create=True) as store:
        counts = store.counts()
    if as_json:
        click.echo(json.dumps({"path": str(obj.db_path), "created": not existed, "counts": counts}, indent=2))
        return
    verb = "already exists" if existed else "created"
    click.echo(f"{obj.db_path}: {verb}; {sum(counts.values())} rows in {len(counts)} tables")


@click.command()
@json_option
@click.pass_obj
def doctor(obj: CliContext, as_json: bool) -> None:
    """Check the database: SQLite version, integrity, foreign keys, registry vs schema, settings."""
    with obj.open_store() as store:
        report = store.check()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for check in report.checks:
            click.echo(f"{check.status.upper():4}  {check.name}: {check.detail}")
        click.echo("healthy" if report.ok else "PROBLEMS FOUND")
    if not report.ok:
        raise SystemExit(1)


@click.command()
@json_option
@click.option("--all", "show_all", is_flag=True, help="Include bakestore's own bookkeeping tables.")
@click.pass_obj
def tables(obj: CliContext, as_json: bool, show_all: bool) -> None:
    """Each table with its row count, grouped as in the domain."""
    with obj.open_store() as store:
        counts = store.counts()
    specs = [s for s in REGISTRY if show_all or not s.is_system]
    if as_json:
        click.echo(json.dumps([{"table": s.name, "group": s.group, "count": counts[s.name]} for s in specs], indent=2))
        return
    width = max(len(s.name) for s in specs)
    for spec in specs:
        click.echo(f"{spec.name:<{width}}  {counts[spec.name]:>9}  {spec.group}")


@click.command()
@click.argument("table")
@json_option
@click.option("--where", help="SQL WHERE clause, e.g. \"slug = 'cakes'\".")
@click.option("--limit", type=int, help="At most this many rows.")
@click.pass_obj
def rows(obj: CliContext, table: str, as_json: bool, where: str | None, limit: int | None) -> None:
    """Rows of TABLE in primary-key order (NDJSON by default, a JSON array with --json)."""
    spec = REGISTRY[table]
    with obj.open_store() as store:
        data = list(store.rows(spec.name, where=where, limit=limit))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for row in data:
            click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))


def read_records(stream: Any, label: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON (an object or an array of objects) or NDJSON, each record with its location."""
    text = stream.read()
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not content
        except UnicodeDecodeError as exc:
            raise SourceError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise SourceError(f"{label}: no records (empty input)")
    if stripped[0] == "[" or (stripped[0] == "{" and "\n{" not in stripped.strip()):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{label}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise SourceError(f"{label}: record {index + 1}: expected an object, got {type(item).__name__}")
            yield f"{label}: record {index + 1}", item
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{label}: line {lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise SourceError(f"{label}: line {lineno}: expected an object, got {type(item).__name__}")
        yield f"{label}: line {lineno}", item


def _write_command(name: str, upsert: bool) -> click.Command:
    @click.command(name=name)
    @click.argument("table")
    @click.argument("file", type=click.File("rb"))
    @json_option
    @click.pass_obj
    def command(obj: CliContext, table: str, file: Any, as_json: bool) -> None:
        spec = REGISTRY[table]
        label = "<stdin>" if file is sys.stdin.buffer or getattr(file, "name", "-") == "<stdin>" else Path(file.name).name
        records = list(read_records(file, label))
        with obj.open_store() as store:
            try:
                method = store.upsert_many if upsert else store.insert_many
                stored = method(spec.name, [r for _, r in records])
            except ValidationError as exc:
                # Name the input record as well as the table/field the store named.
                index = _failed_index(records, exc)
                where = f"{records[index][0]}: " if index is not None else f"{label}: "
                raise ValidationError(where + str(exc), table=exc.table, field=exc.field, record=exc.record) from None
        if as_json:
            click.echo(json.dumps(stored, indent=2, ensure_ascii=False))
        else:
            click.echo(f"{'upserted' if upsert else 'inserted'} {len(stored)} row(s) into {spec.name}")

    command.help = (f"{'Insert or update' if upsert else 'Insert'} rows into TABLE from FILE (JSON object, array "
                    "or NDJSON; '-' for stdin). Every row is validated; all rows or none are written.")
    return command


def _failed_index(records: list[tuple[str, dict[str, Any]]], exc: ValidationError) -> int | None:
    if exc.index is not None and exc.index < len(records):
        return exc.index
    if exc.record is not None:
        for index, (_, record) in enumerate(records):
            if str(record.get("id", "")).lower() == str(exc.record).lower():
                return index
    return None


insert = _write_command("insert", upsert=False)
upsert = _write_command("upsert", upsert=True)


def _print_plan(result: DeleteResult) -> None:
    click.echo(f"would delete {result.table} {result.id}")
    for child_table, child_id in result.cascaded:
        click.echo(f"  and {child_table} {child_id} (ON DELETE CASCADE)")
    for child_table, child_id, column in result.nulled:
        click.echo(f"  and clear {child_table}.{column} of {child_id} (ON DELETE SET NULL)")
    plan = delete_plan(result)
    click.echo(f"rows removed: {sum(plan['removed'].values())} ("
               + ", ".join(f"{t} {n}" for t, n in plan["removed"].items()) + ")")
    if plan["cleared"]:
        click.echo("references cleared: " + ", ".join(f"{c} {n}" for c, n in plan["cleared"].items()))


def _ask_to_delete(plan: DeleteResult) -> bool:
    _print_plan(plan)
    return ask("Delete these rows? (each leaves a tombstone; exports are not touched)")


@click.command()
@click.argument("table")
@click.argument("key")
@dry_run_option
@yes_option
@json_option
@click.pass_obj
def delete(obj: CliContext, table: str, key: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete one row of TABLE by id or natural key (follows ON DELETE rules, records tombstones).

    Shows every row the delete removes (cascades included) and every reference it clears, and
    asks before deleting unless --yes; --dry-run changes nothing. The delete is audited.
    """
    if as_json and not (dry_run or yes):
        raise click.UsageError("--json needs --yes or --dry-run (a confirmation prompt is not machine-readable)")
    spec = REGISTRY[table]
    with obj.open_store() as store:
        if dry_run:
            result = store.delete(spec.name, key, dry_run=True)
        else:
            result = audited_delete(store, spec.name, key, ask=None if yes else _ask_to_delete)
    if as_json:
        click.echo(json.dumps({"table": result.table, "id": result.id, "dry_run": dry_run,
                               "cascaded": result.cascaded, "nulled": result.nulled, **delete_plan(result)},
                              indent=2))
    elif dry_run:
        _print_plan(result)
        click.echo("dry run: nothing was changed")
    else:
        click.echo(f"deleted {result.table} {result.id}")
        for child_table, child_id in result.cascaded:
            click.echo(f"  also deleted {child_table} {child_id} (ON DELETE CASCADE)")
        for child_table, child_id, column in result.nulled:
            click.echo(f"  cleared {child_table}.{column} of {child_id} (ON DELETE SET NULL)")


commands = [init, doctor, tables, rows, insert, upsert, delete]
