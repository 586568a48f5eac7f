"""What the command modules share: options spelled the same everywhere, progress bars, diffs,
and the "preview, ask, then apply" flow of every destructive command."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable, Iterator

import click

from ..restore import RestoreResult

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
allow_shrink_option = click.option("--allow-shrink", is_flag=True,
                                   help="Allow emptying tables or losing many rows (refused by default).")


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
            added, removed, changed = ("?" if n is None else n for n in (d.added, d.removed, d.changed))
            click.echo(f"{table:<{width}}  {d.before:>8} → {d.after:<8} {added:>8} {removed:>9} {changed:>9}")
    for note in result.notes:
        click.echo(f"note: {note}")


def report_result(result: RestoreResult, as_json: bool, verb: str) -> None:
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


def ask(question: str) -> bool:
    """A yes/no question, default no. Ctrl+C or the end of the input at the prompt is a no, so an
    operation asking inside itself reports (and audits) it as cancelled, not as failed."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        click.echo("", err=True)
        return False


def confirmed_run(run: Callable[..., RestoreResult], *, dry_run: bool, yes: bool, as_json: bool,
                   verb: str, ask_inside: bool = True, **kwargs: Any) -> None:
    """Show the diff and ask before applying, unless --yes or --dry-run.

    With ``ask_inside`` the question is asked by the operation itself, after it has validated the
    source and computed the diff and before it changes anything (the API's ``confirm=`` hook):
    what is applied is exactly what was shown. Otherwise (merge, which would hold the write lock
    while a person reads) a dry run is shown first and the operation then runs afresh.
    """
    if as_json and not (dry_run or yes):
        raise click.UsageError("--json needs --yes or --dry-run (a confirmation prompt is not machine-readable)")
    if dry_run or yes:
        with progress_bar(f"{verb}", enabled=not as_json) as progress:
            result = run(dry_run=dry_run, progress=progress, **kwargs)
        report_result(result, as_json, verb)
        return
    question = f"Apply this {verb}? A restore point of the current data is taken first"
    if ask_inside:
        def confirm(preview: RestoreResult) -> bool:
            print_diff(preview)
            return ask(question)

        result = run(dry_run=False, confirm=confirm, **kwargs)
        report_result(result, as_json, verb)
        return
    preview = run(dry_run=True, **kwargs)
    print_diff(preview)
    if not ask(question):
        raise click.ClickException(f"{verb} cancelled; nothing was changed")
    with progress_bar(f"{verb}", enabled=not as_json) as progress:
        result = run(dry_run=False, progress=progress, **kwargs)
    report_result(result, as_json, verb)
