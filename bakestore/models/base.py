"""The building blocks every table model is made of.

A table is declared exactly once, as a pydantic model that subclasses :class:`Row` and carries a
:class:`TableMeta` in its ``table_meta`` class variable. Column facts that the database needs
(SQL type, NOT NULL, CHECK rules, foreign keys) are read off the field annotations by
``bakestore.registry``; nothing else in bakestore lists tables or columns by hand.

Values in a model are exactly the values stored in SQLite: timestamps and dates are canonical
text, JSON columns hold canonical JSON text, booleans are stored as 0/1. That keeps
"validate a row", "store a row" and "export a row" the same dictionary.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

OnDelete = Literal["CASCADE", "RESTRICT", "SET NULL", "NO ACTION"]


# --------------------------------------------------------------------------- markers


@dataclass(frozen=True)
class FK:
    """Marks a column as a foreign key to ``table.id``.

    ``cycle`` marks the one edge of an FK cycle (or a self-reference) that is nullable and is
    checked at COMMIT (DEFERRABLE INITIALLY DEFERRED), so rows can be loaded in any order
    inside one transaction. The registry ignores such edges when ordering tables.
    """

    table: str
    on_delete: OnDelete = "RESTRICT"
    cycle: bool = False


@dataclass(frozen=True)
class Kind:
    """The semantic kind of a column: drives SQL type, export, UI input type and forensics."""

    name: Literal["uuid", "text", "integer", "real", "boolean", "date", "datetime", "json"]


@dataclass(frozen=True)
class SqlGlob:
    """The SQL twin of a pydantic ``pattern``: a GLOB the database enforces for every writer.

    The registry refuses a ``pattern`` without one, so the model and the CHECK rules can never
    disagree (a restore validates with SQLite's CHECKs and must accept exactly what the model does).
    """

    glob: str


@dataclass(frozen=True)
class Unique:
    """Marks a single column as UNIQUE (NULLs never collide, as in SQLite)."""


@dataclass(frozen=True)
class Doc:
    """A human description of a column, used by Datasette metadata and the UI."""

    text: str


@dataclass(frozen=True)
class TableMeta:
    """The facts about a table that are not per-column."""

    name: str
    group: str
    description: str
    natural_key: tuple[str, ...] | None = None
    uniques: tuple[tuple[str, ...], ...] = ()
    checks: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    seed: bool = False
    system: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- value rules

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_VERSION_RE = re.compile(r"^\d{13}-\d{5}-[0-9a-f]{32}$")


def _uuid_text(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if _UUID_RE.match(lowered):
            return lowered
        raise ValueError(f"not a UUID: {value!r}")
    return value


def format_timestamp(moment: _dt.datetime) -> str:
    """Canonical stored form: ISO-8601 UTC with milliseconds and a Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    moment = moment.astimezone(_dt.timezone.utc)
    # Not strftime: "%Y" is not zero-padded for years before 1000 on every platform.
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def parse_timestamp(value: str) -> _dt.datetime:
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment


def _timestamp_text(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return format_timestamp(value)
    if isinstance(value, _dt.date):
        raise ValueError("a date where a date and time is expected")
    if isinstance(value, str):
        if _TS_RE.match(value):
            return value
        try:
            return format_timestamp(parse_timestamp(value))
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None
    return value


def _date_text(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        raise ValueError("a date and time where a plain date is expected")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if not _DATE_RE.match(value):
            raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
        _dt.date.fromisoformat(value)
        return value
    return value


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept, special floats refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _json_text(value: Any) -> Any:
    # A str is read as JSON text (that is how it is stored); anything else is a JSON value.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON text: {exc.msg}") from None
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON-serialisable: {exc}") from None


def _stored_bool(value: Any) -> Any:
    # SQLite stores booleans as 0/1; accept those and real booleans, nothing else.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and infinity cannot be stored (SQLite turns NaN into NULL)")
    return value


def _int_as_float(value: Any) -> Any:
    # SQLite REAL columns hand back floats; JSON may carry 5 for 5.0. Both mean the same number.
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            # A ValueError, so pydantic reports it (table, field, record) instead of a traceback.
            raise ValueError(f"an integer of {len(str(abs(value)))} digits is beyond the range of a REAL "
                             "(a 64-bit float, up to about 1.8e308)") from None
    return value


#: SQLite's INTEGER: a signed 64-bit number. Python's int has no limit, and a bigger one would
#: reach SQLite only to fail there (OverflowError), so validation refuses it first.
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def int64_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as an SQLite INTEGER, or None if it can (or is no int)."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return f"{value} is outside the 64-bit integer range SQLite stores ({INT64_MIN} to {INT64_MAX})"
    return None


def _version_text(value: Any) -> Any:
    if isinstance(value, str) and not _VERSION_RE.match(value):
        raise ValueError(f"not a row version '<ms>-<counter>-<device>': {value!r}")
    return value


UUID = Annotated[str, BeforeValidator(_uuid_text), Kind("uuid")]
Timestamp = Annotated[str, BeforeValidator(_timestamp_text), Kind("datetime")]
Date = Annotated[str, BeforeValidator(_date_text), Kind("date")]
JSON = Annotated[str, BeforeValidator(_json_text), Kind("json")]
Bool = Annotated[bool, BeforeValidator(_stored_bool), Kind("boolean")]
Real = Annotated[float, BeforeValidator(_int_as_float), AfterValidator(_finite), Kind("real")]
Money = Annotated[float, BeforeValidator(_int_as_float), AfterValidator(_finite), Kind("real"),
                  Doc("money, in the user's currency")]
RowVersion = Annotated[str, BeforeValidator(_version_text), Kind("text")]


# --------------------------------------------------------------------------- the row base


class Row(BaseModel):
    """Columns every table has: identity, timestamps and the sync version.

    ``id`` is a time-ordered UUIDv7 text; ``created_at``/``updated_at`` are set by the store;
    ``row_version`` is the hybrid-logical-clock version ``<ms>-<counter>-<device id>`` that every
    write through the Store API bumps. They may be omitted on input; the store fills them.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False,
                              str_strip_whitespace=False, frozen=False)

    table_meta: ClassVar[TableMeta]

    id: UUID | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    row_version: RowVersion | None = None


SYSTEM_COLUMNS: tuple[str, ...] = ("id", "created_at", "updated_at", "row_version")
