"""The SQLite file format, read from raw bytes: header, varints, records, schemas.

Forensics must never ask SQLite to open the evidence (opening can checkpoint a WAL or roll back a
hot journal, see docs/forensics.md), so everything here works on ``bytes`` with ``struct``.
Parsing functions raise :class:`FormatError` on malformed input; callers turn that into a per-page
error entry and carry on, because one damaged page must not hide the rest of the file.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

MAGIC = b"SQLite format 3\x00"
TEXT_ENCODINGS = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}

#: Body size of serial types 0..11 (10 and 11 are reserved and never valid).
_FIXED_SIZES = (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)


class FormatError(ValueError):
    """Bytes that do not follow the SQLite file format where they should."""


#: Errors that malformed bytes can raise from the low-level readers; caught per page or stage.
PARSE_ERRORS: tuple[type[BaseException], ...] = (FormatError, IndexError, ValueError, struct.error,
                                                  OverflowError, UnicodeDecodeError, KeyError)


# --------------------------------------------------------------------------- varints and records

def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the SQLite varint at ``pos``; return ``(value, next_pos)``.

    Raises IndexError when the varint runs past the buffer (the caller reports the page).
    """
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    for i in range(1, 8):
        b = buf[pos + i]
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos + i + 1
    value = (value << 8) | buf[pos + 8]
    if value >= 1 << 63:
        value -= 1 << 64
    return value, pos + 9


def encode_varint(value: int) -> bytes:
    """Encode ``value`` as SQLite writes it (minimal length), for canonical record keys."""
    if value < 0:
        value += 1 << 64
    if value <= 0x7F:
        return bytes((value,))
    if value > 0x00FFFFFFFFFFFFFF:
        out = [value & 0xFF]
        value >>= 8
        for _ in range(8):
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        return bytes(reversed(out))
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def varint_len(value: int) -> int:
    """Bytes SQLite needs to store ``value`` as a varint."""
    if 0 <= value <= 0x7F:
        return 1
    return len(encode_varint(value))


def serial_size(st: int) -> int:
    """Body bytes used by serial type ``st``; raises FormatError for the reserved types 10/11."""
    if st >= 12:
        return (st - 12) >> 1
    if st < 0 or st >= 10:
        raise FormatError(f"reserved serial type {st}")
    return _FIXED_SIZES[st]


def parse_record_header(buf: bytes | memoryview, pos: int, limit: int) -> tuple[list[int], int]:
    """Read a record header at ``pos``: return ``(serial_types, body_start)``.

    ``limit`` bounds the header (end of the local payload); a header running past it is malformed.
    """
    b = buf[pos]
    if b < 0x80:  # one-byte varints read in place (most header bytes are)
        hlen, p = b, pos + 1
    else:
        hlen, p = read_varint(buf, pos)
    end = pos + hlen
    if hlen < 1 or end > limit or hlen > 65536:
        raise FormatError(f"record header length {hlen} does not fit")
    sts: list[int] = []
    append = sts.append
    while p < end:
        b = buf[p]
        if b < 0x80:
            append(b)
            p += 1
        else:
            st, p = read_varint(buf, p)
            append(st)
    if p != end:
        raise FormatError("record header overruns its declared length")
    return sts, end


def body_size(sts: Iterable[int]) -> int:
    """Total body bytes of a record with these serial types."""
    total = 0
    for st in sts:
        if st >= 12:
            total += (st - 12) >> 1
        elif st >= 10 or st < 0:
            raise FormatError(f"reserved serial type {st}")
        else:
            total += _FIXED_SIZES[st]
    return total


def decode_values(buf: bytes | memoryview, pos: int, sts: list[int], encoding: str,
                  *, strict: bool = False) -> tuple[Any, ...]:
    """Decode the record body starting at ``pos`` for serial types ``sts``.

    With ``strict`` a text that is not valid in the database encoding raises (the carver uses
    that as a junk filter); otherwise it is decoded with replacement characters.
    """
    out: list[Any] = []
    append = out.append
    errors = "strict" if strict else "replace"
    size = len(buf)
    for st in sts:
        if st >= 12:  # text and blobs first: the most common
            n = (st - 12) >> 1
            if pos + n > size:
                raise FormatError("record body truncated")
            raw = buf[pos:pos + n]
            if type(raw) is not bytes:
                raw = bytes(raw)
            pos += n
            append(raw.decode(encoding, errors) if st & 1 else raw)
        elif st == 0:
            append(None)
        elif st <= 6:
            n = _FIXED_SIZES[st]
            if pos + n > size:
                raise FormatError("record body truncated")
            append(int.from_bytes(buf[pos:pos + n], "big", signed=True))
            pos += n
        elif st == 7:
            append(struct.unpack_from(">d", buf, pos)[0])
            pos += 8
        elif st == 8:
            append(0)
        elif st == 9:
            append(1)
        else:
            raise FormatError(f"reserved serial type {st}")
    return tuple(out)


