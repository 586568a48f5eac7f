"""The export format: a folder of PK-ordered canonical NDJSON files plus a manifest written last.

An export is a backup, the source of a restore, and the unit that sync moves between devices, so
it must be boring to diff and impossible to mistake for complete when it is not:

* one ``<table>.ndjson`` per exported registry table (empty tables too), rows ordered by primary
  key, each line canonical JSON (sorted keys, no spaces, UTF-8 kept); SQL NULL is ``null`` and
  never ``""``; non-finite floats are ``{"$float": "NaN" | "Infinity" | "-Infinity"}`` and BLOBs
  ``{"$base64": "…"}`` (no registry column holds either, but foreign writers can put them there);
* ``manifest.json`` written **last**, listing per table the file, row count, byte size and sha256,
  plus format/schema/bakestore versions, the source database's identity and ``created_at``;
* the folder is written under a temporary name, fsynced, and renamed into place.

``created_at`` in the manifest is the time of the newest change the export contains (taken from
the row versions), not the wall-clock time of the export, so exporting the same data twice gives
byte-identical folders; the wall-clock time is in the folder's name.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as _dt
import functools
import hashlib
import json
import json.encoder
import logging
import math
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ._version import __version__
from .files import fsync_dir
from .errors import ExportError, SourceError
from .models.base import format_timestamp
from .registry import REGISTRY, Registry, TableSpec
from .schema import SCHEMA_VERSION
from .sqlite import sqlite3

FORMAT_NAME = "bakestore-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: A line longer than this is refused on read: no bakestore row comes near it, and reading an
#: unbounded line could exhaust memory on a damaged or hostile file.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: A manifest larger than this is refused unread (a real one is about 12 kB).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.ndjson$")

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- encoding


def _encode_special(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The C encoder without the per-call set-up of json.dumps: same bytes, a third less time. It is a
# private part of CPython's json package, hence the fallback and the typing escape hatches.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode: Callable[[dict[str, Any]], str]
if _c_make_encoder is not None:
    _c_encoder = _c_make_encoder(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
                                 False, False, False)

    def _encode(row: dict[str, Any]) -> str:
        return "".join(_c_encoder(row, 0))
else:  # pragma: no cover
    _encode = _ENCODER.encode


def encode_row(columns: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """One canonical NDJSON line (without the newline). ``columns`` must be sorted."""
    row = dict(zip(columns, values))
    try:
        return _encode(row)
    except (ValueError, TypeError):  # NaN/Infinity or bytes: the two special encodings
        return _ENCODER.encode({k: _encode_special(v) for k, v in row.items()})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (non-finite numbers are written as {{\"$float\": ...}})")


#: Strict JSON: ``NaN``/``Infinity`` tokens (which Python's json accepts by default) are refused.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_scan: Any = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner json.loads uses


def _decode_special(key: str, value: dict[str, Any]) -> Any:
    if len(value) == 1:
        if "$float" in value:
            text = value["$float"]
            if text not in ("NaN", "Infinity", "-Infinity"):
                raise ValueError(f"field {key!r}: bad $float value {text!r}")
            if text == "NaN":
                # SQLite would store NaN as NULL: refusing it is the only lossless choice.
                raise ValueError(f"field {key!r}: NaN cannot be stored (SQLite turns it into NULL)")
            return float(text.replace("Infinity", "inf"))
        if "$base64" in value:
            try:
                return base64.b64decode(value["$base64"], validate=True)
            except (ValueError, TypeError):
                raise ValueError(f"field {key!r}: bad $base64 value") from None
    raise ValueError(f"field {key!r}: an object is not a column value")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise ValueError(f"field {key!r} appears twice")
        row[key] = value
    return row


_STRICT_PAIRS = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)


def _decode_nested(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        kind = type(value)
        if kind is dict:
            row[key] = _decode_special(key, value)
        elif kind is list:
            raise ValueError(f"field {key!r}: a list is not a column value")
    return row


def decode_lines(text: str, count: int) -> list[dict[str, Any]]:
    """Decode ``count`` newline-terminated NDJSON lines at once (one parser call for the batch).

    Gives exactly what :func:`decode_row` gives line by line, or raises ValueError; the caller
    then decodes line by line to find and name the bad line.
    """
    # Each newline becomes ",\n": between rows that is a separator (the newline is whitespace),
    # and inside a string it stays a raw newline, which strict JSON refuses — so a row cannot
    # be glued to the next through a string, and what decodes here is exactly what decodes line
    # by line. A line with no value breaks the syntax, a line with two makes the count wrong:
    # either way the caller goes line by line and names the line.
    body = text[:-1] if text.endswith("\n") else text
    rows = _DECODER.decode("[" + body.replace("\n", ",\n") + "]")
    if len(rows) != count or any(type(row) is not dict for row in rows):
        raise ValueError("not one object per line")
    keys = body.count('":')
    if "\\" in body:  # an escaped quote before a colon is inside a string, not a key
        keys -= body.count('\\":')
    if keys != sum(map(len, rows)):
        raise ValueError("possible duplicate key")  # see decode_row
    if "[" in text or text.count("{") != count:
        for row in rows:
            _decode_nested(row)
    return rows


def decode_row(line: str) -> dict[str, Any]:
    """Parse one NDJSON line into a row; raises ValueError naming the problem.

    Refused: anything but one JSON object, ``NaN``/``Infinity`` tokens, a key given twice,
    list values and nested objects other than the ``$float``/``$base64`` encodings.
    """
    text = line[:-1] if line.endswith("\n") else line
    try:
        row, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        row = _DECODER.decode(text)  # surrounding whitespace is fine; anything else raises here
    if type(row) is not dict:
        raise ValueError(f"expected an object, got {type(row).__name__}")
    # A duplicate key would silently keep the last value. Each key ends in an unescaped `":`
    # (inside strings every quote is escaped), so fewer such marks than keys is impossible and
    # more means a duplicate (or a nested object): then re-parse strictly to find out.
    if text.count('":') - text.count('\\":') != len(row):
        row = _STRICT_PAIRS.decode(text)
    # Nested containers can only appear where the raw text has a bracket or a second brace.
    if "[" in text or text.find("{", 1) != -1:
        _decode_nested(row)
    return row


# --------------------------------------------------------------------------- writing



def _max_version_ms(db: Any, specs: tuple[TableSpec, ...]) -> int | None:
    best: int | None = None
    for spec in specs:
        column = "row_version" if spec.has_column("row_version") else None
        if column is None:
            continue
        value = db.execute(f'SELECT max("{column}") FROM "{spec.name}"').fetchone()[0]
        if value:
            ms = int(str(value).split("-")[0])
            best = ms if best is None or ms > best else best
    return best


@dataclass
class ExportResult:
    path: Path
    manifest: dict[str, Any]
    #: Tables serialized from the database (the others' files were reused from a previous export).
    rewritten: list[str] | None = None

    @property
    def total_rows(self) -> int:
        return int(self.manifest["total_rows"])


def write_table(db: Any, spec: TableSpec, path: Path) -> tuple[int, int, str]:
    """Write one table's NDJSON file; returns (rows, bytes, sha256). Runs in the caller's snapshot."""
    columns = tuple(sorted(spec.column_names))
    select = ", ".join(f'"{c}"' for c in columns)
    order = ", ".join(f'"{c}"' for c in spec.pk)
    digest = hashlib.sha256()
    rows = size = 0
    encode = _encode
    with open(path, "wb") as out:
        cursor = db.execute(f'SELECT {select} FROM "{spec.name}" ORDER BY {order}')
        while True:
            batch = cursor.fetchmany(5000)
            if not batch:
                break
            try:
                lines = [encode(dict(zip(columns, values))) for values in batch]
            except (ValueError, TypeError):
                lines = [encode_row(columns, values) for values in batch]
            chunk = ("\n".join(lines) + "\n").encode("utf-8")
            out.write(chunk)
            digest.update(chunk)
            rows += len(batch)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return rows, size, digest.hexdigest()


class _NotReusable(Exception):
    """The previous export's file cannot be vouched for: the table is written fresh instead."""


