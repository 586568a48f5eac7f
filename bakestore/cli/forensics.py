"""``bakestore forensics``: explain a data loss from a SQLite file and recover deleted rows.

A thin layer over :mod:`bakestore.forensics`: it picks the case folder, prints the report and
raises :class:`~bakestore.errors.ForensicsError` for the main group to turn into one line.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from ..errors import ForensicsError
from .common import json_option


def _default_case_dir() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path.cwd() / f"bakestore-case-{stamp}"


@click.command("forensics")
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--case", "case_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Case folder for evidence copies and reports (default: ./bakestore-case-<UTC time>).")
@json_option
@click.option("--compare", "compare_paths", nargs=2, type=click.Path(path_type=Path, dir_okay=False),
              metavar="A B", help="Compare two databases: rows added, removed and changed per table.")
@click.option("--integrity", type=click.Choice(["full", "quick", "none"]), default="full", show_default=True,
              help="SQLite check run on a second copy: integrity_check, quick_check or none.")
def forensics(path: Path | None, case_dir: Path | None, as_json: bool,
              compare_paths: tuple[Path, Path] | None, integrity: str) -> None:
    """Analyse PATH (any SQLite file) without touching it: copies, hashes, own byte parser.

    Prints the report and writes report.md, report.json and case.db into the case folder.
    """
    from ..forensics import analyze, compare, render_compare, render_text

    if compare_paths:
        if path is not None:
            raise click.UsageError("give either PATH or --compare A B, not both")
        result = compare(compare_paths[0], compare_paths[1], case_dir)
        click.echo(json.dumps(result, indent=1, ensure_ascii=False) if as_json else render_compare(result), nl=not as_json)
        if as_json:
            click.echo()
        return
    if path is None:
        raise click.UsageError("missing PATH (or use --compare A B)")
    if not path.exists():
        raise ForensicsError(f"no such file: {path}")
    target = case_dir or _default_case_dir()
    report = analyze(path, target, integrity=integrity)
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(render_text(report))
        click.echo(f"Written: {target / 'report.md'}, {target / 'report.json'}, {target / 'case.db'}")


commands = [forensics]
