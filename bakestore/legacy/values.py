"""Value rules for upstream BakeTracker files: how each lossy or loosely typed value is read.

The upstream exporters wrote some values in ways that lose information or break strict parsers
(``baketracker-legacy-formats.md`` §1). Each rule below is deliberate and documented in
``docs/legacy-import.md``; a value that fits no rule refuses its record instead of being guessed.

* **Zero as null** — money and some quantities are tested for truthiness before export, so a
  zero is written as ``null`` (or left out). Columns read with :meth:`RecordReader.money` (the
  NOT NULL amounts) read a ``null``/missing value as ``0``, and the report counts how often.
* **Decimal strings** — ``"12.9900"`` is read as the number 12.99 (JSON numbers are accepted too).
* **Enums** — the export form is the lowercase value (``locked``), the upstream database stores
  the NAME (``LOCKED``); both are accepted, case-insensitively, and stored in bakestore's form.
* **Timestamps** — naive ISO text is UTC (the upstream convention); ``Z``, ``+00:00`` and the
  doubled ``+00:00Z`` of the header timestamps are accepted; other offsets are converted to UTC;
  a bare date means midnight UTC. Stored as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (sub-millisecond digits
  truncated, as everywhere in bakestore).
* **Dates** — only ``YYYY-MM-DD``; anything else refuses the record.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from typing import Any, Callable, Iterable, Mapping

from ..models.base import canonical_json, format_timestamp
from .detect import HugeNumber

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DOUBLE_SUFFIX_RE = re.compile(r"^(.*[+-]\d{2}:?\d{2})[Zz]$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class ValueProblem(Exception):
    """One field of one upstream record cannot be read; refuses that record (never guessed)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --------------------------------------------------------------------------- pure conversions


def to_timestamp(value: Any, field: str) -> str:
    """An upstream date-time as bakestore's canonical UTC text (see the module docstring)."""
    if not isinstance(value, str):
        raise ValueProblem(field, f"expected an ISO-8601 date and time, got {_type(value)}")
    text = value.strip()
    match = _DOUBLE_SUFFIX_RE.match(text)
    if match:
        # Header timestamps: an aware UTC time with a Z appended ("…+00:00Z").
        text = match.group(1)
    elif text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    if _DATE_RE.match(text):
        text += "T00:00:00"
    try:
        moment = _dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueProblem(field, f"not an ISO-8601 date and time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return format_timestamp(moment)


def to_date(value: Any, field: str) -> str:
    """A ``YYYY-MM-DD`` date, checked to be a real calendar day."""
    if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
        raise ValueProblem(field, f"expected a YYYY-MM-DD date, got {value!r}")
    try:
        _dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueProblem(field, f"not a calendar date: {value!r}") from None
    return value.strip()


def to_real(value: Any, field: str) -> float:
    """A number from a JSON number or a decimal string (the upstream writes Numeric as text)."""
    if isinstance(value, bool):
        raise ValueProblem(field, f"expected a number, got {_type(value)}")
    _refuse_huge(value, field)
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str) and _DECIMAL_RE.match(value.strip()):
            number = float(value.strip())
        else:
            raise ValueProblem(field, f"expected a number, got {_type(value)} {value!r}")
    except OverflowError:
        # An integer beyond the range of a float (about 1.8e308).
        raise ValueProblem(field, f"number too large: {_short(value)}") from None
    if not math.isfinite(number):
        raise ValueProblem(field, f"not a finite number: {_short(value)}")
    return number


def _short(value: Any) -> str:
    """A value for a message: very long numbers are shown by their length, not in full."""
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else repr(value)
    if len(text) > 40:
        return f"{text[:12]}… ({len(text)} characters)"
    return repr(value) if isinstance(value, str) else text


def _refuse_huge(value: Any, field: str) -> None:
    if isinstance(value, HugeNumber):
        raise ValueProblem(field, f"number too large: a {value.digits}-digit integer")


def to_int(value: Any, field: str) -> int:
    """A whole number; ``24.0`` is accepted as 24, ``24.5`` and strings are refused."""
    if isinstance(value, bool):
        raise ValueProblem(field, f"expected a whole number, got {_type(value)}")
    _refuse_huge(value, field)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueProblem(field, f"expected a whole number, got {_type(value)} {value!r}")


def to_bool(value: Any, field: str) -> bool:
    """``true``/``false`` (and 0/1, as SQLite-backed tools write them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueProblem(field, f"expected true or false, got {_type(value)} {value!r}")


def to_enum(value: Any, field: str, choices: Iterable[str]) -> str:
    """An enum member given as its export value or its database NAME, in bakestore's spelling."""
    options = tuple(choices)
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in options:
            if choice.lower() == wanted:
                return choice
    raise ValueProblem(field, f"{value!r} is not one of {', '.join(options)} (or their upper-case names)")


