"""Forms built from the registry, and form posts turned into the values the store expects.

No rule about what a valid row is lives here: the form turns text into the Python type of the
column's kind (the models are strict) and hands everything to the store, whose
:class:`~bakestore.errors.ValidationError` names the field the message is shown next to. Text that
does not parse as the column's type is passed through unchanged, so the store's model reports it.
"""

from __future__ import annotations

import hashlib
import json
import re
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

#: Stored datetimes: 2026-01-02T03:04:05.678Z (UTC, milliseconds), as the models write them.
_STORED_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):(\d{2})\.(\d{3})Z$")
#: What counts as a number in a form: ASCII digits only (int() and float() also take "1_000",
#: Arabic-Indic digits and " nan "; those are passed through for the model to refuse).
_INTEGER_TEXT = re.compile(r"^[+-]?[0-9]+$", re.ASCII)
_REAL_TEXT = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$", re.ASCII)
_TRUE = ("1", "on", "true", "yes")

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
    #: On a conflict: the value stored now, where it changed since the page was opened and differs
    #: from what the person has in the box (shown next to the box).
    current: str | None = None

    @property
    def text(self) -> str:
        """What the input posts back as it is drawn (a checkbox: "1" when ticked, else nothing)."""
        if self.widget == "checkbox":
            return "1" if self.checked else ""
        return self.value


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
        key = store.natural_key_of(spec.name, row)
        if key.strip():
            return key
    for name in _LABEL_COLUMNS:
        if spec.has_column(name) and row.get(name):
            return f"{row[name]} · {str(row.get('id', ''))[:8]}"
    return str(row.get("id", ""))


def row_url_key(store: "Store", spec: TableSpec, row: Mapping[str, Any]) -> str:
    """The key a row is addressed by in URLs: its natural key where it has one, else its id.

    The id stands in for a natural key that would not lead back to this very row: an empty one, a
    "." or ".." part (browsers resolve those as path segments), or one that resolves to another row
    (a slug spelling another row's id, a parent key with a "/" in it).
    """
    key = store.natural_key_of(spec.name, row)
    row_id = str(row.get("id", ""))
    if key == row_id:
        return key
    if any(part in ("", ".", "..") for part in key.split("/")):
        return row_id
    try:
        if store.resolve(spec.name, key) != row_id:
            return row_id
    except NotFoundError:
        return row_id
    return key


def fk_options(store: "Store", table: str) -> list[tuple[str, str]] | None:
    """(id, label) of every row of ``table`` for a select box, or None if there are too many."""
    spec = REGISTRY[table]
    if store.count(spec.name) > MAX_SELECT_OPTIONS:
        return None
    options = [(str(r["id"]), row_label(store, spec, r)) for r in store.rows(spec.name)]
    return sorted(options, key=lambda o: o[1].lower())


def _display_datetime(value: Any) -> str:
    """A stored datetime as a datetime-local input shows it, milliseconds included.

    Stored: 2026-01-02T03:04:05.678Z (UTC). The input takes 2026-01-02T03:04:05.678 and a browser
    keeps only the shortest form of a time (no ".000", no ":00" seconds), so that form is what is
    shown: an untouched input posts back exactly the text it was given.
    """
    if not isinstance(value, str):
        return ""
    match = _STORED_DATETIME.match(value)
    if not match:
        return value
    date, hour_minute, seconds, millis = match.groups()
    millis = millis.rstrip("0")
    if millis:
        return f"{date}T{hour_minute}:{seconds}.{millis}"
    if seconds != "00":
        return f"{date}T{hour_minute}:{seconds}"
    return f"{date}T{hour_minute}"


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
        match = _STORED_DATETIME.match(value)
        if match and match.group(4) != "000":
            return value[:23].replace("T", " ") + " UTC"
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
            f.checked = raw.get(column.name) in _TRUE
        else:
            f.value = text_of(column, stored)
            f.checked = bool(stored)
        if column.kind == "text" and ("\n" in f.value or "\r" in f.value):
            f.widget = "textarea"  # a one-line input would drop the line breaks
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
                if f.value and all(value != f.value for value, _ in options):
                    # A reference to a row that is gone (written with foreign keys off): shown as
                    # it is, never replaced by the first option.
                    f.options.insert(0, (f.value, f"{f.value} (missing)"))
            f.help = f"a row of {column.fk.table}"
        elif column.choices is not None:
            f.widget = "select"
            f.options = ([("", "—")] if column.nullable else []) + [(str(c), str(c)) for c in column.choices]
            if f.value and all(value != f.value for value, _ in f.options):
                f.options.insert(0, (f.value, f"{f.value} (not one of the choices)"))
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
            f.step = "0.001"  # milliseconds, as stored
            f.help = "UTC"
        elif column.kind == "json":
            f.help = "JSON"
        elif column.kind == "uuid":
            f.placeholder = "UUID"
        if column.kind == "text" and values and raw is None and not f.value:
            # NULL and "" look alike in an input: the placeholder says which one is stored.
            f.placeholder = "no value" if stored is None else "empty text"
        if column.doc:
            f.help = f"{column.doc}" + (f" · {f.help}" if f.help else "")
        fields.append(f)
    return fields