def decode_record(payload: bytes | memoryview, encoding: str, *, strict: bool = False) -> tuple[Any, ...]:
    """Decode a complete record (header and body) into a tuple of values."""
    sts, body = parse_record_header(payload, 0, len(payload))
    return decode_values(payload, body, sts, encoding, strict=strict)


def serial_type_of(value: Any, encoding: str) -> tuple[int, bytes]:
    """The serial type and body bytes SQLite would write for ``value`` (schema format 4)."""
    if value is None:
        return 0, b""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if value == 0:
            return 8, b""
        if value == 1:
            return 9, b""
        for st, n in ((1, 1), (2, 2), (3, 3), (4, 4), (5, 6), (6, 8)):
            if -(1 << (8 * n - 1)) <= value < (1 << (8 * n - 1)):
                return st, value.to_bytes(n, "big", signed=True)
        raise FormatError("integer out of range")
    if isinstance(value, float):
        return 7, struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode(encoding)
        return 13 + 2 * len(raw), raw
    raw = bytes(value)
    return 12 + 2 * len(raw), raw


def canonical_record(sts: list[int], body: bytes) -> bytes:
    """Header + body exactly as SQLite writes them, so carved and live records compare by bytes."""
    types = b"".join(encode_varint(st) for st in sts)
    hlen = len(types) + 1
    if hlen > 0x7F:  # the header length counts its own varint
        hlen = len(types) + varint_len(len(types) + 2)
    return encode_varint(hlen) + types + body


# --------------------------------------------------------------------------- database header

@dataclass
class Header:
    """The 100-byte database header, with derived facts and problems found in it."""

    magic_ok: bool
    page_size: int
    write_version: int
    read_version: int
    reserved_bytes: int
    max_payload_fraction: int
    min_payload_fraction: int
    leaf_payload_fraction: int
    file_change_counter: int
    page_count: int
    freelist_trunk: int
    freelist_count: int
    schema_cookie: int
    schema_format: int
    default_cache_size: int
    largest_root_page: int
    text_encoding: int
    user_version: int
    incremental_vacuum: int
    application_id: int
    reserved_zero: bool
    version_valid_for: int
    sqlite_version_number: int
    usable_size: int = 0
    encoding: str = "utf-8"
    page_count_trusted: bool = False
    page_count_from_file: int = 0
    journal_mode_hint: str = ""
    auto_vacuum: str = "none"
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_header(data: bytes, file_size: int) -> Header:
    """Parse the header of page 1; never raises for bad values, it lists them in ``problems``.

    A damaged header must not stop the analysis: the page size falls back to 4096 (or the WAL's
    page size, decided by the caller) so the rest of the file can still be read.
    """
    raw = data[:100].ljust(100, b"\x00")
    problems: list[str] = []
    if len(data) < 100:
        problems.append(f"file is only {len(data)} bytes; a database header needs 100")
    magic_ok = raw[:16] == MAGIC
    if not magic_ok:
        problems.append("magic string 'SQLite format 3' missing: not a SQLite database or header damaged")
    (ps, wv, rv, reserved, maxf, minf, leaff, counter, npages, trunk, nfree, cookie, fmt, cache,
     largest_root, enc, user_version, incr, app_id) = struct.unpack_from(">HBBBBBBIIIIIIIIIIII", raw, 16)
    page_size = 65536 if ps == 1 else ps
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        problems.append(f"page size field {ps} is not a power of two between 512 and 65536; assuming 4096")
        page_size = 4096
    if (maxf, minf, leaff) != (64, 32, 32):
        problems.append(f"payload fractions are {maxf}/{minf}/{leaff}, must be 64/32/32")
    if reserved >= page_size - 480:
        problems.append(f"reserved bytes {reserved} leave too little usable space; assuming 0")
        reserved = 0
    version_valid_for, version_number = struct.unpack_from(">II", raw, 92)
    reserved_zero = raw[72:92] == b"\x00" * 20
    if not reserved_zero:
        problems.append("header bytes 72-91 must be zero but are not (tampering or damage)")
    if enc not in TEXT_ENCODINGS:
        if enc != 0 or npages:
            problems.append(f"text encoding field {enc} is invalid; assuming UTF-8")
    from_file = file_size // page_size if page_size else 0
    trusted = npages != 0 and counter == version_valid_for
    if npages and not trusted:
        problems.append(f"in-header page count {npages} is stale (change counter {counter} != "
                        f"version-valid-for {version_valid_for}); using the file size")
    if file_size % page_size:
        problems.append(f"file size {file_size} is not a multiple of the page size {page_size} "
                        "(truncated or appended to)")
    if trusted and npages != from_file:
        problems.append(f"header says {npages} pages but the file holds {from_file}")
    hint = {1: "rollback", 2: "wal"}.get(wv, f"unknown ({wv})")
    auto = "none"
    if largest_root:
        auto = "incremental" if incr else "full"
    return Header(
        magic_ok=magic_ok, page_size=page_size, write_version=wv, read_version=rv,
        reserved_bytes=reserved, max_payload_fraction=maxf, min_payload_fraction=minf,
        leaf_payload_fraction=leaff, file_change_counter=counter, page_count=npages,
        freelist_trunk=trunk, freelist_count=nfree, schema_cookie=cookie, schema_format=fmt,
        default_cache_size=cache, largest_root_page=largest_root, text_encoding=enc,
        user_version=user_version, incremental_vacuum=incr, application_id=app_id,
        reserved_zero=reserved_zero, version_valid_for=version_valid_for,
        sqlite_version_number=version_number, usable_size=page_size - reserved,
        encoding=TEXT_ENCODINGS.get(enc, "utf-8"), page_count_trusted=trusted,
        page_count_from_file=from_file, journal_mode_hint=hint, auto_vacuum=auto, problems=problems)