def to_uuid(value: Any, field: str) -> str:
    """An upstream ``uuid``, lowercased; anything that is not a hyphenated UUID refuses the record."""
    if isinstance(value, str):
        text = value.strip().lower()
        if _UUID_RE.match(text):
            return text
    raise ValueProblem(field, f"not a UUID: {value!r}")


def to_json_text(value: Any, field: str) -> str:
    """A JSON column: objects/arrays as canonical JSON; a string holding JSON is parsed first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            # A plain word such as "gluten" is a JSON string value, not broken JSON.
            pass
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ValueProblem(field, f"not JSON-serialisable: {exc}") from None


def to_text_blob(value: Any, field: str) -> str:
    """A text column that upstream fills with JSON (snapshot data): objects are serialised."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return canonical_json(value)
    raise ValueProblem(field, f"expected text or a JSON object, got {_type(value)}")


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object", HugeNumber: "a number"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- record reader

Note = Callable[[str, str], None]


class RecordReader:
    """Reads the fields of one upstream record with the rules above, remembering what it read.

    Keys that are never read are reported per entity as "not imported", so nothing a file holds
    disappears without the report saying so. ``note(field, rule)`` is called whenever a lossy
    rule was applied (e.g. a null price read as 0), so the report can count it.
    """

    def __init__(self, record: Mapping[str, Any], note: Note | None = None) -> None:
        self.record = record
        self._used: set[str] = set()
        self._note = note or (lambda field, rule: None)

    # -- presence

    def has(self, key: str) -> bool:
        """True when the key is present with a non-null value."""
        return self.record.get(key) is not None

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self.record.get(key)

    def touch(self, *keys: str) -> None:
        """Mark keys as deliberately consumed (e.g. descriptive copies used only for checks)."""
        self._used.update(keys)

    def unused(self) -> list[str]:
        return [k for k in self.record if k not in self._used]

    def _value(self, key: str, required: bool) -> Any:
        self._used.add(key)
        value = self.record.get(key)
        if value is None and required:
            raise ValueProblem(key, "missing" if key not in self.record else "is null but required")
        return value

    # -- typed readers

    def text(self, key: str, *, required: bool = False, empty_as_null: bool = True) -> str | None:
        """Text; ``""`` reads as null (the single-file exporter writes ``""`` for an unset brand)."""
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueProblem(key, f"expected text, got {_type(value)}")
        if value.strip() == "":
            if required:
                raise ValueProblem(key, "is empty but required")
            if empty_as_null or value == "":
                return None
        return value

    def integer(self, key: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._value(key, required)
        return default if value is None else to_int(value, key)

    def real(self, key: str, *, required: bool = False, default: float | None = None) -> float | None:
        value = self._value(key, required)
        return default if value is None else to_real(value, key)

    def money(self, key: str) -> float:
        """A NOT NULL amount the upstream writes as null when it is zero: null/missing → 0."""
        value = self._value(key, False)
        if value is None:
            self._note(key, "null read as 0 (upstream writes zero as null)")
            return 0.0
        return to_real(value, key)

    def boolean(self, key: str, *, default: bool) -> bool:
        """A flag; missing/null means the default (the single-file exporter omits false flags)."""
        value = self._value(key, False)
        return default if value is None else to_bool(value, key)

    def enum(self, key: str, choices: Iterable[str], *, default: str | None = None,
             required: bool = False) -> str | None:
        value = self._value(key, required and default is None)
        if value is None:
            return default
        return to_enum(value, key, choices)

    def date(self, key: str, *, required: bool = False) -> str | None:
        value = self._value(key, required)
        return None if value is None else to_date(value, key)

    def timestamp(self, key: str, *, required: bool = False) -> str | None:
        value = self._value(key, required)
        return None if value is None else to_timestamp(value, key)

    def json(self, key: str) -> str | None:
        value = self._value(key, False)
        return None if value is None else to_json_text(value, key)

    def blob(self, key: str, *, required: bool = False) -> str | None:
        value = self._value(key, required)
        return None if value is None else to_text_blob(value, key)

    def uuid(self, key: str = "uuid") -> str | None:
        value = self._value(key, False)
        return None if value is None else to_uuid(value, key)

    def note(self, field: str, rule: str) -> None:
        self._note(field, rule)


__all__ = [
    "RecordReader", "ValueProblem", "to_bool", "to_date", "to_enum", "to_int",
    "to_json_text", "to_real", "to_text_blob", "to_timestamp", "to_uuid",
]
