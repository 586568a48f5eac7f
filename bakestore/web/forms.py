"""Forms built from the registry, and form posts turned into the values the store expects.

No rule about what a valid row is lives here: the form turns text into the Python type of the
column's kind (the models are strict) and hands everything to the store, whose
:class:`~bakestore.errors.ValidationError` names the field the message is shown next to. Text that
does not parse as the column's type is passed through unchanged, so the store's model reports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import BakestoreError, NotFoundError, ValidationError
from ..models.base import SYSTEM_COLUMNS
from ..registry import REGISTRY, Column, TableSpec

if TYPE_CHECKING:
    from ..store import Store

#: Foreign keys to tables with more rows than this get a text box (id or natural key) instead of a select.
MAX_SELECT_OPTIONS = 1000
#: Columns that make a good human label for a row of a table without a natural key.
_LABEL_COLUMNS = ("display_name", "name", "title", "product_name", "slug", "code")

_INPUT_TYPES = {"integer": "number", "real": "number", "date": "date", "datetime": "datetime-local",
                "uuid": "text", "text": "text", "json": "textarea", "boolean": "checkbox"}


@dataclass
class FormField:
    """One input of a generated form (what the template needs to draw it)."""

    name: str
    label: str
    kind: str
    widget: str  # text | number | date | datetime-local | textarea | checkbox | select
    value: str = ""
    checked: bool = False
    required: bool = False
    options: list[tuple[str, str]] | None = None
    error: str | None = None
    help: str = ""
    step: str | None = None
    maxlength: int | None = None
    placeholder: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


def editable(spec: TableSpec) -> bool:
    """Rows of this table can be created, edited and deleted from the UI."""
    return spec.has_row_identity and not spec.is_system


def form_columns(spec: TableSpec) -> list[Column]:
    """The columns a person fills in (the store sets id, timestamps and version)."""
    return [c for c in spec.columns if not (spec.has_row_identity and c.name in SYSTEM_COLUMNS)]


def label_for(name: str, *, foreign_key: bool = False) -> str:
    text = name.replace("_", " ")
    if foreign_key and text.endswith(" id"):
        text = text[:-3]
    return text[:1].upper() + text[1:]


def row_label(store: "Store", spec: TableSpec, row: Mapping[str, Any]) -> str:
    """How a row is named to a person: its natural key, else a name-like column and a short id."""
    if spec.natural_key and all(row.get(c) is not None for c in spec.natural_key):
        return store.natural_key_of(spec.name, row)
    for name in _LABEL_COLUMNS:
        if spec.has_column(name) and row.get(name):
            return f"{row[name]} · {str(row.get('id', ''))[:8]}"
    return str(row.get("id", ""))


def row_url_key(store: "Store", spec: TableSpec, row: Mapping[str, Any]) -> str:
    """The key a row is addressed by in URLs: its natural key where it has one, else its id."""
    return store.natural_key_of(spec.name, row)


def fk_options(store: "Store", table: str) -> list[tuple[str, str]] | None:
    """(id, label) of every row of ``table`` for a select box, or None if there are too many."""
    spec = REGISTRY[table]
    if store.count(spec.name) > MAX_SELECT_OPTIONS:
        return None
    options = [(str(r["id"]), row_label(store, spec, r)) for r in store.rows(spec.name)]
    return sorted(options, key=lambda o: o[1].lower())


def _display_datetime(value: str) -> str:
    # Stored: 2026-01-02T03:04:05.678Z (UTC). datetime-local wants 2026-01-02T03:04:05.
    return value[:19] if isinstance(value, str) else ""


def text_of(column: Column, value: Any) -> str:
    """A stored value as the text an input shows."""
    if value is None:
        return ""
    if column.kind == "datetime":
        return _display_datetime(value)
    if column.kind == "json" and isinstance(value, str):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except ValueError:
            return value
    if column.kind == "real" and isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def display(column: Column, value: Any) -> str:
    """A stored value as text in lists and detail pages."""
    if value is None:
        return ""
    if column.kind == "boolean":
        return "yes" if value else "no"
    if column.kind == "json" and isinstance(value, str):
        return value
    if column.kind == "datetime" and isinstance(value, str):
        return value[:19].replace("T", " ") + " UTC"
    return text_of(column, value)


def build_fields(store: "Store", spec: TableSpec, values: Mapping[str, Any] | None = None, *,
                 raw: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> list[FormField]:
    """The form for ``spec``: ``values`` are stored values (edit), ``raw`` the text a person posted."""
    values = values or {}
    errors = errors or {}
    fields: list[FormField] = []
    for column in form_columns(spec):
        widget = _INPUT_TYPES[column.kind]
        if column.kind == "text" and column.max_length is None:
            widget = "textarea"  # notes, descriptions: free text of any length
        f = FormField(name=column.name, label=label_for(column.name, foreign_key=column.fk is not None),
                      kind=column.kind, widget=widget,
                      required=column.required or (not column.nullable and column.default is None),
                      error=errors.get(column.name), maxlength=column.max_length)
        stored = values.get(column.name, column.default if not values else None)
        if raw is not None:
            f.value = raw.get(column.name, "")
            f.checked = raw.get(column.name) in ("1", "on", "true", "yes")
        else:
            f.value = text_of(column, stored)
            f.checked = bool(stored)
        if column.fk is not None:
            options = fk_options(store, column.fk.table)
            if options is None:
                f.widget = "text"
                f.placeholder = f"id or key of a {column.fk.table} row"
                if raw is None and stored:
                    parent = REGISTRY[column.fk.table]
                    try:
                        f.value = row_url_key(store, parent, store.get(parent.name, str(stored)))
                    except BakestoreError:
                        f.value = str(stored)
            else:
                f.widget = "select"
                f.options = ([("", "—")] if column.nullable or not f.value else []) + options
            f.help = f"a row of {column.fk.table}"
        elif column.choices is not None:
            f.widget = "select"
            f.options = ([("", "—")] if column.nullable else []) + [(str(c), str(c)) for c in column.choices]
        elif column.kind == "boolean" and column.nullable:
            f.widget = "select"
            f.options = [("", "—"), ("1", "yes"), ("0", "no")]
            if raw is None:
                f.value = "" if stored is None else ("1" if stored else "0")
        elif column.kind == "integer":
            f.step = "1"
        elif column.kind == "real":
            f.step = "any"
        elif column.kind == "datetime":
            f.step = "1"
            f.help = "UTC"
        elif column.kind == "json":
            f.help = "JSON"
        elif column.kind == "uuid":
            f.placeholder = "UUID"
        if column.doc:
            f.help = f"{column.doc}" + (f" · {f.help}" if f.help else "")
        fields.append(f)
    return fields


def _convert(column: Column, text: str) -> Any:
    """Text of an input as the column kind's Python value; unparseable text is returned unchanged."""
    if column.choices is not None:
        for choice in column.choices:
            if str(choice) == text:
                return choice
        return text
    if column.kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            return text
    if column.kind == "real":
        try:
            return float(text.strip())
        except ValueError:
            return text
    if column.kind == "boolean":
        return text in ("1", "on", "true", "yes")
    return text