# --------------------------------------------------------------------------- schemas

@dataclass(frozen=True)
class ColumnSchema:
    """One stored column of a table as its CREATE statement declares it."""

    name: str
    decl_type: str
    affinity: str  # INTEGER, TEXT, BLOB, REAL, NUMERIC
    notnull: bool
    pk: int  # position in the primary key, 0 if not part of it


@dataclass
class TableSchema:
    """A table as the file's own ``sqlite_master`` (or a carved CREATE statement) defines it.

    Attribution of carved records is by this schema alone, so it works on any SQLite file.
    """

    name: str
    sql: str
    root_page: int
    columns: list[ColumnSchema]
    rowid_alias: int | None = None
    without_rowid: bool = False
    strict: bool = False
    dropped: bool = False
    foreign_keys: list[dict[str, str]] = field(default_factory=list)
    parse_note: str = ""

    @property
    def ncols(self) -> int:
        return len(self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def related(self) -> set[str]:
        return {fk["table"] for fk in self.foreign_keys}


SQLITE_MASTER = TableSchema(
    name="sqlite_master", sql="", root_page=1,
    columns=[ColumnSchema("type", "text", "TEXT", True, 0), ColumnSchema("name", "text", "TEXT", True, 0),
             ColumnSchema("tbl_name", "text", "TEXT", True, 0),
             ColumnSchema("rootpage", "integer", "INTEGER", False, 0),
             ColumnSchema("sql", "text", "TEXT", False, 0)])


def affinity_of(decl: str) -> str:
    """SQLite's column affinity rules (datatype3.html §3.1), in their order."""
    d = decl.upper()
    if "INT" in d:
        return "INTEGER"
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return "TEXT"
    if "BLOB" in d or not d.strip():
        return "BLOB"
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return "REAL"
    return "NUMERIC"


_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


def _split_top_level(body: str) -> list[str]:
    """Split a column list on commas outside parentheses and quotes."""
    parts, depth, cur, quote = [], 0, [], ""
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`[":
            quote = "]" if ch == "[" else ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] in "\"'`[" and name[-1] in "\"'`]":
        return name[1:-1]
    return name


_NAME = r'("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|\'[^\']*\'|[^\s(]+)'


def _fallback_schema(name: str, sql: str, root: int) -> TableSchema:
    """A simple CREATE TABLE parser, used when SQLite itself cannot compile the statement."""
    start, end = sql.find("("), sql.rfind(")")
    cols: list[ColumnSchema] = []
    table_pk: list[str] = []
    fks: list[dict[str, str]] = []
    for part in _split_top_level(sql[start + 1:end] if start >= 0 < end else ""):
        m = re.match(_NAME + r"\s*(.*)$", part, re.S)
        if not m:
            continue
        first = _unquote(m.group(1))
        if first.upper() in _CONSTRAINT_WORDS:
            up = part.upper()
            if "PRIMARY KEY" in up:
                inner = part[part.find("(") + 1:part.find(")")]
                table_pk = [_unquote(x.strip().split()[0]) for x in inner.split(",") if x.strip()]
            ref = re.search(r"REFERENCES\s+" + _NAME, part, re.I)
            if ref:
                fks.append({"from": "", "table": _unquote(ref.group(1)), "to": ""})
            continue
        rest = m.group(2)
        words = re.split(r"\s+", rest.strip()) if rest.strip() else []
        type_words: list[str] = []
        for w in words:
            if w.upper() in {"PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE",
                             "REFERENCES", "CONSTRAINT", "GENERATED", "AS"}:
                break
            type_words.append(w)
        decl = " ".join(type_words)
        up = rest.upper()
        ref = re.search(r"REFERENCES\s+" + _NAME, rest, re.I)
        if ref:
            fks.append({"from": first, "table": _unquote(ref.group(1)), "to": ""})
        cols.append(ColumnSchema(first, decl, affinity_of(decl), "NOT NULL" in up,
                                 1 if "PRIMARY KEY" in up else 0))
    if table_pk:
        cols = [ColumnSchema(c.name, c.decl_type, c.affinity, c.notnull,
                             table_pk.index(c.name) + 1 if c.name in table_pk else 0) for c in cols]
    schema = TableSchema(name, sql, root, cols, foreign_keys=fks, parse_note="parsed without SQLite")
    schema.without_rowid = bool(re.search(r"\)\s*WITHOUT\s+ROWID", sql, re.I))
    _set_alias(schema)
    return schema


def _set_alias(schema: TableSchema) -> None:
    pks = [i for i, c in enumerate(schema.columns) if c.pk]
    if len(pks) == 1 and not schema.without_rowid and schema.columns[pks[0]].decl_type.upper() == "INTEGER":
        schema.rowid_alias = pks[0]


_PLAIN_CREATE = re.compile(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _NAME + r"\s*\(", re.I)
_ALLOWED_ACTIONS = {2, 18, 20, 22, 23, 31}  # CREATE_TABLE, INSERT, READ, TRANSACTION, UPDATE, FUNCTION (parsed only)


def _create_only(action: int, arg1: Any, arg2: Any, db_name: Any, source: Any) -> int:
    return 0 if action in _ALLOWED_ACTIONS else 1  # SQLITE_OK / SQLITE_DENY


def parse_create_table(name: str, sql: str, root: int, sqlite_module: Any = None) -> TableSchema:
    """Schema of one table, compiled by an in-memory SQLite (exact rules), else by a fallback parser.

    The in-memory database never touches the evidence; it only lets SQLite's own parser decide the
    column list, declared types, NOT NULL, the primary key and WITHOUT ROWID.
    """
    if sqlite_module is None:
        from ..sqlite import sqlite3 as sqlite_module
    # The statement comes from the evidence, i.e. from anyone: only a plain CREATE TABLE may
    # run, and an authorizer refuses everything it does not need (ATTACH, functions, SELECT).
    if not _PLAIN_CREATE.match(sql) or "\x00" in sql:
        return _fallback_schema(name, sql, root)
    try:
        conn = sqlite_module.connect(":memory:")
    except sqlite_module.Error:
        return _fallback_schema(name, sql, root)
    try:
        try:
            conn.set_authorizer(_create_only)
            try:
                conn.execute(sql)
            finally:
                conn.set_authorizer(None)
            info = conn.execute("SELECT * FROM pragma_table_xinfo(?)", (name,)).fetchall()
            fk_rows = conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)).fetchall()
            try:
                wr_row = conn.execute("SELECT wr, strict FROM pragma_table_list WHERE name = ?",
                                      (name,)).fetchone()
            except sqlite_module.Error:
                wr_row = None
        except (sqlite_module.Error, sqlite_module.Warning, ValueError) as exc:
            schema = _fallback_schema(name, sql, root)
            schema.parse_note = f"parsed without SQLite ({exc})"
            return schema
    finally:
        conn.close()
    if not info:
        return _fallback_schema(name, sql, root)
    cols = [ColumnSchema(r[1], r[2] or "", affinity_of(r[2] or ""), bool(r[3]), int(r[5]))
            for r in info if r[6] != 2]  # hidden=2: a VIRTUAL generated column is not stored
    schema = TableSchema(name, sql, root, cols,
                         foreign_keys=[{"from": r[3], "table": r[2], "to": r[4] or ""} for r in fk_rows])
    if wr_row is not None:
        schema.without_rowid, schema.strict = bool(wr_row[0]), bool(wr_row[1])
    else:
        schema.without_rowid = bool(re.search(r"\)\s*WITHOUT\s+ROWID", sql, re.I))
    _set_alias(schema)
    return schema


def local_payload_size(payload: int, usable: int, table_leaf: bool) -> int:
    """Bytes of a payload kept on the b-tree page itself (the rest spills to overflow pages)."""
    x = usable - 35 if table_leaf else ((usable - 12) * 64 // 255) - 23
    if payload <= x:
        return payload
    m = ((usable - 12) * 32 // 255) - 23
    k = m + (payload - m) % (usable - 4)
    return k if k <= x else m
