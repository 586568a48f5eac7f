"""Format detection: which upstream BakeTracker format a path holds, or a refusal saying what was expected.

Accepted (``baketracker-legacy-formats.md``):

* a **single-file v4 JSON** — a JSON object whose ``version`` is ``"4.0"``, ``"4.1"`` or ``"4.2"``;
* a **coordinated backup folder** — a folder holding ``manifest.json`` — or that ``manifest.json``.

Everything else is refused with a :class:`~bakestore.errors.LegacyFormatError` that says what was
found and what was expected: the upstream importer accepted "no known entities" as valid
(§4.5 C3) and ignored the version entirely, which is how a two-key file emptied a database.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import LegacyFormatError

SINGLE_FILE_VERSIONS: tuple[str, ...] = ("4.0", "4.1", "4.2")
MANIFEST_VERSIONS: tuple[str, ...] = ("1.0",)
EXPECTED = ("expected an upstream BakeTracker v4 single-file JSON export (\"version\": \"4.0\", \"4.1\" or "
            "\"4.2\") or a coordinated backup folder (or its manifest.json)")


@dataclass
class LegacyInput:
    """A detected upstream input, read and parsed once (the bytes are hashed for the audit)."""

    kind: Literal["single", "coordinated"]
    path: Path
    label: str
    version: str
    sha256: str
    data: dict[str, Any]
    folder: Path | None = None

    @property
    def description(self) -> str:
        if self.kind == "single":
            return f"BakeTracker single-file v{self.version} JSON"
        return f"BakeTracker coordinated backup (manifest {self.version})"


class HugeNumber:
    """A JSON integer literal too long for Python to convert (over ``sys.get_int_max_str_digits()``).

    Parsing keeps going with this marker in its place, so the refusal can name the record and
    field it sits in (every value rule refuses it) instead of failing the whole file without a
    place. It is deliberately not a ``str`` or ``int``: nothing can mistake it for a value.
    """

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<a number with {self.digits} digits>"


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a JSON object that repeats a key is refused, never "last one wins"."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _parse_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return HugeNumber(text)


_WS = re.compile(r"[ \t\n\r]*")


class _Found(Exception):
    def __init__(self, key: str, position: int, path: str) -> None:
        super().__init__(key)
        self.key, self.position, self.path = key, position, path


def _locate_duplicate(text: str) -> tuple[int, str] | None:
    """Where the first repeated key is (offset of its second occurrence, and the object's path).

    Only runs after a parse found a duplicate, on text the JSON parser has already walked, so a
    small walker over it is enough; anything unexpected gives up (the message then has no line).
    """
    decoder = json.JSONDecoder(parse_int=_parse_int)

    def skip(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    def value(i: int, path: str) -> int:
        i = skip(i)
        if text[i] == "{":
            i, seen = skip(i + 1), set()
            if text[i] == "}":
                return i + 1
            while True:
                start = skip(i)
                key, i = decoder.raw_decode(text, start)
                if key in seen:
                    raise _Found(key, start, path)
                seen.add(key)
                i = value(skip(i) + 1, f"{path}.{key}" if path else key)  # past the ':'
                i = skip(i)
                if text[i] == "}":
                    return i + 1
                i += 1  # the ','
        if text[i] == "[":
            i, index = skip(i + 1), 0
            if text[i] == "]":
                return i + 1
            while True:
                i = skip(value(i, f"{path}[{index}]"))
                if text[i] == "]":
                    return i + 1
                i, index = i + 1, index + 1
        return decoder.raw_decode(text, i)[1]

    try:
        value(0, "")
    except _Found as found:
        return found.position, found.path
    except (ValueError, IndexError, RecursionError):
        return None
    return None


def read_json_bytes(raw: bytes, label: str) -> Any:
    """Decode UTF-8 (a BOM is tolerated) and parse JSON; refusals name the byte or line.

    A key repeated within one object is refused, naming the key, the object and the line: a
    JSON parser keeps only the last value, so a hand-merged file would silently lose the first.
    An integer literal too long to convert becomes a :class:`HugeNumber`, refused by the value
    rules with the record and field it is in.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LegacyFormatError(f"{label}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset "
                                f"{exc.start}); {EXPECTED}") from None
    if not text.strip():
        raise LegacyFormatError(f"{label}: the file is empty; {EXPECTED}")
    try:
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError:
            raise
        except _DuplicateKey:
            raise
        except ValueError:
            # An integer literal beyond Python's int-string limit: parse again, keeping a marker
            # that the value rules refuse with the record and field (only on this rare path).
            return json.loads(text, object_pairs_hook=_unique_pairs, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise LegacyFormatError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                f"{EXPECTED}") from None
    except _DuplicateKey as dup:
        where = _locate_duplicate(text)
        if where is None:
            place = ""
        else:
            position, path = where
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
            place = f" (line {line}, column {column}, in {path or 'the top-level object'})"
        raise LegacyFormatError(f"{label}: key {dup.key!r} appears twice in one JSON object{place}; a JSON reader "
                                "keeps only the last value, so refusing rather than losing the first") from None
    except RecursionError:
        raise LegacyFormatError(f"{label}: JSON nested too deeply to be an upstream export") from None


def _type_name(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null", HugeNumber: "a number"}.get(type(value), type(value).__name__)


def _manifest_input(manifest_path: Path, raw: bytes, data: Any, folder_label: str) -> LegacyInput:
    label = f"{folder_label}/manifest.json"
    if not isinstance(data, dict):
        raise LegacyFormatError(f"{label}: expected a JSON object, got {_type_name(data)}; {EXPECTED}")
    if data.get("format") == "bakestore-export":
        raise LegacyFormatError(f"{label}: this is a bakestore export, not an upstream BakeTracker backup; "
                                "use `bakestore restore` (or `bakestore merge`) for it")
    version = data.get("version")
    if version not in MANIFEST_VERSIONS:
        raise LegacyFormatError(f"{label}: manifest version {version!r} is not a coordinated backup manifest "
                                f"(expected {', '.join(MANIFEST_VERSIONS)})")
    if not isinstance(data.get("files"), list):
        raise LegacyFormatError(f"{label}: 'files' must be a list of entity files, got "
                                f"{_type_name(data.get('files'))}")
    return LegacyInput(kind="coordinated", path=manifest_path, label=label, version=str(version),
                       sha256=hashlib.sha256(raw).hexdigest(), data=data, folder=manifest_path.parent)


def detect(path: str | os.PathLike[str]) -> LegacyInput:
    """Detect and parse an upstream input; raises :class:`LegacyFormatError` for anything else."""
    given = Path(path)
    if not given.exists():
        raise LegacyFormatError(f"{given}: no such file or folder")
    if given.is_dir():
        manifest = given / "manifest.json"
        if not manifest.is_file():
            raise LegacyFormatError(f"{given}: folder has no manifest.json; {EXPECTED}")
        raw = manifest.read_bytes()
        return _manifest_input(manifest, raw, read_json_bytes(raw, f"{given.name}/manifest.json"), given.name)

    raw = given.read_bytes()
    label = given.name
    data = read_json_bytes(raw, label)
    if not isinstance(data, dict):
        raise LegacyFormatError(f"{label}: the top level is {_type_name(data)}, not an object; {EXPECTED}")
    if isinstance(data.get("files"), list) or (given.name == "manifest.json"
                                                and data.get("version") not in SINGLE_FILE_VERSIONS):
        return _manifest_input(given, raw, data, given.parent.name)
    if "entity_type" in data and "records" in data:
        raise LegacyFormatError(f"{label}: this is one entity file ({data.get('entity_type')!r}) of a coordinated "
                                "backup; pass the backup folder or its manifest.json")
    if "version" not in data:
        keys = ", ".join(list(data)[:5]) or "none"
        raise LegacyFormatError(f"{label}: no 'version' key (top-level keys: {keys}); {EXPECTED}")
    version = data["version"]
    if not isinstance(version, str):
        raise LegacyFormatError(f"{label}: 'version' must be text such as \"4.1\", got {_type_name(version)} "
                                f"{version!r}; {EXPECTED}")
    if version not in SINGLE_FILE_VERSIONS:
        if version.startswith(("1.", "2.", "3.")):
            hint = ("pre-4.0 files are not supported (upstream removed that importer in January 2026); "
                    "re-export them with a v4 BakeTracker")
        else:
            hint = EXPECTED
        raise LegacyFormatError(f"{label}: unsupported version {version!r}; {hint}")
    return LegacyInput(kind="single", path=given, label=label, version=version,
                       sha256=hashlib.sha256(raw).hexdigest(), data=data)


__all__ = ["EXPECTED", "HugeNumber", "LegacyInput", "MANIFEST_VERSIONS", "SINGLE_FILE_VERSIONS", "detect", "read_json_bytes"]
