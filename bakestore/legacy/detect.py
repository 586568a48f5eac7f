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


def read_json_bytes(raw: bytes, label: str) -> Any:
    """Decode UTF-8 (a BOM is tolerated) and parse JSON; refusals name the byte or line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LegacyFormatError(f"{label}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset "
                                f"{exc.start}); {EXPECTED}") from None
    if not text.strip():
        raise LegacyFormatError(f"{label}: the file is empty; {EXPECTED}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LegacyFormatError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                f"{EXPECTED}") from None
    except RecursionError:
        raise LegacyFormatError(f"{label}: JSON nested too deeply to be an upstream export") from None


def _type_name(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


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


__all__ = ["EXPECTED", "LegacyInput", "MANIFEST_VERSIONS", "SINGLE_FILE_VERSIONS", "detect", "read_json_bytes"]