# --------------------------------------------------------------------------- what the page showed


def _normal(text: str) -> str:
    # Browsers post line breaks as CRLF (and turn a lone CR into LF when they parse the page).
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _digest(name: str, text: str) -> str:
    return hashlib.sha256(f"{name}\0{_normal(text)}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


SHOWN_FIELD = "_shown"


def shown_token(fields: list[FormField]) -> str:
    """A digest of the text of every input as the edit page drew it (the hidden ``_shown`` field).

    A save writes only the columns whose posted text differs from what was shown: an input the
    person did not touch never changes the row (NULL stays NULL, "" stays "", milliseconds stay).
    """
    return json.dumps({f.name: _digest(f.name, f.text) for f in fields}, sort_keys=True, separators=(",", ":"))


def read_shown(form: Mapping[str, str]) -> dict[str, str] | None:
    """The ``_shown`` digests a form carries, or None (a form from elsewhere: every input counts)."""
    text = form.get(SHOWN_FIELD)
    if not text:
        return None
    try:
        shown = json.loads(text)
    except ValueError:
        return None
    if not isinstance(shown, dict) or not all(isinstance(v, str) for v in shown.values()):
        return None
    return shown


def _checkbox(column: Column) -> bool:
    return column.kind == "boolean" and not column.nullable


def posted_text(column: Column, form: Mapping[str, str]) -> str:
    """What an input posted, as :attr:`FormField.text` draws it."""
    if _checkbox(column):
        return "1" if form.get(column.name) in _TRUE else ""
    return form.get(column.name, "")


def absent(column: Column, form: Mapping[str, str], shown: Mapping[str, str] | None) -> bool:
    """The post says nothing about this input: it was not in the form that was sent.

    A browser always posts every text box and select, so a missing one was not on the page (a form
    from elsewhere, a script): it is left alone, never read as "" (that would be NULL or "Field
    required"). An unticked checkbox posts nothing at all, so a missing checkbox means "not ticked"
    only where the page declared it (its ``_shown`` digest); otherwise it is left alone too.
    """
    if column.name in form:
        return False
    return not (_checkbox(column) and shown is not None and column.name in shown)


def untouched(column: Column, form: Mapping[str, str], shown: Mapping[str, str] | None) -> bool:
    """The input posted exactly the text the page showed, or was not posted at all (:func:`absent`)."""
    if absent(column, form, shown):
        return True
    return shown is not None and shown.get(column.name) == _digest(column.name, posted_text(column, form))


def with_absent_filled(store: "Store", spec: TableSpec, row: Mapping[str, Any], form: Mapping[str, str],
                       shown: Mapping[str, str] | None) -> dict[str, str]:
    """A post shown again in the form, with the inputs it did not send (:func:`absent`) holding the
    row's stored values, so the page does not turn them into blank boxes."""
    raw = dict(form)
    for f in build_fields(store, spec, row):
        if absent(spec.column(f.name), form, shown):
            if f.widget == "checkbox":
                if f.checked:
                    raw[f.name] = "1"
            else:
                raw[f.name] = f.value
    return raw


CONTESTED_FIELD = "_contested"
OVERWRITE_FIELD = "_overwrite"


def rebase(store: "Store", spec: TableSpec, current: Mapping[str, Any], form: Mapping[str, str],
           shown: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str], str, str]:
    """The edit form after a conflict: the row changed since the page was opened.

    Returns the texts to put in the boxes, the notes to show next to them, the new ``_shown`` and
    the ``_contested`` digests. Inputs the person did not touch take the current stored values (so
    saving again cannot put old values back); inputs they changed keep their text, and where the
    row also changed there meanwhile, the current value is shown next to the box and saving over
    it needs an explicit tick (see :func:`contested_still`).
    """
    now_fields = build_fields(store, spec, current)
    raw = {k: v for k, v in form.items() if k not in (CONTESTED_FIELD, OVERWRITE_FIELD)}
    notes: dict[str, str] = {}
    contested: dict[str, str] = {}
    # Inputs an earlier conflict page already contested stay contested while the person's text
    # still differs from the stored value, even if nothing changed there since that page: an
    # unrelated change meanwhile must not drop the tick they still owe.
    earlier = read_contested(form)
    for f in now_fields:
        column = spec.column(f.name)
        mine = posted_text(column, form)
        if untouched(column, form, shown):
            if f.widget == "checkbox":
                if f.checked:
                    raw[f.name] = "1"
                else:
                    raw.pop(f.name, None)
            else:
                raw[f.name] = f.value
            continue
        changed_there = shown is None or shown.get(f.name) != _digest(f.name, f.text)
        if (changed_there or f.name in earlier) and _normal(mine) != _normal(f.text):
            notes[f.name] = _shown_as(f)
            contested[f.name] = _digest(f.name, f.text)
    token = json.dumps(contested, sort_keys=True, separators=(",", ":")) if contested else ""
    return raw, notes, shown_token(now_fields), token