def parse_form(store: "Store", spec: TableSpec, form: Mapping[str, str], *, update: bool) -> dict[str, Any]:
    """The column values of a posted form, typed for the store.

    A blank input means "no value": NULL for an optional column, "keep the default" for a new row,
    and a missing value (which the store refuses) for a required column.
    """
    data: dict[str, Any] = {}
    for column in form_columns(spec):
        if column.kind == "boolean" and not column.nullable:
            data[column.name] = form.get(column.name) in ("1", "on", "true", "yes")
            continue
        text = form.get(column.name, "")
        if text.strip() == "":
            if column.nullable:
                data[column.name] = None
            elif update:
                data[column.name] = None  # the store reports the missing value of a required column
            continue
        if column.kind == "text":
            value: Any = text.replace("\r\n", "\n")
        else:
            value = _convert(column, text.strip())
        if column.fk is not None and isinstance(value, str):
            try:
                value = store.resolve(column.fk.table, value)
            except NotFoundError as exc:
                raise ValidationError(str(exc), table=spec.name, field=column.name) from None
        data[column.name] = value
    return data


def field_of(spec: TableSpec, exc: BakestoreError) -> str | None:
    """The form field an error belongs to, if it names one of the form's columns."""
    name = getattr(exc, "field", None)
    if not name:
        return None
    name = str(name).split(".")[0].strip()
    return name if any(c.name == name for c in form_columns(spec)) else None
