"""Build and run the Datasette that serves ``bakestore inspect`` and ``bakestore ui``.

* the live database read-only (``mode=ro`` on every connection; never ``immutable``: it changes
  under the server), as ``/bakestore``;
* the audit database read-only, as ``/audit_log`` (attached later by the UI if it appears);
* forensics case databases immutable (they never change), as ``/case_<folder>``;
* the metadata, canned queries and settings of :mod:`bakestore.inspect`;
* with ``ui=True`` the thin UI's routes (see :mod:`bakestore.datasette_plugin`).

Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any, Callable, Iterable

from ..audit import audit_path_for
from ..errors import UIError
from ..paths import default_export_dir
from ..inspect import AUDIT_DB, LIVE_DB, SETTINGS, case_db_name, runtime_metadata
from .config import UIConfig

HOST = "127.0.0.1"


def attach_readonly(datasette: Any, path: Path, name: str) -> Any:
    from ..datasette_plugin import ReadOnlyDatabase

    db = ReadOnlyDatabase(datasette, path=str(Path(path).resolve()), is_mutable=True)
    return datasette.add_database(db, name=name)


def _case_db(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "case.db"
    if not path.is_file():
        raise UIError(f"{path}: no forensics case database (expected a case folder with case.db)")
    return path


def build_datasette(db_path: str | Path, *, ui: bool = False, cases: Iterable[str | Path] = (),
                    demo: bool = False, export_dir: str | Path | None = None,
                    case_root: str | Path | None = None, settings: dict[str, Any] | None = None) -> Any:
    """A configured :class:`datasette.app.Datasette` (not started)."""
    from datasette.app import Datasette
    from datasette.database import Database

    db_path = Path(db_path)
    if not db_path.is_file():
        raise UIError(f"{db_path}: no such database (use `bakestore init` or `bakestore ui --demo`)")
    audit_path = audit_path_for(db_path)
    case_files: list[tuple[str, Path]] = []
    for case in cases:
        case_files.append((case_db_name(Path(case), [n for n, _ in case_files]), _case_db(Path(case))))
    readonly = [LIVE_DB, AUDIT_DB]
    plugin: dict[str, Any] = {"readonly_databases": readonly, "local_only": True}
    if ui:
        config = UIConfig(db_path=db_path.resolve(),
                          export_dir=Path(export_dir) if export_dir else default_export_dir(db_path.resolve()),
                          case_root=Path(case_root) if case_root else _default_case_dir(db_path.resolve()),
                          demo=demo, live_db=LIVE_DB, audit_db=AUDIT_DB)
        plugin.update(config.plugin_config())
        plugin["readonly_databases"] = readonly
    metadata = runtime_metadata(audit=True, cases=[n for n, _ in case_files], plugin_config=plugin)
    datasette = Datasette(metadata=metadata, settings={**SETTINGS, **(settings or {})})
    datasette.remove_database("_memory")  # no scratch database: only bakestore's files are served
    attach_readonly(datasette, db_path, LIVE_DB)
    if audit_path.exists():
        attach_readonly(datasette, audit_path, AUDIT_DB)
    for name, path in case_files:
        datasette.add_database(Database(datasette, path=str(path.resolve()), is_mutable=False), name=name)
    return datasette


def _default_case_dir(db_path: Path) -> Path:
    from .config import default_case_dir

    return default_case_dir(db_path)


def _run_sync(coro_func: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_func())
    finally:
        loop.close()


def bind(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:``port`` (0: a free port) and listening, before anything is
    served or opened.

    A port another server already listens on is bakestore's :class:`UIError` naming it (the CLI
    prints one line and exits 1), never a browser opened on that other server. The socket listens
    at once: with SO_REUSEADDR two sockets that are only bound may share a port, so a second
    ``bakestore ui`` starting meanwhile would pass this check and fail later with a traceback.
    Connections that arrive before the server runs wait in the backlog.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((HOST, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UIError(f"{HOST}:{port} is already in use (another bakestore ui or inspect, or another "
                          "program); stop it or choose another port with --port (0 picks a free one)") from None
        raise UIError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    return sock


def open_browser_when_started(server: Any, url: str, *, timeout: float = 60.0,
                              opener: Callable[[str], Any] = webbrowser.open) -> bool:
    """Open ``url`` once ``server`` (a uvicorn Server) has started; never if it stops or fails first."""
    deadline = time.monotonic() + timeout
    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    opener(url)
    return True


def serve(datasette: Any, *, port: int | None = None, sock: socket.socket | None = None,
          open_path: str | None = None, log_level: str = "warning") -> None:
    """Run the server on 127.0.0.1 until interrupted: on ``sock`` (from :func:`bind`) or ``port``.

    A browser is opened at ``open_path`` only once this server is listening.
    """
    import uvicorn

    if sock is None:
        sock = bind(port or 0)
    try:
        _run_sync(datasette.invoke_startup)  # the startup checks run before the port opens
        config = uvicorn.Config(datasette.app(), host=HOST, port=sock.getsockname()[1], log_level=log_level,
                                lifespan="on", workers=1)
        server = uvicorn.Server(config)
        if open_path is not None:
            url = f"http://{HOST}:{sock.getsockname()[1]}{open_path}"
            threading.Thread(target=open_browser_when_started, args=(server, url), daemon=True,
                             name="bakestore-open-browser").start()
        server.run(sockets=[sock])
    finally:
        sock.close()
