"""Route handlers of the UI. Each one parses the request, calls the bakestore API in a worker
thread (SQLite and file work never block the event loop) and renders a template.

Errors that a person can cause are :class:`~bakestore.errors.BakestoreError`\\ s: they are shown
as messages on the page (validation messages next to their field), never as a traceback.
Destructive actions (delete, restore, undo) are POSTs that need an explicit confirmation; every
POST carries Datasette's CSRF token.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote, urlencode

from datasette.utils.asgi import Response

from .. import audit as audit_log
from ..watch import default_watch_dir, watcher_status
from ..errors import (
    BakestoreError,
    CancelledError,
    ConflictError,
    DeleteRestrictedError,
    ForensicsError,
    LockedError,
    NotFoundError,
    RestoreError,
    ShrinkRefusedError,
    SourceError,
    UnknownTableError,
    ValidationError,
)
from ..exports import MANIFEST, list_exports
from ..registry import REGISTRY, TableSpec
from ..restore import RestoreResult, list_restore_points
from ..deletes import audited_delete, delete_plan
from ..store import DeleteResult, Store
from . import forms
from .charts import timeline_svg
from .config import UIConfig

PAGE_SIZE = 50
#: Columns shown in a table's list (the detail page shows all of them).
LIST_COLUMNS = 7

NAV: list[tuple[str, str]] = [("/", "Dashboard"), ("/data", "Data"), ("/backups", "Backups"),
                              ("/forensics", "Forensics"), ("/audit", "Audit")]
_UI_PREFIXES = ("/data", "/backups", "/forensics", "/audit")


def is_ui_path(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in _UI_PREFIXES)


# --------------------------------------------------------------------------- plumbing


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def open_store(config: UIConfig) -> Store:
    return Store(config.db_path, create=False)


def row_path(table: str, key: str) -> str:
    # Every character that could end the key is encoded, "/" included: a key "x/delete" must not
    # open the delete page of "x". The routes take the key up to /edit, /delete or the end.
    return f"/data/{table}/{quote(key, safe='')}"


def _active(path: str) -> str:
    for href, _ in reversed(NAV):
        if href != "/" and (path == href or path.startswith(href + "/")):
            return href
    return "/"


async def render(datasette: Any, request: Any, template: str, context: Mapping[str, Any] | None = None,
                 *, status: int = 200) -> Response:
    config = UIConfig.from_datasette(datasette)
    base = {"nav": NAV, "active": _active(request.path), "config": config, "db_file": config.db_path.name,
            "browse_url": f"/{config.live_db}" if config.live_db else None, "row_path": row_path}
    html = await datasette.render_template(f"bakestore:{template}", {**base, **(context or {})}, request=request)
    return Response.html(html, status=status)


def _status_for(exc: BaseException) -> int:
    if isinstance(exc, (NotFoundError, UnknownTableError)):
        return 404
    if isinstance(exc, LockedError):
        return 409
    if isinstance(exc, BakestoreError):
        return 400
    return 500


async def render_error(datasette: Any, request: Any, exc: BaseException, *, status: int | None = None) -> Response:
    status = status or _status_for(exc)
    if isinstance(exc, BakestoreError):
        title, message = "That did not work", str(exc)
    else:
        title = "Something went wrong"
        message = (f"An unexpected error stopped this page ({type(exc).__name__}: {exc}). "
                   "The details are in the server's console.")
    if status == 404:
        title = "Not found"
    return await render(datasette, request, "error.html", {"title": title, "message": message}, status=status)


def _args(request: Any) -> dict[str, str]:
    return {key: request.args.get(key) for key in request.args.keys()}


def _flash(datasette: Any, request: Any, message: str, *, error: bool = False) -> None:
    datasette.add_message(request, message, datasette.ERROR if error else datasette.INFO)


def _redirect(path: str) -> Response:
    return Response.redirect(path)


def _spec(table: str) -> TableSpec:
    return REGISTRY[table]  # UnknownTableError → 404


def _strip_where(spec: TableSpec, field: str | None, message: str, record: str | None = None) -> str:
    """'ingredients.slug (record 0190…): another row…' shown next to the slug field reads better
    without saying where: the table, the field and the record (before or after the colon)."""
    if not field:
        return message
    if record:
        message = message.replace(f" (record {record})", "")
    match = re.match(rf"{re.escape(spec.name)}(?:\.{re.escape(field)})?(?: \(record [^)]*\))?: ", message)
    if match:
        message = message[match.end():]
    # pydantic's wording for a ValueError raised by a validator
    return message[len("Value error, "):] if message.startswith("Value error, ") else message


def _fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


def _mtime(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def export_info(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"name": path.name, "path": str(path), "created_at": None, "total_rows": None}
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        info["created_at"] = manifest.get("created_at")
        info["total_rows"] = manifest.get("total_rows")
        info["tables"] = len(manifest.get("tables", []))
    except (OSError, ValueError):
        info["unreadable"] = True
    info["written_at"] = _mtime(path)
    return info


def point_info(path: Path) -> dict[str, Any]:
    # <UTC stamp>Z-<sequence>-<operation>.db (older points: <stamp>Z-<operation>[-n].db)
    match = re.match(r"(\d{8}T\d{6})\d*Z-(?:\d+-)?(.+?)(?:-\d+)?\.db$", path.name)
    taken = None
    if match:
        taken = _dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"name": path.name, "path": str(path), "bytes": _fmt_bytes(path.stat().st_size),
            "taken_at": taken or _mtime(path), "before": match.group(2) if match else "?"}


_WATCHING_STATES = ("starting", "watching", "waiting", "locked")


def watcher_info(db_path: Path) -> dict[str, Any]:
    """The auto-export watcher's state for the dashboard, from ``bakestore.watch.watcher_status``."""
    status = watcher_status(db_path)
    if not status:
        return {"running": False, "state": "not running", "summary": "watcher: not running", "details": {}}
    state = str(status.get("state") or "unknown")
    running = state in _WATCHING_STATES
    details: dict[str, Any] = {}
    if running and status.get("pid"):
        details["pid"] = status["pid"]
    if status.get("started_at"):
        details["since"] = status["started_at"]
    last = status.get("last_export")
    if isinstance(last, dict) and last.get("at"):
        details["last auto-export"] = f"{last['at']} ({last.get('rows', '?')} rows)"
    if status.get("last_error") or status.get("error"):
        details["last error"] = status.get("last_error") or status.get("error")
    if status.get("stale"):
        details["note"] = "the watcher process is gone"
    return {"running": running, "state": state, "summary": f"watcher: {state if running else 'not running'}",
            "details": details}


