"""Web commands: ``inspect`` (Datasette, read-only), ``ui`` (the thin web UI) and ``metadata``."""

from __future__ import annotations

import socket
from pathlib import Path

import click
from click.core import ParameterSource

from ..errors import UIError
from ..inspect import METADATA_FILE, metadata_is_current, write_metadata
from . import CliContext

port_option = click.option("--port", type=click.IntRange(0, 65535), default=None,
                           help="Port on 127.0.0.1 (default: 8001 for ui, 8002 for inspect; 0 picks a free one).")


def _bind(port: int | None, default: int) -> socket.socket:
    """The port bound before anything else: a port in use is one line and exit 1, not a browser
    opened on the other server."""
    from ..web.server import bind

    return bind(default if port is None else port)


def _db_given_on_command_line(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return root.params.get("db") is not None and root.get_parameter_source("db") == ParameterSource.COMMANDLINE


@click.command()
@port_option
@click.option("--case", "cases", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A forensics case folder (or its case.db) to serve too; repeatable.")
@click.pass_obj
def inspect(obj: CliContext, port: int | None, cases: tuple[Path, ...]) -> None:
    """Browse the database read-only in Datasette on 127.0.0.1.

    Serves the live database read-only (mode=ro), its audit log, and any --case databases.
    Arbitrary SQL is allowed for reading, with a time limit; writes are refused.
    """
    from ..web.server import build_datasette, serve

    datasette = build_datasette(obj.db_path, cases=cases)
    sock = _bind(port, 8002)
    port = sock.getsockname()[1]
    click.echo(f"bakestore inspect: http://127.0.0.1:{port}/ (read-only; Ctrl+C stops)", err=True)
    serve(datasette, sock=sock)


@click.command()
@port_option
@click.option("--demo", is_flag=True,
              help="Use a demo database (built if missing), never your real data: --db if given, "
                   "else the per-user demo location.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.pass_context
def ui(ctx: click.Context, port: int | None, demo: bool, no_browser: bool) -> None:
    """The bakestore web UI on 127.0.0.1 (with every table read-only in Datasette too)."""
    obj: CliContext = ctx.obj
    if demo:
        from ..paths import demo_db_path

        # BAKESTORE_DB names the user's real database: a demo never goes there.
        path = obj.db_path if _db_given_on_command_line(ctx) else demo_db_path()
    else:
        path = obj.db_path
        if not path.exists():
            raise UIError(f"{path}: no such database (create it with `bakestore init`, "
                          "or try `bakestore ui --demo`)")
    sock = _bind(port, 8001)  # before the demo is built: a busy port is said at once
    try:
        if demo and not path.exists():
            from ..demo import build_demo

            click.echo(f"building the demo database at {path} …", err=True)
            counts = build_demo(path)
            click.echo(f"demo database ready: {sum(counts.values()):,} rows", err=True)
        from ..web.server import build_datasette, serve

        datasette = build_datasette(path, ui=True, demo=demo)
        port = sock.getsockname()[1]
        click.echo(f"bakestore ui: http://127.0.0.1:{port}/  ({path}{', demo data' if demo else ''}; Ctrl+C stops)",
                   err=True)
        serve(datasette, sock=sock, open_path=None if no_browser else "/")
    finally:
        sock.close()


@click.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if the file is out of date.")
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path), default=Path(METADATA_FILE),
              show_default=True, help="The metadata file.")
def metadata(check: bool, path: Path) -> None:
    """Write datasette-metadata.yml (titles, descriptions, units) from the registry."""
    if check:
        if not metadata_is_current(path):
            click.echo(f"{path} is out of date with the registry; run `bakestore metadata`", err=True)
            raise SystemExit(1)
        click.echo(f"{path} is up to date")
        return
    changed = write_metadata(path)
    click.echo(f"{path} {'written' if changed else 'already up to date'}")


commands = [inspect, ui, metadata]
