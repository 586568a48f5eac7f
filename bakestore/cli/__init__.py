"""The ``bakestore`` command line: a thin layer over the Python API.

Each capability keeps its commands in its own module here (``core``, ``demo``, ``exports``,
``legacy``, ``forensics``, ``web``, ``sync``); this module builds the group, resolves the
database path (``--db`` / ``BAKESTORE_DB`` / the per-user default, in that order) and turns every
:class:`~bakestore.errors.BakestoreError` into one line on stderr with exit status 1, in exactly
one place. Usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import click

from .._version import __version__
from ..errors import BakestoreError
from ..sqlite import sqlite3

#: Command modules, each exporting ``commands``: a list of click commands to add to the group.
COMMAND_MODULES = ("core", "demo", "exports", "legacy", "forensics", "web", "sync")


class CliContext:
    """What every command gets via ``@click.pass_obj``: the database path, resolved on first use."""

    def __init__(self, db: Path | None) -> None:
        self._db = db

    @property
    def db_path(self) -> Path:
        if self._db is None:
            from ..paths import default_db_path

            self._db = default_db_path()
        return self._db

    def open_store(self, *, create: bool = False, **kwargs: Any) -> "Any":
        from ..store import Store

        return Store(self.db_path, create=create, **kwargs)


class BakestoreGroup(click.Group):
    """A click group that translates bakestore's errors into one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BakestoreError as exc:
            raise click.ClickException(" ".join(str(exc).split("\n"))) from None
        except (sqlite3.Error, sqlite3.Warning) as exc:
            # Not ours, but still one line: e.g. a --where clause with two statements.
            raise click.ClickException(f"SQLite: {' '.join(str(exc).split())}") from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


@click.group(cls=BakestoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), envvar="BAKESTORE_DB",
              help="Database file (default: $BAKESTORE_DB, else bakestore.db in the user data dir).")
@click.option("-v", "--verbose", is_flag=True, help="Log what bakestore does to stderr.")
@click.version_option(__version__, prog_name="bakestore")
@click.pass_context
def main(ctx: click.Context, db: Path | None, verbose: bool) -> None:
    """Keep a home baker's planning data safe: one registry, safe restore, forensics, sync."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ctx.obj = CliContext(db)


for _name in COMMAND_MODULES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    for _command in _module.commands:
        main.add_command(_command)

__all__ = ["BakestoreGroup", "CliContext", "main"]