# --------------------------------------------------------------------------- dashboard


def _dashboard_data(config: UIConfig) -> dict[str, Any]:
    with open_store(config) as store:
        counts = store.counts()
        health = store.check()
        points = store.restore_points()
    groups = []
    for group, specs in REGISTRY.groups().items():
        tables: list[dict[str, Any]] = [{"name": s.name, "rows": counts[s.name], "description": s.description}
                                        for s in specs]
        groups.append({"name": group, "tables": tables, "rows": sum(t["rows"] for t in tables),
                       "system": all(s.is_system for s in specs)})
    exports = all_exports(config)
    return {"groups": groups, "health": health, "last_export": _export_entry(*exports[-1]) if exports else None,
            "export_count": len(exports), "last_point": point_info(points[0]) if points else None,
            "point_count": len(points), "watcher": watcher_info(config.db_path),
            "total_rows": sum(counts[s.name] for s in REGISTRY.domain_tables)}


async def dashboard(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    data = await in_thread(_dashboard_data, config)
    return await render(datasette, request, "dashboard.html", {"title": "Dashboard", **data})


# --------------------------------------------------------------------------- data


def _data_index(config: UIConfig) -> dict[str, Any]:
    with open_store(config) as store:
        counts = store.counts()
    groups = [{"name": g, "tables": [{"name": s.name, "rows": counts[s.name], "description": s.description,
                                      "editable": forms.editable(s)} for s in specs]}
              for g, specs in REGISTRY.groups().items()]
    return {"groups": groups}


async def data_index(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    data = await in_thread(_data_index, config)
    return await render(datasette, request, "data_index.html", {"title": "Data", **data})


class _Labeller:
    """Labels (and URL keys) of referenced rows, looked up once per page."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], tuple[str, str] | None] = {}

    def __call__(self, table: str, row_id: Any) -> tuple[str, str] | None:
        if row_id is None:
            return None
        key = (table, str(row_id))
        if key not in self.cache:
            spec = REGISTRY[table]
            try:
                row = self.store.get(table, str(row_id))
                self.cache[key] = (forms.row_label(self.store, spec, row), forms.row_url_key(self.store, spec, row))
            except NotFoundError:
                self.cache[key] = None
        return self.cache[key]


def _cell(spec: TableSpec, column_name: str, value: Any, labeller: _Labeller) -> dict[str, Any]:
    column = spec.column(column_name)
    cell: dict[str, Any] = {"text": forms.display(column, value), "href": None, "kind": column.kind}
    if column.fk is not None and value is not None:
        found = labeller(column.fk.table, value)
        if found is None:
            cell["text"] = f"{value} (missing)"
        else:
            cell["text"], key = found
            cell["href"] = row_path(column.fk.table, key)
            cell["kind"] = "ref"
    return cell


def _list_columns(spec: TableSpec) -> list[str]:
    if not spec.has_row_identity:
        return list(spec.column_names)
    preferred = list(spec.natural_key or ())
    for column in forms.form_columns(spec):
        if column.name not in preferred and column.kind != "json" and not (column.kind == "text" and column.max_length is None):
            preferred.append(column.name)
    return preferred[:LIST_COLUMNS]


def _table_page(config: UIConfig, table: str, args: Mapping[str, str]) -> dict[str, Any]:
    spec = _spec(table)
    filters = {k: v for k, v in args.items() if spec.has_column(k)}
    try:
        page = max(1, int(args.get("page", "1")))
    except ValueError:
        page = 1
    where = " AND ".join(f'"{k}" = ?' for k in filters) or None
    params = list(filters.values())
    order = ", ".join(f'"{c}"' for c in (spec.natural_key or spec.pk))
    columns = _list_columns(spec)
    with open_store(config) as store:
        total = store.db.table(spec.name).count_where(where, params) if where else store.count(spec.name)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(page, pages)
        labeller = _Labeller(store)
        rows = []
        for row in store.rows(spec.name, where=where, params=params, order_by=order, limit=PAGE_SIZE,
                              offset=(page - 1) * PAGE_SIZE):
            href = row_path(spec.name, forms.row_url_key(store, spec, row)) if spec.has_row_identity else None
            rows.append({"href": href, "cells": [_cell(spec, c, row.get(c), labeller) for c in columns]})
        filter_labels = []
        for name, value in filters.items():
            column = spec.column(name)
            found = labeller(column.fk.table, value) if column.fk is not None else None
            filter_labels.append({"column": name, "value": found[0] if found else value})

    def link(p: int) -> str:
        return f"/data/{spec.name}?" + urlencode({**filters, "page": p})

    return {"spec": spec, "columns": columns, "rows": rows, "total": total, "page": page, "pages": pages,
            "prev": link(page - 1) if page > 1 else None, "next": link(page + 1) if page < pages else None,
            "filters": filter_labels, "editable": forms.editable(spec), "offset": (page - 1) * PAGE_SIZE}


async def table_list(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    table = request.url_vars["table"]
    data = await in_thread(_table_page, config, table, _args(request))
    return await render(datasette, request, "data_list.html", {"title": table, **data})


def _row_page(config: UIConfig, table: str, key: str) -> dict[str, Any]:
    spec = _spec(table)
    if not spec.has_row_identity:
        raise NotFoundError(f"{spec.name}: rows of this table have no single id; see the table's list")
    with open_store(config) as store:
        row = store.get(spec.name, key)
        labeller = _Labeller(store)
        cells = [{"name": c.name, "label": forms.label_for(c.name), "cell": _cell(spec, c.name, row.get(c.name), labeller),
                  "doc": c.doc} for c in spec.columns]
        referenced_by = []
        for fk in REGISTRY.references_to(spec.name):
            n = store.db.table(fk.table).count_where(f'"{fk.column}" = ?', [row["id"]])
            referenced_by.append({"table": fk.table, "column": fk.column, "on_delete": fk.on_delete, "rows": n,
                                  "href": f"/data/{fk.table}?" + urlencode({fk.column: row["id"]})})
        label = forms.row_label(store, spec, row)
        url_key = forms.row_url_key(store, spec, row)
    return {"spec": spec, "row": row, "cells": cells, "label": label, "key": url_key,
            "referenced_by": referenced_by, "editable": forms.editable(spec)}


async def row_detail(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    table, key = request.url_vars["table"], unquote(request.url_vars["key"])
    data = await in_thread(_row_page, config, table, key)
    return await render(datasette, request, "data_detail.html", {"title": f"{table}: {data['label']}", **data})


ROW_ID_FIELD = "_row_id"
ROW_VERSION_FIELD = "_row_version"


def _edited_row(store: Store, spec: TableSpec, key: str, form: Mapping[str, str] | None) -> dict[str, Any]:
    """The row an edit page is about: the one whose id the page posted (the key in the URL may
    name another row by now), else the one the key names."""
    if form is not None and form.get(ROW_ID_FIELD):
        return store.get(spec.name, form[ROW_ID_FIELD])
    return store.get(spec.name, key)


def _form_page(config: UIConfig, table: str, key: str | None, raw: Mapping[str, str] | None = None,
               errors: Mapping[str, str] | None = None, contested: list[str] | None = None) -> dict[str, Any]:
    spec = _spec(table)
    if not forms.editable(spec):
        raise ValidationError(f"{spec.name}: bakestore's own bookkeeping table; it is read-only here", table=spec.name)
    with open_store(config) as store:
        row = _edited_row(store, spec, key, raw) if key is not None else None
        if row is not None and raw is not None:
            raw = forms.with_absent_filled(store, spec, row, raw, forms.read_shown(raw))
            if contested is None:
                # A conflict page shown again after another mistake: the values changed meanwhile
                # stay shown next to their boxes (and the tick stays as it was).
                contested = forms.contested_still(spec, raw, ticked_counts=False)
        fields = forms.build_fields(store, spec, row, raw=raw, errors=errors)
        if row is not None and contested:
            notes = forms.current_notes(store, spec, row, contested)
            for f in fields:
                f.current = notes.get(f.name)
        label = forms.row_label(store, spec, row) if row else None
        url_key = forms.row_url_key(store, spec, row) if row else None
    context = {"spec": spec, "fields": fields, "row": row, "label": label, "key": url_key}
    if row is not None:
        if raw is None:
            context.update(row_version=row["row_version"], shown=forms.shown_token(fields), contested="")
        else:
            # Shown again after an error: the page is still based on what was first opened, so
            # the version and the digests are the posted ones, never the row's current ones
            # (that would let the next save pass the version check with old values in the boxes).
            context.update(row_version=raw.get(ROW_VERSION_FIELD, ""), shown=raw.get(forms.SHOWN_FIELD, ""),
                           contested=raw.get(forms.CONTESTED_FIELD, ""),
                           overwrite=raw.get(forms.OVERWRITE_FIELD) == "yes")
    return context


def _conflict_page(config: UIConfig, table: str, key: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The edit form after a conflict: rebased on the row as it is now (see :func:`forms.rebase`)."""
    spec = _spec(table)
    with open_store(config) as store:
        row = _edited_row(store, spec, key, form)
        raw, notes, shown, contested = forms.rebase(store, spec, row, form, forms.read_shown(form))
        fields = forms.build_fields(store, spec, row, raw=raw)
        for f in fields:
            f.current = notes.get(f.name)
        label = forms.row_label(store, spec, row)
        url_key = forms.row_url_key(store, spec, row)
    return {"spec": spec, "fields": fields, "row": row, "label": label, "key": url_key,
            "row_version": row["row_version"], "shown": shown, "contested": contested}


class _NotThisPage(BakestoreError):
    """A save refused before anything is compared: the post is not from this row's edit page."""

    def __init__(self, message: str, *, link: tuple[str, str] | None = None, status: int = 409) -> None:
        super().__init__(message)
        self.link = link
        self.status = status


def _other_row(store: Store, spec: TableSpec, key: str, row_id: str) -> _NotThisPage:
    try:
        opened = store.get(spec.name, row_id)
    except NotFoundError:
        opened = None
    if opened is not None and str(opened["id"]) != row_id:
        opened = None
    message = (f"Not saved: this page was for another row ({spec.name} {row_id}); it was renamed or removed "
               f"since the page was opened, and “{key}” now names {'a different row' if key else 'no row'}. "
               "Nothing was changed.")
    if opened is None:
        return _NotThisPage(message + " That row no longer exists.")
    return _NotThisPage(message, link=(row_path(spec.name, row_id), "Open the row this page was for"))


class _Contested(ConflictError):
    """A save from a conflict page would replace values changed meanwhile, without the tick."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(f"not saved: {', '.join(fields)} changed meanwhile")
        self.fields = fields


def _save(config: UIConfig, table: str, key: str | None, form: Mapping[str, str]) -> tuple[str, bool]:
    """Insert or update through the store; returns the URL key of the row and whether it was written."""
    spec = _spec(table)
    with open_store(config) as store:
        if key is None:
            saved = store.insert(spec.name, forms.parse_form(store, spec, form, update=False))
            return forms.row_url_key(store, spec, saved), True
        # The row and the version the editor was showing: the key in the URL may name another
        # row by now (renamed, and another row took its key), and a change made meanwhile (sync,
        # another window, the CLI) is not silently overwritten. Checked first, so a conflict is
        # reported even when an input also has a mistake. A post that does not say both is refused.
        row_id, expected = form.get(ROW_ID_FIELD) or "", form.get(ROW_VERSION_FIELD) or ""
        if not row_id or not expected:
            raise _NotThisPage("Not saved: the form did not say which row and which version of it the page "
                               "showed, so a change made meanwhile could be overwritten unseen. Nothing was "
                               "changed; open the edit page again.",
                               link=(row_path(spec.name, key) + "/edit", "Open the edit page"), status=400)
        try:
            current = store.get(spec.name, key)
        except NotFoundError:
            raise _other_row(store, spec, key, row_id) from None
        if str(current["id"]) != row_id:
            raise _other_row(store, spec, key, row_id)
        if current["row_version"] != expected:
            raise ConflictError(f"{spec.name} {current['id']} was changed by someone else since it was read "
                                f"(version {current['row_version']}, expected {expected}); nothing was saved")
        still = forms.contested_still(spec, form)
        if still:
            raise _Contested(still)
        data = forms.parse_form(store, spec, form, update=True, shown=forms.read_shown(form))
        if not data:
            return forms.row_url_key(store, spec, current), False
        saved = store.update(spec.name, current["id"], data, expected_version=expected)
        return forms.row_url_key(store, spec, saved), True


_CONFLICT_MESSAGE = ("Not saved: this row was changed by someone else (another window, a sync or the command "
                     "line) since this page was opened. The boxes now hold the row as it is, with your changes "
                     "kept; where the row changed in a box you changed too, its current value is shown below "
                     "that box. Check them and save again.")
_CONTESTED_MESSAGE = ("Not saved: some of your values would replace values that were changed meanwhile (shown "
                      "below their boxes). Tick “replace them with mine” to keep yours, or put the current values "
                      "back.")


async def _form_view(datasette: Any, request: Any, key: str | None) -> Response:
    config = UIConfig.from_datasette(datasette)
    table = request.url_vars["table"]
    template_title = f"New {table} row" if key is None else f"Edit {table}"
    if request.method == "POST":
        form = await _form(request)
        try:
            saved_key, written = await in_thread(_save, config, table, key, form)
        except _NotThisPage as exc:
            return await render(datasette, request, "error.html",
                                {"title": "Not saved", "message": str(exc), "link": exc.link}, status=exc.status)
        except _Contested as exc:
            data = await in_thread(_form_page, config, table, key, raw=form, contested=exc.fields)
            return await render(datasette, request, "data_form.html",
                                {"title": template_title, **data, "form_error": _CONTESTED_MESSAGE,
                                 "field_error_summary": None}, status=400)
        except ConflictError:
            assert key is not None
            data = await in_thread(_conflict_page, config, table, key, form)
            return await render(datasette, request, "data_form.html",
                                {"title": template_title, **data, "form_error": _CONFLICT_MESSAGE,
                                 "field_error_summary": None}, status=400)
        except BakestoreError as exc:
            spec = _spec(table)
            field = forms.field_of(spec, exc)
            message = _strip_where(spec, field, str(exc), getattr(exc, "record", None))
            data = await in_thread(_form_page, config, table, key, raw=form,
                                   errors={field: message} if field else {})
            return await render(datasette, request, "data_form.html",
                                {"title": template_title, **data, "form_error": None if field else str(exc),
                                 "field_error_summary": str(exc) if field else None}, status=400)
        _flash(datasette, request, f"Saved {table} {saved_key}." if written
               else "Nothing to save: no field was changed.")
        return _redirect(row_path(table, saved_key))
    data = await in_thread(_form_page, config, table, key)
    return await render(datasette, request, "data_form.html", {"title": template_title, **data})


async def row_create(datasette: Any, request: Any) -> Response:
    return await _form_view(datasette, request, None)


async def row_edit(datasette: Any, request: Any) -> Response:
    return await _form_view(datasette, request, unquote(request.url_vars["key"]))


def plan_fingerprint(result: DeleteResult) -> str:
    """Names exactly what a delete removes and clears: the page posts it back with the confirmation."""
    doc = {"row": [result.table, result.id], "removed": sorted(result.cascaded), "cleared": sorted(result.nulled)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _delete_page(config: UIConfig, table: str, key: str) -> dict[str, Any]:
    """The row, and everything deleting it would remove or clear, planned as the store does it."""
    data = _row_page(config, table, key)
    context: dict[str, Any] = {"plan": None, "plan_refusal": None, "plan_token": None}
    with open_store(config) as store:
        try:
            result = store.delete(table, str(data["row"]["id"]), dry_run=True)
        except DeleteRestrictedError as exc:
            context["plan_refusal"] = str(exc)
            return {**data, **context}
    counts = delete_plan(result)
    removed = [{"table": t, "rows": n, "this": t == result.table} for t, n in counts["removed"].items()]
    cleared = [{"table": c.split(".")[0], "column": c.split(".", 1)[1], "rows": n} for c, n in counts["cleared"].items()]
    context["plan"] = {"removed": removed, "cleared": cleared, "total": sum(counts["removed"].values())}
    context["plan_token"] = plan_fingerprint(result)
    return {**data, **context}


def _delete(config: UIConfig, table: str, key: str, token: str) -> str:
    spec = _spec(table)
    if not forms.editable(spec):
        raise ValidationError(f"{spec.name}: bakestore's own bookkeeping table; it is read-only here", table=spec.name)
    with open_store(config) as store:
        # Only the plan the page showed is carried out; the delete is audited like every other.
        result = audited_delete(store, spec.name, key, expected=lambda plan: plan_fingerprint(plan) == token,
                                via="ui")
    message = f"Deleted {table} {key}."
    if result.cascaded:
        message += f" Also deleted {len(result.cascaded)} row(s) that depended on it (ON DELETE CASCADE)."
    if result.nulled:
        message += f" Cleared the reference in {len(result.nulled)} row(s) (ON DELETE SET NULL)."
    return message


async def row_delete(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    table, key = request.url_vars["table"], unquote(request.url_vars["key"])
    error = None
    if request.method == "POST":
        form = await _form(request)
        if form.get("confirm") != "yes":
            error = "Deleting needs the confirmation: tick the box and press Delete."
        else:
            try:
                message = await in_thread(_delete, config, table, key, form.get("plan", ""))
            except CancelledError:
                error = ("Nothing was deleted: the rows it would remove or clear changed since this page was shown. "
                         "Check the list below and confirm again.")
            except (DeleteRestrictedError, ValidationError) as exc:
                error = str(exc)
            else:
                _flash(datasette, request, message)
                return _redirect(f"/data/{table}")
    data = await in_thread(_delete_page, config, table, key)
    return await render(datasette, request, "data_delete.html",
                        {"title": f"Delete {table}: {data['label']}", **data, "error": error},
                        status=400 if error else 200)


# --------------------------------------------------------------------------- backups


def auto_export_dirs(config: UIConfig) -> list[Path]:
    """Where ``bakestore watch`` writes its exports for this database: its default folder
    (``<db>-exports/auto``) and the folder a running or last watcher reports."""
    dirs = [default_watch_dir(config.db_path)]
    status = watcher_status(config.db_path) or {}
    if isinstance(status.get("export_dir"), str) and status["export_dir"]:
        dirs.append(Path(status["export_dir"]))
    out: list[Path] = []
    for folder in dirs:
        if folder.resolve() != config.export_dir.resolve() and folder.resolve() not in [d.resolve() for d in out]:
            out.append(folder)
    return out


def all_exports(config: UIConfig) -> list[tuple[Path, bool]]:
    """Every export the UI offers, oldest first: (folder, written automatically by the watcher)."""
    found = [(p, False) for p in list_exports(config.export_dir)]
    for folder in auto_export_dirs(config):
        found.extend((p, True) for p in list_exports(folder))
    # Export names start with their UTC time: by name is by time, whichever folder they are in.
    return sorted(found, key=lambda item: (item[0].name, item[1]))


def _export_entry(path: Path, automatic: bool) -> dict[str, Any]:
    return {**export_info(path), "automatic": automatic, "param": "auto" if automatic else "export"}


def _backups_data(config: UIConfig) -> dict[str, Any]:
    exports = [_export_entry(p, auto) for p, auto in reversed(all_exports(config))]
    points = [point_info(p) for p in list_restore_points(config.db_path)]
    return {"exports": exports, "points": points, "export_dir": str(config.export_dir),
            "auto_dirs": [str(d) for d in auto_export_dirs(config)]}


async def backups(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    data = await in_thread(_backups_data, config)
    return await render(datasette, request, "backups.html", {"title": "Backups", **data})


def _export(config: UIConfig) -> str:
    with open_store(config) as store:
        result = store.export(config.export_dir)
    return f"Exported {result.total_rows} rows to {result.path}."


async def export_now(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    if request.method != "POST":
        return _redirect("/backups")
    await _form(request)
    try:
        message = await in_thread(_export, config)
    except BakestoreError as exc:
        _flash(datasette, request, f"Export failed: {exc}", error=True)
    else:
        _flash(datasette, request, message)
    return _redirect("/backups")


def _resolve_source(config: UIConfig, params: Mapping[str, str]) -> tuple[Path, str, dict[str, str]]:
    """The restore source a form names: an export or a restore point by name, or a path."""
    if params.get("export"):
        for path in list_exports(config.export_dir):
            if path.name == params["export"]:
                return path, f"export {path.name}", {"export": path.name}
        raise SourceError(f"no export named {params['export']!r} in {config.export_dir}")
    if params.get("auto"):
        for folder in auto_export_dirs(config):
            for path in list_exports(folder):
                if path.name == params["auto"]:
                    return path, f"automatic export {path.name}", {"auto": path.name}
        raise SourceError(f"no automatic export named {params['auto']!r}")
    if params.get("point"):
        for path in list_restore_points(config.db_path):
            if path.name == params["point"]:
                return path, f"restore point {path.name}", {"point": path.name}
        raise SourceError(f"no restore point named {params['point']!r}")
    if params.get("path", "").strip():
        path = Path(params["path"].strip()).expanduser()
        return path, str(path), {"path": str(path)}
    raise SourceError("choose what to restore from: an export, a restore point or a path")


def diff_fingerprint(result: RestoreResult) -> str:
    doc = {"source": result.source_sha256, "diff": {t: d.as_dict() for t, d in sorted(result.diff.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def diff_rows(result: RestoreResult) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [{"table": t, **d.as_dict(), "unchanged": d.unchanged and d.before == d.after}
                                  for t, d in result.diff.items()]
    changed = [r for r in rows if not r["unchanged"]]
    # A fast undo knows only the counts: its added/removed/changed are None, shown as "?".
    totals = {k: "?" if any(r[k] is None for r in rows) else sum(r[k] for r in rows)
              for k in ("before", "after", "added", "removed", "changed")}
    for row in rows:
        row.update({k: "?" for k in ("added", "removed", "changed") if row[k] is None})
    return {"changed": changed, "unchanged_count": len(rows) - len(changed), "totals": totals,
            "notes": list(result.notes), "source": result.source_label}


def _preview(config: UIConfig, operation: str, params: Mapping[str, str]) -> dict[str, Any]:
    allow_shrink = params.get("allow_shrink") == "1"
    context: dict[str, Any] = {"operation": operation, "allow_shrink": allow_shrink, "source_params": {},
                               "refusal": None, "preview": None, "fingerprint": None, "source_label": None}
    try:
        with open_store(config) as store:
            if operation == "undo":
                points = store.restore_points()
                context["source_label"] = f"restore point {points[0].name}" if points else None
                context["source_params"] = {"undo_point": points[0].name} if points else {}
                result = store.undo(dry_run=True)
            else:
                source, label, source_params = _resolve_source(config, params)
                context["source_label"], context["source_params"] = label, source_params
                result = store.restore(source, dry_run=True, allow_shrink=allow_shrink)
    except (ShrinkRefusedError, SourceError, ValidationError, RestoreError, LockedError) as exc:
        context["refusal"] = _web_words(str(exc))
        context["shrink_refused"] = isinstance(exc, ShrinkRefusedError)
        return context
    context["preview"] = diff_rows(result)
    context["fingerprint"] = diff_fingerprint(result)
    return context


def _web_words(message: str) -> str:
    """A refusal worded for the command line, said as this page says it."""
    return message.replace(" (pass --allow-shrink if this is intended)", "")


def _apply(config: UIConfig, operation: str, params: Mapping[str, str]) -> RestoreResult:
    allow_shrink = params.get("allow_shrink") == "1"
    expected = params.get("fingerprint", "")
    with open_store(config) as store:
        def same_as_previewed(result: RestoreResult) -> bool:
            return diff_fingerprint(result) == expected

        if operation == "undo":
            points = store.restore_points()
            if not points or points[0].name != params.get("undo_point"):
                raise RestoreError("undo cancelled; nothing was changed (the newest restore point is not the "
                                   "one previewed)")
            # As a restore: what is applied is exactly the diff the preview showed (the data may
            # have changed since), checked inside the operation before anything changes.
            return store.undo(expected_point=points[0], confirm=same_as_previewed)
        source, _, _ = _resolve_source(config, params)
        return store.restore(source, allow_shrink=allow_shrink, confirm=same_as_previewed)


async def _restore_flow(datasette: Any, request: Any, operation: str) -> Response:
    config = UIConfig.from_datasette(datasette)
    title = "Undo the last restore" if operation == "undo" else "Restore"
    if request.method == "POST":
        form = await _form(request)
        if form.get("action") == "preview":
            # A path typed into the Backups form: previewed only on a CSRF-checked POST, never a
            # GET (a GET can come from any page the person has open).
            context = await in_thread(_preview, config, operation, form)
            return await render(datasette, request, "restore_confirm.html", {"title": title, **context})
        if form.get("confirm") != "yes":
            context = await in_thread(_preview, config, operation, form)
            context["error"] = "Nothing was changed: tick the confirmation box to go ahead."
            return await render(datasette, request, "restore_confirm.html", {"title": title, **context}, status=400)
        try:
            result = await in_thread(_apply, config, operation, form)
        except BakestoreError as exc:
            context = await in_thread(_preview, config, operation, form)
            if isinstance(exc, RestoreError) and "cancelled" in str(exc):
                context["error"] = ("Nothing was changed: the data or the source changed since the preview. "
                                    "Check the new preview below and confirm again.")
            else:
                context["error"] = f"Nothing was changed: {_web_words(str(exc))}"
            return await render(datasette, request, "restore_confirm.html", {"title": title, **context}, status=400)
        verb = "Undid the last restore" if operation == "undo" else f"Restored from {result.source_label}"
        point = f" A restore point of the previous data was taken ({result.restore_point.name}); " \
                "“Undo last restore” brings it back." if result.restore_point else ""
        _flash(datasette, request, verb + "." + point)
        ensure_audit_attached(datasette, config)
        return _redirect("/backups")
    args = _args(request)
    if args.get("path"):
        context = {"operation": operation, "allow_shrink": False, "source_params": {}, "preview": None,
                   "fingerprint": None, "source_label": None,
                   "refusal": "A restore from a path starts from the form on the Backups page."}
        return await render(datasette, request, "restore_confirm.html", {"title": title, **context}, status=400)
    context = await in_thread(_preview, config, operation, args)
    return await render(datasette, request, "restore_confirm.html", {"title": title, **context})


async def restore(datasette: Any, request: Any) -> Response:
    return await _restore_flow(datasette, request, "restore")


async def undo(datasette: Any, request: Any) -> Response:
    return await _restore_flow(datasette, request, "undo")


# --------------------------------------------------------------------------- forensics


def _cases(config: UIConfig) -> list[dict[str, Any]]:
    root = config.case_root
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir(), reverse=True):
        report = folder / "report.json"
        if folder.is_dir() and report.is_file():
            try:
                doc = json.loads(report.read_text(encoding="utf-8"))
                name = doc.get("file", {}).get("path", "?")
                findings = len(doc.get("findings", []))
                recovered = len(doc.get("recovered", []))
            except (OSError, ValueError):
                name, findings, recovered = "unreadable report", 0, 0
            out.append({"name": folder.name, "file": name, "findings": findings, "recovered": recovered,
                        "at": _mtime(report)})
    return out


def _forensics_data(config: UIConfig) -> dict[str, Any]:
    return {"cases": _cases(config), "points": [point_info(p) for p in list_restore_points(config.db_path)],
            "case_root": str(config.case_root), "db_path": str(config.db_path)}


async def forensics(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    error = None
    form: dict[str, str] = {}
    if request.method == "POST":
        form = await _form(request)
        try:
            case = await in_thread(_run_forensics, config, form)
        except BakestoreError as exc:
            error = str(exc)
        else:
            _flash(datasette, request, f"Forensic report ready: {case}.")
            return _redirect(f"/forensics/cases/{quote(case)}")
    data = await in_thread(_forensics_data, config)
    return await render(datasette, request, "forensics.html",
                        {"title": "Forensics", **data, "error": error, "form": form}, status=400 if error else 200)


#: How long a forensic analysis started from the UI may run before its child process is killed.
FORENSICS_TIMEOUT_S = 900.0


def _run_forensics(config: UIConfig, form: Mapping[str, str]) -> str:
    # This process holds connections to the live and audit databases: the evidence is copied and
    # hashed by a child process, so no plain open()/close() here can drop their POSIX locks.
    from ..forensics import analyze_isolated

    choice = form.get("source", "live")
    if choice == "live":
        path, label = config.db_path, "live"
    elif choice == "point":
        names = {p.name: p for p in list_restore_points(config.db_path)}
        if form.get("point") not in names:
            raise ForensicsError("choose one of the restore points")
        path, label = names[form["point"]], "point"
    elif choice == "path":
        if not form.get("path", "").strip():
            raise ForensicsError("enter the path of the file to analyse")
        path = Path(form["path"].strip()).expanduser()
        label = "file"
    else:
        raise ForensicsError(f"unknown source {choice!r}")
    if not path.is_file():
        raise ForensicsError(f"no such file: {path}")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:40]
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{label}-{stem}"
    case_dir = config.case_root / name
    n = 2
    while case_dir.exists():
        case_dir = config.case_root / f"{name}-{n}"
        n += 1
    config.case_root.mkdir(parents=True, exist_ok=True)
    # A child process with a deadline: a huge or hostile file cannot tie up the server forever.
    analyze_isolated(path, case_dir, timeout=FORENSICS_TIMEOUT_S)
    return case_dir.name


def _load_case(config: UIConfig, case: str) -> dict[str, Any]:
    names = {c["name"] for c in _cases(config)}
    if case not in names:
        raise NotFoundError(f"no forensic case named {case!r} in {config.case_root}")
    return json.loads((config.case_root / case / "report.json").read_text(encoding="utf-8"))


def _value_text(value: Any) -> str:
    if isinstance(value, dict) and "$base64" in value:
        return f"<{len(value['$base64']) * 3 // 4} bytes>"
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _case_context(doc: dict[str, Any], case: str) -> dict[str, Any]:
    recovered = doc.get("recovered", [])
    by_table: dict[str, dict[str, Any]] = {}
    for item in recovered:
        entry = by_table.setdefault(item.get("table", "?"), {"table": item.get("table", "?"), "count": 0,
                                                             "sources": {}, "rows": [], "columns": []})
        entry["count"] += 1
        source = item.get("source", "?")
        entry["sources"][source] = entry["sources"].get(source, 0) + 1
        values = item.get("values")
        if values is None and isinstance(item.get("columns"), dict):
            values = list(item["columns"].values())
        if not entry["columns"]:
            cols = item.get("columns")
            entry["columns"] = list(cols.keys()) if isinstance(cols, dict) else list(cols or [])
        if len(entry["rows"]) < 20:
            entry["rows"].append({"source": source, "page": item.get("page"), "rowid": item.get("rowid"),
                                  "confidence": item.get("confidence"),
                                  "cells": [_value_text(v) for v in (values or [])][:12]})
    tables = sorted(by_table.values(), key=lambda e: -e["count"])
    for entry in tables:
        entry["columns"] = entry["columns"][:12]
        entry["sources"] = ", ".join(f"{k} {v}" for k, v in sorted(entry["sources"].items()))
    timeline = doc.get("timeline") or {}
    return {"case": case, "doc": doc, "file": doc.get("file", {}), "pages": doc.get("pages", {}),
            "findings": doc.get("findings", []), "integrity": doc.get("integrity", {}), "wal": doc.get("wal", {}),
            "recovered_tables": tables, "recovered_total": len(recovered),
            "clusters": timeline.get("clusters", []), "timeline_svg": timeline_svg(timeline),
            "timeline_columns": [c for c in timeline.get("columns", []) if c.get("live", {}).get("count")
                                 or c.get("recovered", {}).get("count")]}


async def forensics_case(datasette: Any, request: Any) -> Response:
    from markupsafe import Markup

    config = UIConfig.from_datasette(datasette)
    case = unquote(request.url_vars["case"])
    doc = await in_thread(_load_case, config, case)
    context = _case_context(doc, case)
    context["timeline_svg"] = Markup(context["timeline_svg"])
    return await render(datasette, request, "forensics_case.html", {"title": f"Forensics: {case}", **context})


async def forensics_timeline_svg(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    case = unquote(request.url_vars["case"])
    doc = await in_thread(_load_case, config, case)
    return Response(timeline_svg(doc.get("timeline") or {}, title=f"Timeline of {case}"), status=200,
                    content_type="image/svg+xml; charset=utf-8")


# --------------------------------------------------------------------------- audit


def _audit_records(config: UIConfig, limit: int) -> list[dict[str, Any]]:
    records = list(audit_log.read(config.db_path, limit=limit))
    for record in records:
        before, after = record.get("counts_before") or {}, record.get("counts_after") or {}
        record["count_changes"] = [{"table": t, "before": before.get(t), "after": after.get(t)}
                                   for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)]
        record["details_json"] = json.dumps(record.get("details") or {}, indent=2, sort_keys=True, default=str)
        record["argv_text"] = " ".join(record["argv"]) if isinstance(record.get("argv"), list) else record.get("argv")
    return records


async def audit(datasette: Any, request: Any) -> Response:
    config = UIConfig.from_datasette(datasette)
    try:
        limit = max(1, min(1000, int(request.args.get("limit", "200"))))
    except ValueError:
        limit = 200
    records = await in_thread(_audit_records, config, limit)
    ensure_audit_attached(datasette, config)
    return await render(datasette, request, "audit.html", {"title": "Audit", "records": records, "limit": limit})


def ensure_audit_attached(datasette: Any, config: UIConfig) -> None:
    """Serve the audit database in Datasette as soon as it exists (it is created by the first audit)."""
    from ..audit import audit_path_for
    from ..inspect import AUDIT_DB
    from .server import attach_readonly

    if AUDIT_DB not in datasette.databases and audit_path_for(config.db_path).exists():
        attach_readonly(datasette, audit_path_for(config.db_path), AUDIT_DB)


# --------------------------------------------------------------------------- routes


async def _form(request: Any) -> dict[str, str]:
    """The posted form (read once per request)."""
    form = getattr(request, "_bakestore_form", None)
    if form is None:
        form = await request.post_vars()
        request._bakestore_form = form
    return form


_LOCAL_ORIGINS = re.compile(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$")


async def csrf_refusal(request: Any) -> str | None:
    """Why a POST must be refused, or None.

    asgi-csrf (Datasette's CSRF protection) lets a POST without any cookie through, because an
    attacker's page cannot send the victim's cookies. This UI has no login, so a cookie-less
    cross-site form would be enough to change data: every UI POST must carry the CSRF cookie and the
    matching form token, and a foreign Origin is refused outright.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null" and not _LOCAL_ORIGINS.match(origin):
        return f"Refused: the form came from another site ({origin})."
    cookie = request.cookies.get("ds_csrftoken")
    token = (await _form(request)).get("csrftoken", "")
    if not cookie or not token or not hmac.compare_digest(cookie, token):
        return "Refused: the form's security token is missing. Reload the page and try again."
    return None


def _wrap(view: Callable[..., Any]) -> Callable[..., Any]:
    """POSTs need the CSRF token; a BakestoreError escaping a view becomes the calm error page."""

    async def wrapped(datasette: Any, request: Any) -> Response:
        try:
            if request.method == "POST":
                refusal = await csrf_refusal(request)
                if refusal is not None:
                    return await render(datasette, request, "error.html",
                                        {"title": "Not sent from this page", "message": refusal}, status=403)
            return await view(datasette, request)
        except BakestoreError as exc:
            return await render_error(datasette, request, exc)

    wrapped.__name__ = view.__name__
    return wrapped


_KEY = r"(?P<key>.+?)"
ROUTES: list[tuple[str, Callable[..., Any]]] = [(pattern, _wrap(view)) for pattern, view in [
    (r"^/$", dashboard),
    (r"^/data$", data_index),
    (r"^/data/(?P<table>[A-Za-z0-9_]+)$", table_list),
    (r"^/data/(?P<table>[A-Za-z0-9_]+)/-/new$", row_create),
    (rf"^/data/(?P<table>[A-Za-z0-9_]+)/{_KEY}/edit$", row_edit),
    (rf"^/data/(?P<table>[A-Za-z0-9_]+)/{_KEY}/delete$", row_delete),
    (rf"^/data/(?P<table>[A-Za-z0-9_]+)/{_KEY}$", row_detail),
    (r"^/backups$", backups),
    (r"^/backups/export$", export_now),
    (r"^/backups/restore$", restore),
    (r"^/backups/undo$", undo),
    (r"^/forensics$", forensics),
    (r"^/forensics/cases/(?P<case>[^/]+)/timeline\.svg$", forensics_timeline_svg),
    (r"^/forensics/cases/(?P<case>[^/]+)$", forensics_case),
    (r"^/audit$", audit),
]]