def read_contested(form: Mapping[str, str]) -> dict[str, str]:
    try:
        contested = json.loads(form.get(CONTESTED_FIELD) or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in contested.items() if isinstance(v, str)} if isinstance(contested, dict) else {}


def contested_still(spec: TableSpec, form: Mapping[str, str], *, ticked_counts: bool = True) -> list[str]:
    """Inputs of a conflict page that would still replace a value changed meanwhile, unless the
    person ticked "replace them" (``_overwrite``): a second click never overwrites unseen.

    ``ticked_counts=False``: the inputs whatever the tick says (their notes stay on the page)."""
    if ticked_counts and form.get(OVERWRITE_FIELD) == "yes":
        return []
    shown = read_shown(form)
    return [name for name, digest in read_contested(form).items()
            if spec.has_column(name) and not absent(spec.column(name), form, shown)
            and _digest(name, posted_text(spec.column(name), form)) != digest]


def current_notes(store: "Store", spec: TableSpec, current: Mapping[str, Any], names: list[str]) -> dict[str, str]:
    """The current values of some inputs, as a note next to each box shows them."""
    return {f.name: _shown_as(f) for f in build_fields(store, spec, current) if f.name in names}


def _shown_as(f: FormField) -> str:
    if f.widget == "checkbox":
        return "ticked" if f.checked else "not ticked"
    if f.options is not None:
        for value, label in f.options:
            if value == f.value:
                return label if value else "no value"
    return f.value if f.value != "" else "no value"


# --------------------------------------------------------------------------- parsing a post


def _convert(column: Column, text: str) -> Any:
    """Text of an input as the column kind's Python value; unparseable text is returned unchanged."""
    if column.choices is not None:
        for choice in column.choices:
            if str(choice) == text:
                return choice
        return text
    if column.kind == "integer":
        return int(text) if _INTEGER_TEXT.match(text) else text
    if column.kind == "real":
        return float(text) if _REAL_TEXT.match(text) else text
    if column.kind == "boolean":
        return text in _TRUE
    return text


def parse_form(store: "Store", spec: TableSpec, form: Mapping[str, str], *, update: bool,
               shown: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The column values of a posted form, typed for the store.

    With ``shown`` (an edit page's digests) an input that posts back exactly what it showed is
    left out: the row keeps its stored value. An input that is blank means "no value": NULL for an
    optional column, "keep the default" for a new row, and a missing value (refused, next to the
    field) for a required column.
    """
    data: dict[str, Any] = {}
    for column in form_columns(spec):
        if update and untouched(column, form, shown):
            continue
        if column.kind == "boolean" and not column.nullable:
            data[column.name] = form.get(column.name) in _TRUE
            continue
        text = form.get(column.name, "")
        if text.strip() == "":
            if column.nullable:
                data[column.name] = None
            elif update:
                raise ValidationError(f"{spec.name}.{column.name}: Field required", table=spec.name,
                                      field=column.name)
            continue
        if column.kind == "text":
            value: Any = _normal(text)
        else:
            value = _convert(column, text.strip())
        if column.kind == "integer" and isinstance(value, str) and _REAL_TEXT.match(value):
            # "1e3" and "5.0" are numbers, but not whole-number text: said plainly, not as pydantic's
            # "Input should be a valid integer".
            raise ValidationError(f"{spec.name}.{column.name}: a whole number is needed here; decimals and "
                                  "exponents (like 2.5 or 1e3) are not allowed", table=spec.name, field=column.name)
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