def _reuse_file(previous: Path, target: Path, table: str,
                manifests: dict[Path, tuple[dict[str, dict[str, Any]], int | None]]) -> tuple[int, int, str]:
    """Put an unchanged table's file from the previous export into this one.

    A hard link (a copy where links are not possible) and the previous manifest's rows/bytes/sha256:
    no re-reading. Only a file the previous manifest vouches for is reused: its entry must exist,
    the file must be a regular file of the listed size, and it must not have been modified after
    that manifest was written (the manifest is written last). Otherwise :class:`_NotReusable` is
    raised and the caller writes the table fresh from the database: damage is never carried
    forward, let alone blessed with a fresh checksum. Damage that leaves size and mtime alone (bit
    rot) keeps the old checksum, so verification of this export refuses it, as it should.
    """
    folder = previous.parent
    if folder not in manifests:
        try:
            manifest_path = folder / MANIFEST
            mtime = manifest_path.stat().st_mtime_ns
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifests[folder] = ({e["name"]: e for e in data.get("tables", [])
                                  if isinstance(e, dict) and isinstance(e.get("name"), str)}, mtime)
        except (OSError, ValueError, AttributeError):
            manifests[folder] = ({}, None)
    entries, written = manifests[folder]
    entry = entries.get(table)
    if entry is None or written is None:
        raise _NotReusable(f"{previous}: the previous export's manifest does not list it")
    rows, size, sha = entry.get("rows"), entry.get("bytes"), entry.get("sha256")
    if not (isinstance(rows, int) and isinstance(size, int) and isinstance(sha, str)):
        raise _NotReusable(f"{previous}: the previous export's manifest entry is malformed")
    try:
        info = os.lstat(previous)
    except OSError as exc:
        raise _NotReusable(f"{previous}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _NotReusable(f"{previous}: not a regular file")
    if info.st_size != size:
        raise _NotReusable(f"{previous}: {info.st_size} bytes, its manifest says {size} (damaged or edited)")
    if info.st_mtime_ns > written:
        raise _NotReusable(f"{previous}: modified after its export was complete")
    try:
        os.link(previous, target)
    except OSError:
        shutil.copyfile(previous, target)
    if target.stat().st_size != size:  # changed in the moment between the check and the link
        target.unlink()
        raise _NotReusable(f"{previous}: changed while it was being reused")
    return rows, size, sha


def export_database(db: Any, target: Path, *, db_id: str, registry: Registry = REGISTRY,
                    name: str | None = None, progress: Progress | None = None,
                    tables: list[str] | None = None, reuse: dict[str, Path] | None = None) -> ExportResult:
    """Export an open database into a new folder ``target/<name>`` (or ``target`` if name is None).

    Reads every table inside one read transaction, so the export is a consistent snapshot even
    while other connections write. ``tables``/``reuse`` let an incremental exporter rewrite only
    the tables that changed and copy the others' files from the previous export.
    """
    target = Path(target)
    final = target / name if name else target
    if final.exists():
        raise ExportError(f"{final}: already exists; an export never overwrites another")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_folders(final.parent)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(f"export to {final} failed: {exc.strerror or exc}; nothing was written") from None
    specs = registry.exported_tables
    entries: list[dict[str, Any]] = []
    rewritten: list[str] = []
    manifests: dict[Path, tuple[dict[str, dict[str, Any]], int | None]] = {}
    try:
        started_here = not db.conn.in_transaction
        if started_here:
            db.execute("BEGIN")
        try:
            for index, spec in enumerate(specs):
                file_name = f"{spec.name}.ndjson"
                previous = (reuse or {}).get(spec.name)
                count = None
                if previous is not None and (tables is None or spec.name not in tables):
                    try:
                        count, size, sha = _reuse_file(previous, tmp / file_name, spec.name, manifests)
                    except _NotReusable as why:
                        log.warning("not reusing %s; writing %s fresh from the database", why, file_name)
                if count is None:
                    count, size, sha = write_table(db, spec, tmp / file_name)
                    rewritten.append(spec.name)
                entries.append({"name": spec.name, "file": file_name, "rows": count, "bytes": size, "sha256": sha})
                if progress:
                    progress(spec.name, index + 1, len(specs))
            newest = _max_version_ms(db, specs)
        finally:
            if started_here and db.conn.in_transaction:
                db.execute("COMMIT")
        created = (format_timestamp(_dt.datetime.fromtimestamp(newest / 1000, _dt.timezone.utc))
                   if newest is not None else None)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "schema_version": SCHEMA_VERSION,
            "bakestore_version": __version__,
            "source": {"db_id": db_id},
            "created_at": created,
            "tables": entries,
            "total_rows": sum(e["rows"] for e in entries),
        }
        manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        with open(tmp / MANIFEST, "wb") as out:  # written last: its presence means "complete"
            out.write(manifest_bytes)
            out.flush()
            os.fsync(out.fileno())
        fsync_dir(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"export to {final} failed: {exc.strerror or exc}; nothing was written") from None
    except sqlite3.Error as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"export to {final} failed while reading the database: {exc}; "
                          "nothing was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(final, manifest, rewritten)


