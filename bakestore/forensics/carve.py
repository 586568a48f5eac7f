"""Carving deleted records out of page images, attributed to tables by their schema.

Where records survive (sqlite-facts E5): whole cells on freed pages and in older page images (WAL
frames, journal pre-images, main-file pages superseded by the WAL); records in freeblocks whose
first 4 bytes were overwritten with the freeblock header; whole or headless cells in the
unallocated gap. A candidate must match a table's stored-column count and per-column serial types
(affinity, NOT NULL, the rowid alias stored as NULL) and decode to plausible values; its canonical
bytes are then compared with every live record, so a live row (or a copy of one left behind by
rebalancing) is never reported as deleted.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

from .btree import (BTREE_TYPES, INTERIOR_TABLE, LEAF_TABLE, PageHeader, PageView, freeblocks, parse_page_header,
                    read_overflow, read_table_leaf_cell)
from .fileformat import (PARSE_ERRORS, TableSchema, body_size, canonical_record, decode_values,
                         local_payload_size, read_varint, varint_len)

SOURCES = ("freelist", "freeblock", "unallocated", "wal", "journal", "superseded")
_MIN_CONFIDENCE = 0.5
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


@dataclass(slots=True)
class Recovered:
    """One recovered record, with everything the report and case.db show about it."""

    table: str
    source: str
    page: int
    offset: int
    rowid: int | None
    values: list[Any]
    confidence: float
    region: str  # cell | freeblock | gap | page_scan
    frame: int | None = None  # WAL frame index or journal record number
    detail: str = ""  # e.g. "stale WAL frame", "overflow chain broken"
    candidates: list[str] = field(default_factory=list)
    also_found_in: list[dict[str, Any]] = field(default_factory=list)
    rowid_live: bool = False  # the rowid exists now with other values: an older version of that row
    partial: bool = False  # the overflow chain was lost: the last values are cut short
    key: int = 0
    #: The JSON text of ``values`` (jsontext.values_json), filled while carving so that the
    #: writers of report.json and case.db need not encode it again; None: not computed. Code that
    #: changes ``values`` afterwards must reset it to None.
    values_json: str | None = field(default=None, compare=False, repr=False)

    def where(self) -> dict[str, Any]:
        return {"source": self.source, "page": self.page, "offset": self.offset, "region": self.region,
                "frame": self.frame, "confidence": self.confidence}

    def to_dict(self, columns: list[str] | None = None) -> dict[str, Any]:
        return {"table": self.table, "source": self.source, "page": self.page, "offset": self.offset,
                "rowid": self.rowid, "values": list(self.values), "columns": columns,
                "confidence": round(self.confidence, 3), "region": self.region, "frame": self.frame,
                "detail": self.detail, "candidates": self.candidates, "rowid_live": self.rowid_live,
                "partial": self.partial, "also_found_in": self.also_found_in}


TRUNCATED = "record cut short (overflow chain lost or tail overwritten): partial values"


def decode_partial(body: bytes, sts: list[int], encoding: str) -> tuple[Any, ...] | None:
    """Decode what a truncated body holds: whole columns, then a cut text/blob, then NULLs."""
    out: list[Any] = []
    pos = 0
    cut = False
    for st in sts:
        if cut:
            out.append(None)
            continue
        try:
            n = (st - 12) >> 1 if st >= 12 else (0, 1, 2, 3, 4, 6, 8, 8, 0, 0)[st]
        except IndexError:
            return None
        if pos + n <= len(body):
            try:
                out.extend(decode_values(body, pos, [st], encoding, strict=True))
            except PARSE_ERRORS:
                return None
            pos += n
            continue
        cut = True
        piece = body[pos:]
        if st >= 13 and st & 1:
            out.append(piece.decode(encoding, "ignore"))
        elif st >= 12:
            out.append(bytes(piece))
        else:
            out.append(None)
    return tuple(out)


def _informative(values: tuple[Any, ...], sts: list[int]) -> int:
    """Values that carry information (not NULL, not an empty string, not the constants 0/1)."""
    return sum(1 for v, st in zip(values, sts) if v is not None and v != "" and st not in (8, 9))


# --------------------------------------------------------------------------- serial-type classes

def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(re.escape(bytes((v,))) for v in sorted(set(values))) + b"]"


_ODD = _byte_class(range(1, 128, 2))
_HI = b"[\\x81-\\xff]"
_ANYLO = b"[\\x00-\\x7f]"
_ANYHI = b"[\\x80-\\xff]"
_TEXT = b"(?:" + _byte_class(range(13, 128, 2)) + b"|" + _HI + _ODD + b"|" + _HI + _ANYHI + _ODD + b")"
_BLOB = b"(?:" + _byte_class(range(12, 128, 2)) + b"|" + _HI + _byte_class(range(0, 128, 2)) + b")"
_ANY = b"(?:" + _byte_class([*range(0, 10), *range(12, 128)]) + b"|" + _HI + _ANYLO + b"|" + _HI + _ANYHI + _ANYLO + b")"


def _prefix_tree(sequences: Iterable[Sequence[bytes]]) -> bytes:
    """One regex matching the start of any of ``sequences`` (each a list of sub-patterns).

    Sequences that start alike share their first sub-patterns: ``[a, b, c]`` and ``[a, b, d]``
    become ``a b (?:c|d)``. A sequence that is the start of another already decides a match, so
    the longer one is cut there.
    """
    root: dict[bytes | None, Any] = {}
    for seq in sequences:
        node = root
        for part in seq:
            if None in node:
                break  # a shorter sequence ends here: anything after it matches anyway
            node = node.setdefault(part, {})
        else:
            node.clear()
            node[None] = True

    def emit(node: dict[bytes | None, Any]) -> bytes:
        if None in node:
            return b""
        alternatives = [part + emit(child) for part, child in node.items()]  # type: ignore[operator]
        return alternatives[0] if len(alternatives) == 1 else b"(?:" + b"|".join(alternatives) + b")"

    return emit(root)


#: Tables are grouped by column count for the scan regex: a group starts at each of these counts.
_SCAN_GROUPS = (3, 5, 7, 10, 14, 20, 28, 40)


def _header_scan_pattern(matchers: Sequence["TableMatcher"]) -> bytes:
    """A regex whose matches include every offset where one of ``matchers``' record headers may start.

    A table's own pattern is a header-length byte in its range (``first_bytes``, which depends on
    its column count) followed by serial types that fit its columns (``parts``). One alternative
    per table made every offset try every table (most of carving's time on a database of many
    tables). Here tables of similar column counts form a group: one alternative per group checks
    the byte against the group's ranges together, then the group's column patterns merged into a
    prefix tree (most tables start alike, e.g. id, created_at, updated_at), so an offset tries the
    shared start once. The matches are a few more offsets than the per-table patterns give
    (a byte in another table's range of the group); _record_at reads the header at each match
    and keeps only those where some table's whole header fits, i.e. exactly the per-table ones.
    The match is the one header byte, so the next search starts at the next offset.
    """
    groups: dict[int, list[TableMatcher]] = {}
    for m in matchers:
        groups.setdefault(bisect.bisect_right(_SCAN_GROUPS, m.n), []).append(m)
    alternatives = [b"(?<=%s)(?=%s)" % (_byte_class(b for m in group for b in m.first_bytes),
                                        _prefix_tree([m.parts for m in group]))
                    for _, group in sorted(groups.items())]
    firsts = _byte_class(b for m in matchers for b in m.first_bytes)
    return firsts + b"(?:" + b"|".join(alternatives) + b")" if alternatives else b"(?!)"


class TableMatcher:
    """Decides whether a list of serial types can be a record of one table."""

    def __init__(self, schema: TableSchema, templates: dict[int, int] | None = None) -> None:
        self.schema = schema
        self.name = schema.name
        self.n = schema.ncols
        self.templates = templates or {}
        self.kinds: list[str] = []
        for i, col in enumerate(schema.columns):
            if i == schema.rowid_alias:
                kind = "alias"
            elif schema.strict and col.decl_type.upper() in ("INTEGER", "INT"):
                kind = "int"
            elif schema.strict and col.decl_type.upper() == "TEXT":
                kind = "text"
            elif col.affinity in ("INTEGER", "REAL"):
                kind = "num"
            elif col.affinity == "TEXT":
                kind = "text"
            else:
                kind = "any"
            self.kinds.append(kind + ("!" if col.notnull and kind != "alias" else ""))
        if schema.name == "sqlite_sequence" and self.n == 2:
            self.kinds = ["text!", "num!"]  # declared without types, but always (name, integer)
        # A table whose columns carry no type constraint would match almost any bytes; it is
        # recovered only from whole cells (size + rowid + record all consistent), never by scanning.
        self.weak = all(k.rstrip("!") == "any" for k in self.kinds if k != "alias")
        parts = []
        for kind in self.kinds:
            base = kind.rstrip("!")
            nn = kind.endswith("!")
            if base == "alias":
                parts.append(b"\\x00")
            elif base in ("num", "int"):
                parts.append(b"[\\x01-\\x09]" if nn else b"[\\x00-\\x09]")
            elif base == "text":
                parts.append(_TEXT if nn else b"(?:\\x00|" + _TEXT + b")")
            else:
                parts.append(_ANY)
        lo, hi = self.n + 1, min(0x7F, 3 * self.n + 1)
        #: The header-length byte a record of this table can start with, and the serial types after it.
        self.first_bytes = range(lo, hi + 1)
        #: One pattern per column: what its serial type may look like in the header.
        self.parts = tuple(parts)
        self.rest_pattern = b"".join(parts)
        self.header_pattern = _byte_class(self.first_bytes) + self.rest_pattern if lo <= 0x7F else None

    def check(self, sts: list[int], first: int = 0) -> bool:
        """True if ``sts`` fit columns ``first..n-1`` of this table."""
        if len(sts) != self.n - first:
            return False
        kinds = self.kinds
        for i, st in enumerate(sts, first):
            if st == 10 or st == 11 or st < 0:
                return False
            kind = kinds[i]
            if kind == "alias":
                if st != 0:
                    return False
                continue
            if kind[-1] == "!":
                if st == 0:
                    return False
                kind = kind[:-1]
            if kind == "num" or kind == "int":
                if st > 9:
                    return False
            elif kind == "text":
                if st != 0 and (st < 13 or not st & 1):
                    return False
        return True

    def column_accepts(self, i: int, st: int) -> bool:
        """Whether column ``i`` accepts serial type ``st`` (the per-column rule of :meth:`check`)."""
        if st == 10 or st == 11 or st < 0:
            return False
        kind = self.kinds[i]
        if kind == "alias":
            return st == 0
        if kind[-1] == "!":
            if st == 0:
                return False
            kind = kind[:-1]
        if kind == "num" or kind == "int":
            return st <= 9
        if kind == "text":
            return st == 0 or (st >= 13 and bool(st & 1))
        return True

    def infer_lost(self, k: int) -> list[int] | None:
        """Serial types of the first ``k`` columns when the freeblock header destroyed them.

        The rowid alias is always NULL; another column is taken from live rows only when nearly
        all of them share one serial type (e.g. a 36-character UUID), otherwise we do not guess.
        """
        out = []
        for i in range(k):
            if self.kinds[i] == "alias":
                out.append(0)
            elif i in self.templates:
                out.append(self.templates[i])
            else:
                return None
        return out


def serial_templates(schema: TableSchema, payloads: Iterable[bytes], limit: int = 2000) -> dict[int, int]:
    """Per leading column, the serial type shared by >= 95% of live rows (for headless carving)."""
    counters: list[Counter[int]] = [Counter() for _ in range(min(3, schema.ncols))]
    seen = 0
    for payload in payloads:
        if seen >= limit:
            break
        try:
            hlen, p = read_varint(payload, 0)
            for c in counters:
                st, p = read_varint(payload, p)
                c[st] += 1
        except PARSE_ERRORS:
            continue
        seen += 1
    out: dict[int, int] = {}
    for i, c in enumerate(counters):
        if c and seen >= 5:
            st, n = c.most_common(1)[0]
            if n >= 0.95 * seen and st != 0:
                out[i] = st
    return out


# --------------------------------------------------------------------------- the carver

@dataclass
class _Hit:
    sts: list[int]
    body: bytes
    values: tuple[Any, ...]
    tables: list[str]
    start: int  # offset of the record (cell start if known)
    end: int  # end of the local part (including an overflow pointer)
    rowid: int | None
    confidence: float
    region: str
    detail: str = ""
    key: int | None = None  # hash of the record bytes when the header is the original one



def _serial_types(buf: Any, q: int, end: int) -> list[int] | None:
    """The serial types of a record header whose varints run from ``q`` to ``end``, or None when
    they do not end exactly there (raises PARSE_ERRORS on bytes running out)."""
    sts: list[int] = []
    while q < end:
        b = buf[q]
        if b < 0x80:  # a one-byte varint, read in place
            sts.append(b)
            q += 1
        else:
            st, q = read_varint(buf, q)
            sts.append(st)
    return sts if q == end else None


def _cell_header(payload: Any) -> tuple[int, list[int]] | None:
    """A cell payload's record header: its length and serial types (see :func:`_serial_types`)."""
    hlen, q = read_varint(payload, 0)
    sts = _serial_types(payload, q, hlen)
    return None if sts is None else (hlen, sts)


class Carver:
    """Carves page images. One instance per analysis: it holds the matchers and the live keys."""

    def __init__(self, schemas: list[TableSchema], *, encoding: str, usable: int,
                 live_keys: set[int], live_rowids: dict[str, dict[int, int]],
                 templates: dict[str, dict[int, int]] | None = None,
                 overflow_view: PageView | None = None) -> None:
        self.encoding = encoding
        self.usable = usable
        self.live_keys = live_keys
        self.live_rowids = live_rowids
        self.overflow_view = overflow_view
        templates = templates or {}
        self.matchers = [TableMatcher(s, templates.get(s.name)) for s in schemas
                         if s.ncols and not s.without_rowid]
        self.by_n: dict[int, list[TableMatcher]] = {}  # matchers allowed for carving (not weak)
        self.all_by_n: dict[int, list[TableMatcher]] = {}  # every matcher, for whole cells
        for m in self.matchers:
            self.all_by_n.setdefault(m.n, []).append(m)
            if not m.weak:
                self.by_n.setdefault(m.n, []).append(m)
        # Offsets where some table's record header may start: a header-length byte in that
        # table's range, then serial types that fit its columns. See _header_scan_pattern.
        scannable = [m for m in self.matchers if m.header_pattern is not None and not m.weak]
        self.scan_re = re.compile(_header_scan_pattern(scannable), re.S) if scannable else None
        self.max_n = max((m.n for m in self.matchers), default=0)
        #: Position of the rowid alias per table (the first matcher of that name, as attribution uses).
        self.alias_of: dict[str, int | None] = {}
        for m in self.matchers:
            self.alias_of.setdefault(m.name, m.schema.rowid_alias)
        self._restricted: dict[str, dict[int, list[TableMatcher]]] = {}
        self._match_cache: dict[tuple[int, tuple[int, ...]], tuple[dict[int, list[TableMatcher]],
                                                                   list[TableMatcher]]] = {}
        self._first_cache: dict[int, tuple[dict[int, list[TableMatcher]], frozenset[int]]] = {}

    # ---------------------------------------------------------------- record validation

    def _decode(self, buf: bytes, body_pos: int, sts: list[int], local_end: int,
                payload_len: int, hlen: int) -> tuple[bytes, tuple[Any, ...], int, str] | None:
        """Body bytes and values of a record whose header is known; None if it does not fit."""
        body_len = payload_len - hlen
        local = local_payload_size(payload_len, self.usable, True)
        if local == payload_len:
            end = body_pos + body_len
            if end > local_end:
                return self._cut(buf, body_pos, sts, local_end)
            body = buf[body_pos:end]
            try:
                values = decode_values(body, 0, sts, self.encoding, strict=True)
            except PARSE_ERRORS:
                return None
            if not self._plausible(values, sts):
                return None
            return body, values, end, ""
        local_body = local - hlen
        end = body_pos + local_body + 4
        if local_body < 0:
            return None
        if end > local_end:
            return self._cut(buf, body_pos, sts, local_end)
        ovf = struct.unpack_from(">I", buf, body_pos + local_body)[0]
        got = self._with_overflow(buf[body_pos:body_pos + local_body], ovf, body_len, sts)
        if got is None:
            return None
        return got[0], got[1], end, got[2]

    def _cut(self, buf: bytes, body_pos: int, sts: list[int], region_end: int
             ) -> tuple[bytes, tuple[Any, ...], int, str] | None:
        """A record whose tail was overwritten (by a newer cell or the page's own header data).

        Kept only when a useful stretch of the body survives, decoded up to where it is cut.
        """
        if region_end - body_pos < 32:
            return None
        body = buf[body_pos:region_end]
        values = decode_partial(body, sts, self.encoding)
        if values is None or not self._plausible(values, sts):
            return None
        return body, values, region_end, TRUNCATED

    def _with_overflow(self, local_body: bytes, ovf: int, body_len: int, sts: list[int]
                       ) -> tuple[bytes, tuple[Any, ...], str] | None:
        """Complete a spilled record from its overflow chain, or keep what the page itself holds.

        Freed overflow pages get reused, so a chain may end early or lead into another table's
        data; then only the local part is trusted and the record is reported as truncated.
        """
        if self.overflow_view is not None:
            rest, err = read_overflow(self.overflow_view, ovf, body_len - len(local_body), self.usable)
            if not err:
                body = local_body + rest
                try:
                    values = decode_values(body, 0, sts, self.encoding, strict=True)
                except PARSE_ERRORS:
                    values = None
                if values is not None and self._plausible(values, sts):
                    return body, values, "overflow chain followed"
        partial = decode_partial(local_body, sts, self.encoding)
        if partial is None or not self._plausible(partial, sts):
            return None
        return local_body, partial, TRUNCATED

    @staticmethod
    def _plausible(values: tuple[Any, ...], sts: list[int]) -> bool:
        informative = 0
        texts = []
        for v, st in zip(values, sts):
            if isinstance(v, str):
                if v:
                    informative += 1
                    texts.append(v)
            elif v is not None and st not in (8, 9):
                informative += 1
        # One search over every text ("\n" is not in the class): False if any holds a control char.
        if texts and _CONTROL.search("\n".join(texts) if len(texts) > 1 else texts[0]):
            return False
        return informative >= 1

    def _matching(self, sts: list[int], by_n: dict[int, list[TableMatcher]] | None = None) -> list[TableMatcher]:
        table = by_n or self.by_n
        # TableMatcher.check depends only on each serial type's class (NULL, 1..11 each, blob,
        # text), so the answer is cached per class sequence (a few per table, not per record).
        key = (id(table), tuple([st if st < 12 else 12 | (st & 1) for st in sts]))
        got = self._match_cache.get(key)
        if got is None or got[0] is not table:
            got = self._match_cache[key] = (table, [m for m in table.get(len(sts), ()) if m.check(sts)])
        return got[1]

    def _first_classes(self, table: dict[int, list[TableMatcher]]) -> set[int] | frozenset[int]:
        """Serial-type classes (as in _matching) some matcher of ``table`` accepts in column 0."""
        got = self._first_cache.get(id(table))
        if got is None or got[0] is not table:
            classes = {c for c in range(14) for ms in table.values() for m in ms
                       if m.n and m.column_accepts(0, c)}
            got = self._first_cache[id(table)] = (table, frozenset(classes))
        return got[1]

    def restricted(self, only: str | None) -> dict[int, list[TableMatcher]]:
        """Matchers of one table (a freeblock only ever held cells of the page's own b-tree)."""
        if only is None:
            return self.by_n
        got = self._restricted.get(only)
        if got is None:
            got = {m.n: [m] for m in self.matchers if m.name == only and not m.weak}
            self._restricted[only] = got
        return got or self.by_n

    def _record_at(self, buf: bytes, p: int, limit: int,
                   by_n: dict[int, list[TableMatcher]] | None = None) -> _Hit | None:
        """A record with an intact header at ``p`` (rowid unknown)."""
        try:
            hlen, q = read_varint(buf, p)
            if hlen < 2 or p + hlen > limit or hlen > 9 * self.max_n + 2:
                return None
            # A first serial type that no table here accepts as its first column: the header
            # cannot match, whatever follows (most misaligned tries in a freeblock end here).
            b = buf[q]
            if b < 0x80 and (b if b < 12 else 12 | (b & 1)) not in self._first_classes(by_n or self.by_n):
                return None
            end_h = p + hlen
            found = _serial_types(buf, q, end_h)
            if found is None:
                return None
            sts = found
        except PARSE_ERRORS:
            return None
        matchers = self._matching(sts, by_n)
        if not matchers:
            return None
        try:
            payload_len = hlen + body_size(sts)
        except PARSE_ERRORS:
            return None
        got = self._decode(buf, end_h, sts, limit, payload_len, hlen)
        if got is None:
            return None
        body, values, end, detail = got
        key = hash(buf[p:end_h] + body) if hlen < 0x80 else None
        return _Hit(sts, body, values, [m.name for m in matchers], p, end, None, 0.85, "record", detail, key)

    def _cell_before(self, buf: bytes, hit: _Hit, lo: int) -> _Hit:
        """Upgrade a record hit to a full cell when a payload size and rowid precede it consistently."""
        payload_len = len(canonical_record(hit.sts, b"")) + len(hit.body)
        for c in range(hit.start - 2, max(lo, hit.start - 18) - 1, -1):
            try:
                psize, r = read_varint(buf, c)
                if psize != payload_len:
                    continue
                rowid, r = read_varint(buf, r)
            except PARSE_ERRORS:
                continue
            if r == hit.start and rowid > 0:
                hit.start, hit.rowid, hit.confidence, hit.region = c, rowid, 0.95, "cell"
                return hit
        return hit

    def _headless_at(self, buf: bytes, s: int, limit: int, by_n: dict[int, list[TableMatcher]],
                     size_inference: bool = True) -> _Hit | None:
        """A record whose first 4 bytes (cell size, rowid, maybe header length) were overwritten."""
        options: list[_Hit] = []
        # Case A: payload-size + rowid varints took >= 4 bytes, header intact somewhere after s+4.
        for p in range(s + 4, min(s + 13, limit)):
            hit = self._record_at(buf, p, limit, by_n)
            if hit is not None:
                hit.confidence = 0.8
                hit.region = "freeblock"
                if hit.end == limit:
                    # Nothing case B finds can rank higher (its confidence is at most 0.75).
                    return hit
                options.append(hit)
                break
        # Case B: the header-length byte (and maybe the first serial type) were overwritten.
        found: dict[tuple[tuple[int, ...], bytes], _Hit] = {}
        for k, q in ((0, s + 4), (1, s + 4), (1, s + 5)):
            for n, matchers in by_n.items():
                if n <= k:
                    continue
                try:
                    sts_known: list[int] = []
                    r = q
                    for _ in range(n - k):
                        st, r = read_varint(buf, r)
                        sts_known.append(st)
                except PARSE_ERRORS:
                    continue
                if r > limit:
                    continue
                for m in matchers:
                    if not m.check(sts_known, k):
                        continue
                    lost = m.infer_lost(k)
                    if lost is None:
                        lost = (self._lost_from_size(buf, m, s, q, r, limit, sts_known)
                                if k == 1 and size_inference and m.n >= 3 else None)
                        if lost is None:
                            continue
                    sts = lost + sts_known
                    hlen = len(canonical_record(sts, b""))
                    # The destroyed header must have started 2 or 3 bytes into the cell (after the
                    # cell-size and rowid varints), or this is not how a freed cell looks.
                    if not s + 2 <= r - hlen <= s + 4:
                        continue
                    try:
                        payload_len = hlen + body_size(sts)
                    except PARSE_ERRORS:
                        continue
                    got = self._decode(buf, r, sts, limit, payload_len, hlen)
                    if got is None:
                        continue
                    body, values, end, detail = got
                    key = (tuple(sts), body)
                    if key in found:
                        if m.name not in found[key].tables:
                            found[key].tables.append(m.name)
                        continue
                    conf = 0.75 if all(m.kinds[i] == "alias" for i in range(k)) else 0.7
                    found[key] = _Hit(sts, body, values, [m.name], s, end, None, conf, "freeblock",
                                      detail or "record header rebuilt from the schema")
        options.extend(found.values())
        if not options:
            return None
        # A freed cell fills its freeblock exactly unless a neighbour merged in: prefer the reading
        # that ends at the freeblock end, then the one with the better-verified header.
        return max(options, key=lambda h: (h.end == limit, h.confidence, h.end))

    def _lost_from_size(self, buf: bytes, m: TableMatcher, s: int, q: int, r: int, limit: int,
                        sts_known: list[int]) -> list[int] | None:
        """The first column's serial type, derived from the freeblock size (one cell filling it).

        The header-length byte sat at s+2 (1-byte cell size and rowid), the lost serial type at
        s+3 (one byte, or two with the second surviving at s+4). If the freed cell is the whole
        freeblock, its payload is ``limit - s - 2`` bytes, which leaves one possible size for the
        first column. Used only when live rows give no template for that column.
        """
        st_len = q - s - 3
        if st_len not in (1, 2):
            return None
        try:
            known_body = body_size(sts_known)
        except PARSE_ERRORS:
            return None
        hlen = 1 + st_len + (r - q)
        body0 = (limit - s - 2) - hlen - known_body
        if body0 < 0:
            return None
        kind = m.kinds[0].rstrip("!")
        if kind == "text":
            options = [13 + 2 * body0]
        elif kind in ("num", "int"):
            options = {0: [0, 8, 9], 1: [1], 2: [2], 3: [3], 4: [4], 6: [5], 8: [6, 7]}.get(body0, [])
        else:
            options = [13 + 2 * body0, 12 + 2 * body0]
        for st in options:
            if m.kinds[0].endswith("!") and st == 0:
                continue
            if varint_len(st) != st_len or (st_len == 2 and buf[s + 4] != st & 0x7F):
                continue
            return [st]
        return None

    # ---------------------------------------------------------------- regions

    def scan(self, buf: bytes, start: int, end: int, region: str,
             by_n: dict[int, list[TableMatcher]] | None = None) -> list[_Hit]:
        """Find records with intact headers anywhere in ``buf[start:end]`` (gap, unknown pages)."""
        if self.scan_re is None or end - start < 3:
            return []
        if buf.count(0, start, end) == end - start:
            return []
        hits: list[_Hit] = []
        covered = start
        for m in self.scan_re.finditer(buf, start, end):
            p = m.start()
            if p < covered:
                continue
            hit = self._record_at(buf, p, end, by_n)
            if hit is None:
                continue
            hit.region = region
            hit = self._cell_before(buf, hit, max(start, covered))
            if hit.rowid is None and by_n is None and _informative(hit.values, hit.sts) < 2:
                continue  # too little structure to tell a record from chance outside a freeblock
            if hit.region == "cell":
                hit.region = region
                hit.detail = (hit.detail + "; " if hit.detail else "") + "whole cell"
            hits.append(hit)
            covered = hit.end
        return hits

    def carve_freeblock(self, buf: bytes, off: int, size: int, only: str | None = None,
                        size_inference: bool = True) -> list[_Hit]:
        """Records in one freeblock (adjacent freed cells merge, so there may be several)."""
        end = off + size
        by_n = self.restricted(only)
        hits: list[_Hit] = []
        pos = off
        while pos + 6 < end:
            hit = None
            for slack in (0, 1, 2, 3):
                hit = self._headless_at(buf, pos + slack, end, by_n, size_inference and pos == off)
                if hit is not None:
                    break
            if hit is None:
                break
            hits.append(hit)
            pos = hit.end
        if pos + 6 < end:
            hits.extend(self.scan(buf, pos, end, "freeblock", by_n))
        return hits

    def carve_image(self, image: bytes, pgno: int, *, cells: bool, whole_page_from: int | None = None,
                    owner: str | None = None) -> tuple[list[_Hit], dict[str, Any]]:
        """Carve one page image.

        ``cells``: also return the cells the page itself still lists (true for older images and
        freed pages; false for the current version of a live page, whose cells are live rows).
        ``whole_page_from``: scan the page from this offset when it is not a readable table leaf
        (freelist trunk remainder, overflow or damaged pages).
        ``owner``: the table whose b-tree holds this page now, if known. Freeblocks are carved
        only as records of the page's table (taken from its own cells, else ``owner``): cells
        never move between b-trees, and this removes the ambiguity between similar tables.
        Returns the hits and page facts (free bytes, whether free space is zeroed, errors).
        """
        facts: dict[str, Any] = {"free_bytes": 0, "freeblocks": 0, "zeroed": None, "error": None}
        hits: list[_Hit] = []
        usable = self.usable
        try:
            header = parse_page_header(image, pgno, usable)
        except PARSE_ERRORS as exc:
            if whole_page_from is not None:
                hits.extend(self.scan(image, whole_page_from, usable, "page_scan"))
            else:
                facts["error"] = str(exc)
            return hits, facts
        if header.kind != LEAF_TABLE:
            # Interior and index pages hold no table records, but a page may have been a table
            # leaf in an earlier life: its old cells survive in the gap. Index records look like
            # headers too, so on index pages only whole table cells (size, rowid, record) count.
            facts["kind"] = BTREE_TYPES[header.kind]
            self._free_facts(image, header, facts)
            gap_start, gap_end = header.ptr_end, min(header.content_start, usable)
            if gap_end > gap_start:
                found = self.scan(image, gap_start, gap_end, "gap")
                if header.kind != INTERIOR_TABLE:
                    found = [h for h in found if h.rowid is not None]
                hits.extend(found)
            return hits, facts
        if cells:
            max_local = usable - 35
            for off in header.pointers:
                try:
                    # The common cell (payload on the page) read inline, with the checks of
                    # read_table_leaf_cell; anything else goes through it.
                    b = image[off]
                    if b < 0x80:
                        psize, q = b, off + 1
                    elif image[off + 1] < 0x80:
                        psize, q = (b & 0x7F) << 7 | image[off + 1], off + 2
                    else:
                        psize, q = read_varint(image, off)
                    rowid, q = read_varint(image, q)
                    if 0 <= psize <= max_local and q + psize <= usable:
                        hit = self._from_local(image[q:q + psize], rowid, off, q + psize)
                    else:
                        hit = self._from_cell(image, read_table_leaf_cell(image, off, usable))
                except PARSE_ERRORS:
                    continue
                if hit is not None:
                    hits.append(hit)
        votes = _votes(hits)
        page_table = max(votes, key=votes.__getitem__) if votes else owner  # the first of equals wins
        blocks = self._free_facts(image, header, facts)
        for off, size in blocks:
            hits.extend(self.carve_freeblock(image, off, size, page_table))
        gap_start = header.ptr_end
        gap_end = min(header.content_start, usable)
        if gap_end > gap_start:
            found = self.scan(image, gap_start, gap_end, "gap")
            taken = [(h.start, h.end) for h in found]
            for h in self._absorbed_chain(image, gap_start, gap_end, page_table):
                if not any(a <= h.start < b for a, b in taken):
                    found.append(h)
            hits.extend(found)
        return hits, facts

    def _absorbed_chain(self, buf: bytes, gap_start: int, gap_end: int, only: str | None) -> list[_Hit]:
        """Freed cells folded into the gap, walked down from the content start.

        A cell freed at the start of the content area keeps a stale freeblock header and the
        content start moves to its end, so the most recent such block ends exactly at the
        content start and earlier ones sit contiguously below it. Each step needs a 2-byte
        size field that reaches the block above (without passing the content start) and
        records that tile the space exactly.
        """
        hits: list[_Hit] = []
        end = gap_end
        if buf.count(0, max(gap_start, end - 8), end) == min(8, end - gap_start):
            return hits
        while end - gap_start >= 6:
            lo = max(gap_start, end - min(self.usable // 2, 2048))
            found: list[_Hit] = []
            for s in _size_candidates(buf, lo, end, gap_end):
                # The stale size reaches at least to the block above (it may include it: a freed
                # cell merges with the free block after it) but never past the content start.
                size = buf[s + 2] << 8 | buf[s + 3]
                if size < end - s or s + size > gap_end:
                    continue
                cand = self.carve_freeblock(buf, s, end - s, only, size_inference=False)
                if (cand and cand[-1].end == end and all(h.region == "freeblock" and TRUNCATED not in h.detail
                                                          for h in cand)
                        and all(a.end == b.start for a, b in zip(cand, cand[1:]))):
                    found = cand
                    break
            if not found:
                break
            for h in found:
                h.region = "gap"
                h.detail = (h.detail + "; " if h.detail else "") + "freed cell absorbed into the gap"
            hits.extend(found)
            end = found[0].start
        return hits

    def _free_facts(self, image: bytes, header: PageHeader, facts: dict[str, Any]) -> list[tuple[int, int]]:
        try:
            blocks = freeblocks(image, header, self.usable)
        except PARSE_ERRORS as exc:
            facts["error"] = str(exc)
            blocks = []
        gap = max(0, min(header.content_start, self.usable) - header.ptr_end)
        facts["free_bytes"] = gap + sum(s for _, s in blocks) + header.fragmented
        facts["freeblocks"] = len(blocks)
        facts["freeblock_bytes"] = sum(s for _, s in blocks)
        if blocks:
            facts["zeroed"] = all(image.count(0, o + 4, o + s) == s - 4 for o, s in blocks)
        return blocks

    def _from_local(self, payload: bytes, rowid: int, offset: int, end: int) -> _Hit | None:
        """:meth:`_from_cell` for a cell whose whole payload is on the page."""
        try:
            header = _cell_header(payload)
            if header is None:
                return None
            hlen, sts = header
            matchers = self._matching(sts, self.all_by_n)
            if not matchers:
                return None
            values = decode_values(payload, hlen, sts, self.encoding, strict=True)
        except PARSE_ERRORS:
            return None
        if not self._plausible(values, sts):
            return None
        # The cell's own header is the one SQLite wrote, so its bytes are the canonical record.
        return _Hit(sts, payload[hlen:], values, [m.name for m in matchers], offset, end, rowid, 0.97, "cell", "",
                    hash(payload))

    def _from_cell(self, image: bytes, cell: Any) -> _Hit | None:
        payload = cell.local
        try:
            header = _cell_header(payload)
            if header is None:
                return None
            hlen, sts = header
            matchers = self._matching(sts, self.all_by_n)
            if not matchers:
                return None
            if cell.overflow:
                got = self._with_overflow(bytes(payload[hlen:]), cell.overflow, cell.payload_size - hlen, sts)
                if got is None:
                    return None
                body, values, detail = got
            else:
                body, detail = bytes(payload[hlen:]), ""
                values = decode_values(payload, hlen, sts, self.encoding, strict=True)
        except PARSE_ERRORS:
            return None
        if not self._plausible(values, sts):
            return None
        conf = 0.97 if detail != TRUNCATED else 0.8
        # The cell's own header is the one SQLite wrote, so its bytes are the canonical record.
        key = hash(payload) if not cell.overflow else hash(bytes(payload[:hlen]) + body)
        return _Hit(sts, body, values, [m.name for m in matchers], cell.offset, cell.end,
                    cell.rowid, conf, "cell", detail, key)

    # ---------------------------------------------------------------- to recovered items

    def resolve(self, hits: list[_Hit], *, source: str, page: int, frame: int | None = None,
                owner: str | None = None, penalty: float = 0.0, detail: str = "") -> list[Recovered]:
        """Attribute hits to one table each and drop every record that is live anywhere."""
        votes = _votes(hits)
        out: list[Recovered] = []
        for h in hits:
            key = h.key if h.key is not None else hash(canonical_record(h.sts, h.body))
            if key in self.live_keys:
                continue
            tables = h.tables
            conf = h.confidence - penalty - (0.15 if TRUNCATED in h.detail else 0.0)
            if len(tables) > 1:
                ranked = sorted(tables, key=lambda t: (t != owner, -votes.get(t, 0), t))
                if ranked[0] == owner or votes.get(ranked[0], 0) > votes.get(ranked[1], 0):
                    conf -= 0.05
                else:
                    conf -= 0.15
                table = ranked[0]
            else:
                table = tables[0]
            if conf < _MIN_CONFIDENCE:
                continue
            alias = self.alias_of[table]
            values = list(h.values)
            rowid = h.rowid
            if alias is not None and rowid is not None:
                values[alias] = rowid
            rowid_live = rowid is not None and rowid in self.live_rowids.get(table, {})
            note = (detail + "; " + h.detail if h.detail else detail) if detail else h.detail
            out.append(Recovered(table, source, page, h.start, rowid, values, round(min(conf, 0.99), 3),
                                 h.region, frame, note, [t for t in tables if t != table] if len(tables) > 1 else [],
                                 [], rowid_live, TRUNCATED in h.detail, key))
        return out


_NONZERO_AFTER_ZERO = re.compile(b"\\x00[\\x01-\\xff]")
_HIGH_BYTE: dict[int, re.Pattern[bytes]] = {}


def _size_candidates(buf: bytes, lo: int, end: int, gap_end: int) -> list[int]:
    """Offsets ``s`` in ``end-6 .. lo`` (descending) whose 2-byte field at ``s+2`` may be a size
    in ``end-s .. gap_end-s``; every other offset fails that test for sure.

    The field is ``hi << 8 | low``: ``hi == low == 0`` is below the minimum of 6, and a ``hi``
    above ``(gap_end - lo) >> 8`` is beyond the content start from every offset. So only a
    ``hi`` in ``1..max`` or a zero ``hi`` before a non-zero byte can pass; both are found by
    C-speed searches instead of testing each of up to 2048 offsets in Python.
    """
    top = (gap_end - lo) >> 8
    got: set[int] = set()
    if top >= 1:
        pattern = _HIGH_BYTE.get(top)
        if pattern is None:
            pattern = _HIGH_BYTE[top] = re.compile(b"[\\x01-" + re.escape(bytes((min(top, 255),))) + b"]")
        got.update(m.start() - 2 for m in pattern.finditer(buf, lo + 2, end - 3))
    got.update(m.start() - 2 for m in _NONZERO_AFTER_ZERO.finditer(buf, lo + 2, end - 2))
    return sorted(got, reverse=True)


def _votes(hits: list[_Hit]) -> dict[str, int]:
    """How many hits match exactly one table, per table (in order of first appearance)."""
    votes: dict[str, int] = {}
    for h in hits:
        tables = h.tables
        if len(tables) == 1:
            votes[tables[0]] = votes.get(tables[0], 0) + 1
    return votes


def deduplicate(items: list[Recovered]) -> list[Recovered]:
    """Merge the same record found in several places; keep the best, list the others.

    Records with the same bytes are one record (even when two tables of the same shape both
    matched: the best-attributed finding wins) unless both carry different known rowids (two
    rows that happen to hold identical values).
    """
    order = {s: i for i, s in enumerate(("freelist", "freeblock", "unallocated", "superseded", "wal", "journal"))}
    # Most keys occur once: count them in C and group only the repeated ones. Each group is
    # resolved where its first item stood, as grouping everything would order them.
    counts = Counter([it.key for it in items])
    repeated = {k for k, n in counts.items() if n > 1}
    groups: dict[int, list[Recovered]] = {}
    for it in items:
        if it.key in repeated:
            groups.setdefault(it.key, []).append(it)
    out: list[Recovered] = []
    for it in items:
        if it.key not in repeated:
            out.append(it)
            continue
        group = groups.pop(it.key, None)
        if group is None:  # resolved at its first item
            continue
        group.sort(key=lambda r: (-r.confidence, -(r.rowid is not None), order.get(r.source, 9), r.page, r.offset))
        kept: list[Recovered] = []
        for it in group:
            for k in kept:
                if it.rowid is None or k.rowid is None or it.rowid == k.rowid:
                    k.also_found_in.append(it.where())
                    break
            else:
                kept.append(it)
        out.extend(kept)
    # A truncated copy of a record that was also found whole is the same record.
    # Only tables with a truncated item need the lookup (it is searched by the item's table).
    partial_tables = {it.table for it in out if it.partial}
    whole: PrefixLookup[Recovered] = PrefixLookup()
    for name in partial_tables:  # nothing is indexed yet, so extend() is add() for each, in order
        whole.extend(name, [(it.values, it) for it in out if not it.partial and it.table == name])
    merged: list[Recovered] = [it for it in out if not it.partial]

    def size(r: Recovered) -> int:
        return sum(len(v) for v in r.values if isinstance(v, (str, bytes)))

    for it in sorted((it for it in out if it.partial), key=size, reverse=True):
        full = whole.find(it.table, it.values,
                          lambda w: it.rowid is None or w.rowid is None or it.rowid == w.rowid)
        if full is not None:
            full.also_found_in.append(it.where())
            continue
        whole.add(it.table, it.values, it)  # a longer partial absorbs shorter copies
        merged.append(it)
    merged.sort(key=lambda r: (r.table, r.rowid if r.rowid is not None else 1 << 62, r.source, r.page, r.offset))
    return merged


T = TypeVar("T")


class PrefixLookup(Generic[T]):
    """Rows per table, searchable for "could this truncated record be the start of that row".

    Indexed lazily on the first complete value of the probe, so testing thousands of partial
    records against a large table stays fast.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Sequence[Any], T]]] = {}
        self.index: dict[tuple[str, int], dict[Any, list[tuple[Sequence[Any], T]]]] = {}

    def add(self, table: str, values: Sequence[Any], payload: T) -> None:
        entry = (values, payload)
        self.rows.setdefault(table, []).append(entry)
        for (t, i), idx in self.index.items():
            if t == table and i < len(values):
                idx.setdefault(_hashable(values[i]), []).append(entry)

    def extend(self, table: str, entries: Iterable[tuple[Sequence[Any], T]]) -> None:
        """Add many ``(values, payload)`` rows of one table at once."""
        if any(t == table for t, _ in self.index):
            for values, payload in entries:
                self.add(table, values, payload)
        else:
            self.rows.setdefault(table, []).extend(entries)

    def find(self, table: str, values: Sequence[Any], accept: Callable[[T], bool] | None = None) -> T | None:
        rows = self.rows.get(table)
        if not rows:
            return None
        present = [i for i, v in enumerate(values) if v is not None]
        anchors = present[:-1]  # the last value present may be the one that was cut
        candidates: list[tuple[Sequence[Any], T]] = rows
        if anchors:
            i = anchors[0]
            idx = self.index.get((table, i))
            if idx is None:
                idx = {}
                for entry in rows:
                    if i < len(entry[0]):
                        idx.setdefault(_hashable(entry[0][i]), []).append(entry)
                self.index[(table, i)] = idx
            candidates = idx.get(_hashable(values[i]), [])
        for vals, payload in candidates if anchors else _loose_candidates(values, present, rows):
            if prefix_of(values, vals) and (accept is None or accept(payload)):
                return payload
        return None


def _loose_candidates(values: Sequence[Any], present: list[int], rows: Sequence[tuple[Sequence[Any], T]]
                      ) -> list[tuple[Sequence[Any], T]]:
    """The rows ``prefix_of(values, row)`` can accept when at most one value is present.

    Such a probe has no anchor to index on, so every row is a candidate; this cheap filter (the
    same test prefix_of makes, inline) keeps the full check for the few that pass.
    """
    n = len(values)
    if not present:
        return [e for e in rows if len(e[0]) == n]
    j = present[0]
    p = values[j]
    if isinstance(p, (str, bytes)):
        tp = type(p)
        return [e for e in rows if len(e[0]) == n and (e[0][j] == p or (type(e[0][j]) is tp
                                                                       and e[0][j].startswith(p)))]
    return [e for e in rows if len(e[0]) == n and e[0][j] == p]


def _hashable(v: Any) -> Any:
    return v if not isinstance(v, (list, dict, bytearray)) else repr(v)


def prefix_of(partial: Sequence[Any], full: Sequence[Any]) -> bool:
    """True if a truncated record could be the start of ``full`` (the cut column is a prefix)."""
    if len(partial) != len(full):
        return False
    for p, f in zip(partial, full):
        if p is None or p == f:
            continue
        if isinstance(p, (str, bytes)) and type(p) is type(f) and f.startswith(p):  # type: ignore[arg-type]
            continue
        return False
    return True


__all__ = ["Carver", "Recovered", "TableMatcher", "PrefixLookup", "deduplicate", "decode_partial", "prefix_of",
           "serial_templates", "SOURCES"]
