"""bakestore's Datasette plugin (entry point ``datasette: bakestore``).

Loaded by every Datasette in a process where bakestore is installed; it only does something for a
Datasette started with bakestore's plugin configuration (``bakestore inspect`` / ``bakestore ui``,
see :mod:`bakestore.web.server`):

* ``startup``: refuses to run when Datasette and bakestore loaded different SQLite libraries (two
  libraries on one file can silently drop each other's POSIX locks).
* read-only: the databases bakestore serves are :class:`ReadOnlyDatabase` objects (every
  connection, even one Datasette asks for writing, is ``mode=ro``; ``execute_write*`` refuse),
  their connections get ``PRAGMA query_only``, and ``permission_allowed`` denies every write action.
  Datasette 0.65 itself only runs SELECT statements from its SQL page.
* the thin UI (``bakestore ui``): its routes (``register_routes``), its templates from the installed
  ``bakestore.ui`` package (``prepare_jinja2_environment``, under the ``bakestore:`` prefix so no
  Datasette template is shadowed), its static files, menu links, template variables, a calm error
  page instead of a traceback (``handle_exception``) and a Host-header check against DNS rebinding.

CSRF protection is Datasette's own (asgi-csrf); this plugin deliberately implements no ``skip_csrf``.
"""

from __future__ import annotations

import logging
from typing import Any

from datasette import hookimpl
from datasette.database import Database
from datasette.utils.asgi import Response

from .errors import SQLiteVersionError

log = logging.getLogger(__name__)

#: Write actions of Datasette (1.0 names; 0.65 has none of these APIs, denying them is future-proofing).
WRITE_ACTIONS = frozenset({"insert-row", "upsert-row", "update-row", "delete-row", "create-table",
                           "alter-table", "drop-table", "execute-write-sql"})


class ReadOnlyDatabase(Database):
    """A Datasette database on a live file that Datasette can never write.

    Datasette 0.65 has no ``mode=`` argument; a mutable :class:`Database` reads with ``mode=ro`` but
    opens a writable connection on demand. Here every connection is ``mode=ro`` and the write
    entry points refuse outright, so not even a plugin can write through Datasette.
    """

    def connect(self, write: bool = False) -> Any:  # noqa: ARG002 - write is ignored on purpose
        return super().connect(write=False)

    async def execute_write_fn(self, fn: Any, block: bool = True) -> Any:  # noqa: ARG002
        raise PermissionError(f"{self.name}: bakestore serves this database read-only")


def plugin_settings(datasette: Any) -> dict[str, Any]:
    return datasette.plugin_config("bakestore") or {}


def ui_enabled(datasette: Any) -> bool:
    return bool(plugin_settings(datasette).get("ui"))


def check_sqlite_library() -> None:
    """One SQLite library per process: Datasette's must be bakestore's."""
    import datasette.utils.sqlite as datasette_sqlite

    from .sqlite import sqlite3 as bakestore_sqlite3
    from .store import check_one_sqlite_module

    if datasette_sqlite.sqlite3 is not bakestore_sqlite3:
        raise SQLiteVersionError(
            f"Datasette uses {datasette_sqlite.sqlite3.__name__} but bakestore uses {bakestore_sqlite3.__name__}; "
            "two SQLite libraries in one process can corrupt the database")
    check_one_sqlite_module()


@hookimpl
def startup(datasette: Any) -> None:
    check_sqlite_library()


@hookimpl
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

    from .web.resources import templates_dir

    env.loader = ChoiceLoader([env.loader, PrefixLoader({"bakestore": FileSystemLoader(str(templates_dir()))},
                                                        delimiter=":")])


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    if database in plugin_settings(datasette).get("readonly_databases", ()):
        conn.execute("PRAGMA query_only = 1")


@hookimpl
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> bool | None:
    if action in WRITE_ACTIONS and plugin_settings(datasette):
        return False
    return None


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    from datasette.utils.asgi import asgi_static

    from .web.resources import static_dir

    routes: list[tuple[str, Any]] = [(r"^/-/static-bakestore/(?P<path>.*)$", asgi_static(str(static_dir())))]
    if ui_enabled(datasette):
        from .web.views import ROUTES

        routes.extend(ROUTES)
    return routes


@hookimpl
def extra_template_vars(datasette: Any, request: Any) -> dict[str, Any]:
    from ._version import __version__

    settings = plugin_settings(datasette)
    return {"bakestore_version": __version__, "bakestore_ui": bool(settings.get("ui")),
            "bakestore_demo": bool(settings.get("demo"))}


@hookimpl
def menu_links(datasette: Any, actor: Any, request: Any) -> list[dict[str, str]] | None:
    if not ui_enabled(datasette):
        return None
    from .web.views import NAV

    return [{"href": datasette.urls.path(href), "label": f"bakestore: {label}"} for href, label in NAV]


@hookimpl
def handle_exception(datasette: Any, request: Any, exception: Exception) -> Any:
    """A calm error page for the UI's pages; Datasette's own pages keep Datasette's handler."""
    if not ui_enabled(datasette) or request is None:
        return None
    from .web.views import is_ui_path, render_error

    if not is_ui_path(request.path):
        return None

    async def inner() -> Response:
        # Datasette's own (trylast) handler still runs and prints the traceback to the console.
        return await render_error(datasette, request, exception)

    return inner


_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """Refuse requests whose Host is not this machine (DNS rebinding), for bakestore's servers only."""

    def wrap(app: Any) -> Any:
        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http" and plugin_settings(datasette).get("local_only"):
                host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
                name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
                if name not in _ALLOWED_HOSTS:
                    await Response.text(f"bakestore serves 127.0.0.1 only; refused Host {host!r}",
                                        status=421).asgi_send(send)
                    return
            await app(scope, receive, send)

        return guarded

    return wrap