_TEMP_FOLDER = re.compile(r"^\..+\.tmp-(\d+)$")


def remove_stale_temp_folders(folder: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` folders left by exports whose process no longer exists.

    A killed export leaves its temporary folder behind (no manifest, a hidden name, so it never
    looks complete); the next export in the same folder sweeps it. Folders of live processes
    (another export running now) are left alone.
    """
    removed: list[Path] = []
    for path in Path(folder).iterdir():
        match = _TEMP_FOLDER.match(path.name)
        if not match or not path.is_dir() or path.is_symlink() or (path / MANIFEST).exists():
            continue
        # Only what an interrupted export leaves: table files and nothing else. A hidden folder of
        # another program that happens to match the name pattern is never touched.
        if any(child.is_dir() or not _SAFE_NAME.match(child.name) for child in path.iterdir()):
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # that process is alive: its export may be running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def export_name(now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return "bakestore-export-" + now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- reading / verifying


def _scan_file(path: Path) -> tuple[str, int, bytes, os.stat_result]:
    """sha256, newline count, last byte and identity of one file, read once."""
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), lines, last, info


class ExportFolderSource:
    """An export folder as a :class:`~bakestore.sources.RowSource`, verified before use."""

    def __init__(self, path: str | os.PathLike[str], registry: Registry = REGISTRY) -> None:
        path = Path(path)
        if path.name == MANIFEST:
            path = path.parent
        self.path = path
        self.registry = registry
        self.label = f"export folder {path}"
        self.manifest: dict[str, Any] = {}
        self.db_id: str | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        self._sha: str | None = None
        self._identity: dict[str, tuple[int, int, int, int]] = {}

    # -- checks, each one naming the file

    def _fail(self, message: str) -> SourceError:
        return SourceError(f"{self.path}: {message}")

    def _load_manifest(self) -> None:
        if self.path.is_symlink():
            raise self._fail("the export folder is a symlink; refusing to follow it")
        if not self.path.is_dir():
            raise self._fail("not an export folder (no such directory)")
        manifest_path = self.path / MANIFEST
        if manifest_path.is_symlink():
            raise self._fail(f"{MANIFEST} is a symlink; refusing to follow it")
        if not manifest_path.is_file():
            raise self._fail(f"{MANIFEST} is missing (an incomplete export has no manifest)")
        size = manifest_path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise self._fail(f"{MANIFEST} is too large to be a manifest ({size} bytes)")
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self._fail(f"{MANIFEST}: not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise self._fail(f"{MANIFEST}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(manifest, dict):
            raise self._fail(f"{MANIFEST}: expected an object")
        if manifest.get("format") != FORMAT_NAME:
            raise self._fail(f"{MANIFEST}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise self._fail(f"{MANIFEST}: format_version {manifest.get('format_version')!r} is not supported "
                             f"(this bakestore reads {FORMAT_VERSION})")
        version = manifest.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise self._fail(f"{MANIFEST}: schema_version {version!r} is not a schema version")
        if version > SCHEMA_VERSION:
            raise self._fail(f"{MANIFEST}: schema_version {version} is newer than this bakestore ({SCHEMA_VERSION})")
        if version < SCHEMA_VERSION:
            raise self._fail(f"{MANIFEST}: schema_version {version} needs a migration that this bakestore lacks")
        tables = manifest.get("tables")
        if not isinstance(tables, list):
            raise self._fail(f"{MANIFEST}: 'tables' must be a list")
        entries: dict[str, dict[str, Any]] = {}
        for index, entry in enumerate(tables):
            where = f"{MANIFEST}: tables[{index}]"
            if not isinstance(entry, dict):
                raise self._fail(f"{where}: expected an object")
            for key, kind in (("name", str), ("file", str), ("rows", int), ("sha256", str)):
                if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                    raise self._fail(f"{where}: field {key!r} missing or not a {kind.__name__}")
            name, file_name = entry["name"], entry["file"]
            if name not in self.registry or not self.registry[name].exported:
                raise self._fail(f"{where}: unknown table {name!r}")
            if name in entries:
                raise self._fail(f"{where}: table {name!r} listed twice")
            if not _SAFE_NAME.match(file_name) or file_name != f"{name}.ndjson":
                raise self._fail(f"{where}: file name {file_name!r} is not allowed (expected {name}.ndjson; "
                                 "names may not leave the folder)")
            if entry["rows"] < 0:
                raise self._fail(f"{where}: negative row count")
            entries[name] = entry
        missing = [s.name for s in self.registry.exported_tables if s.name not in entries]
        if missing:
            raise self._fail(f"{MANIFEST}: tables missing from the manifest: {', '.join(missing[:8])}"
                             + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))
        self.manifest = manifest
        self._entries = entries
        source = manifest.get("source")
        self.db_id = source.get("db_id") if isinstance(source, dict) and isinstance(source.get("db_id"), str) else None
        self._sha = hashlib.sha256(raw).hexdigest()

    def verify(self, progress: Progress | None = None) -> None:
        """Manifest well-formed, every file present, a regular file, sha256 and row counts match."""
        self._load_manifest()
        self._identity = {}
        specs = self.registry.exported_tables
        paths = {spec.name: self.path / self._entries[spec.name]["file"] for spec in specs}
        # Hash two files at a time (hashlib lets go of the GIL); problems are still reported in
        # table order, the first one found, as if the files were read one after the other.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            scans = {name: pool.submit(_scan_file, path) for name, path in paths.items()
                     if not path.is_symlink() and path.is_file()}
            for index, spec in enumerate(specs):
                entry = self._entries[spec.name]
                file_path = paths[spec.name]
                if file_path.is_symlink():
                    raise self._fail(f"{entry['file']} is a symlink; refusing to follow it")
                if spec.name not in scans:
                    raise self._fail(f"{entry['file']} is missing")
                digest, lines, last, info = scans[spec.name].result()
                if digest != entry["sha256"]:
                    raise self._fail(f"{entry['file']}: sha256 does not match the manifest (file changed or "
                                     "truncated)")
                if last != b"\n":
                    raise self._fail(f"{entry['file']}: line {lines + 1}: no newline at the end of the file "
                                     "(truncated?)")
                if lines != entry["rows"]:
                    raise self._fail(f"{entry['file']}: {lines} rows but the manifest says {entry['rows']}")
                self._identity[spec.name] = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                if progress:
                    progress(spec.name, index + 1, len(specs))

    def handoff(self) -> dict[str, Any]:
        """What :meth:`from_handoff` needs to read this verified folder in another process
        without hashing it again: the manifest entries and each file's identity at verification."""
        if not self._identity:
            raise SourceError(f"{self.path}: not verified yet")
        return {"path": str(self.path), "manifest": self.manifest, "entries": self._entries,
                "identity": {name: list(ident) for name, ident in self._identity.items()},
                "sha256": self._sha, "db_id": self.db_id}

    @classmethod
    def from_handoff(cls, state: dict[str, Any], registry: Registry = REGISTRY) -> "ExportFolderSource":
        """The same verified folder in a second process (restore's parallel load). Every file is
        still checked against the identity it had when it was hashed before it is read."""
        source = cls(state["path"], registry)
        source.manifest, source._entries, source._sha = state["manifest"], state["entries"], state["sha256"]
        source.db_id = state["db_id"]
        source._identity = {name: (ident[0], ident[1], ident[2], ident[3]) for name, ident in state["identity"].items()}
        return source

    def file_sizes(self) -> dict[str, int]:
        """Bytes per table file (as verified): how restore splits the load between two processes."""
        return {name: ident[2] for name, ident in self._identity.items()}

    def checksum(self) -> str | None:
        return self._sha

    def tables(self) -> list[str]:
        return list(self._entries)

    def declared_counts(self) -> dict[str, int] | None:
        return {name: entry["rows"] for name, entry in self._entries.items()}

    def iter_rows(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``file:line``, row) pairs of a verified table file, streamed."""
        for locate, rows in self.iter_batches(table):
            for index, row in enumerate(rows):
                yield locate(index), row

    def iter_batches(self, table: str, size: int = 5000) -> Iterator[tuple[Callable[[int], str],
                                                                           list[dict[str, Any]]]]:
        """Batches of up to ``size`` rows of a verified table file: ``(locate, rows)`` where
        ``locate(i)`` names the file and line of ``rows[i]`` (for messages).

        A line longer than :data:`MAX_LINE_BYTES` is refused before it is read whole, a file
        that was replaced or modified since :meth:`verify` hashed it is refused, and a batch
        that does not decode cleanly is decoded again line by line to name the bad line.
        """
        entry = self._entries.get(table)
        if entry is None:
            return
        file_name = entry["file"]
        limit = MAX_LINE_BYTES
        with open(self.path / file_name, "rb") as handle:
            info = os.fstat(handle.fileno())
            expected = self._identity.get(table)
            if expected is not None and expected != (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns):
                raise SourceError(f"{self.path}: {file_name}: changed after it was verified; refusing it")
            readline = handle.readline
            first = 1
            while True:
                lines: list[bytes] = []
                append = lines.append
                for _ in range(size):
                    raw = readline(limit + 1)
                    if not raw:
                        break
                    if len(raw) > limit:
                        raise SourceError(f"{self.path}: {file_name}:{first + len(lines)}: line longer than "
                                          f"{limit} bytes")
                    append(raw)
                if not lines:
                    return
                try:
                    rows = decode_lines(b"".join(lines).decode("utf-8"), len(lines))
                except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                    rows = [self._decode_line(file_name, first + i, raw) for i, raw in enumerate(lines)]
                yield functools.partial(_locate, file_name, first), rows
                first += len(lines)

    def _decode_line(self, file_name: str, lineno: int, raw: bytes) -> dict[str, Any]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{self.path}: {file_name}:{lineno}: not UTF-8 (byte {exc.start})") from None
        try:
            return decode_row(text)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise SourceError(f"{self.path}: {file_name}:{lineno}: invalid row: {message}") from None


def _locate(file_name: str, first: int, index: int) -> str:
    return f"{file_name}:{first + index}"


_EXPORT_NAME = re.compile(r"^bakestore-export-(\d{8})T\d{9}Z$")


def list_exports(folder: Path) -> list[Path]:
    """Complete exports (with a manifest) under ``folder``, oldest first by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def prune_exports(folder: Path, *, keep_last: int = 10, keep_daily: int = 30) -> list[Path]:
    """Retention: keep the newest ``keep_last`` exports and the newest export of each of the last
    ``keep_daily`` days that have exports (restic's ``--keep-daily`` rule); never delete the newest
    export. Only folders named by :func:`export_name` are candidates: anything else in the folder
    (a hand-named export, a user's own files) is never deleted. Returns the folders removed."""
    # Checked before anything is looked at: a negative count would slice from the wrong end.
    for what, value in (("keep_last", keep_last), ("keep_daily", keep_daily)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ExportError(f"retention: {what} must be a whole number of at least 0, not {value!r}; "
                              "nothing was pruned")
    exports = [p for p in list_exports(folder) if _EXPORT_NAME.match(p.name)]
    if not exports:
        return []
    keep: set[Path] = set(exports[-max(keep_last, 1):])  # never the newest
    by_day: dict[str, Path] = {}
    for path in exports:
        match = _EXPORT_NAME.match(path.name)
        assert match is not None
        by_day[match.group(1)] = path  # sorted by name = by time: the last one is the day's newest
    for day in sorted(by_day)[-keep_daily:] if keep_daily else []:
        keep.add(by_day[day])
    removed = [p for p in exports if p not in keep]
    for path in removed:
        shutil.rmtree(path)
    return removed
