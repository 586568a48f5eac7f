"""B-tree pages: page views, page headers, cells, overflow chains and the walk of live b-trees.

The walk gives the *live* state (which rows exist, which page belongs to which table); the carver
compares every candidate against it so that a live row is never reported as deleted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Iterator

from .fileformat import PARSE_ERRORS, FormatError, local_payload_size, read_varint

LEAF_TABLE, INTERIOR_TABLE, LEAF_INDEX, INTERIOR_INDEX = 0x0D, 0x05, 0x0A, 0x02
BTREE_TYPES = {LEAF_TABLE: "table_leaf", INTERIOR_TABLE: "table_interior",
               LEAF_INDEX: "index_leaf", INTERIOR_INDEX: "index_interior"}


class PageError(FormatError):
    """A page whose structure is damaged; the message says what and where."""


class PageView:
    """Pages of one version of the database: the main file, optionally overlaid with WAL frames.

    ``get`` returns ``None`` for a page outside the file (truncated evidence) instead of raising.
    """

    def __init__(self, data: bytes, page_size: int, page_count: int,
                 overlay: dict[int, bytes] | None = None) -> None:
        self.data = data
        self.page_size = page_size
        self.page_count = page_count
        self.overlay = overlay or {}

    def get(self, pgno: int) -> bytes | None:
        if pgno < 1 or pgno > self.page_count:
            return None
        image = self.overlay.get(pgno)
        if image is not None:
            return image
        start = (pgno - 1) * self.page_size
        if start + self.page_size > len(self.data):
            if start < len(self.data):
                return self.data[start:].ljust(self.page_size, b"\x00")
            return None
        return self.data[start:start + self.page_size]


@dataclass(slots=True)
class PageHeader:
    """A b-tree page header plus the cell pointers, validated against the page bounds."""

    kind: int
    hdr: int
    first_freeblock: int
    ncells: int
    content_start: int
    fragmented: int
    right_child: int
    pointers: tuple[int, ...]

    @property
    def is_leaf(self) -> bool:
        return self.kind in (LEAF_TABLE, LEAF_INDEX)

    @property
    def ptr_end(self) -> int:
        return self.hdr + (8 if self.is_leaf else 12) + 2 * self.ncells


def parse_page_header(page: bytes, pgno: int, usable: int) -> PageHeader:
    """Parse and sanity-check the b-tree header of ``page``; raise PageError with a clear reason."""
    hdr = 100 if pgno == 1 else 0
    if len(page) < hdr + 8:
        raise PageError(f"page {pgno}: too short for a b-tree header")
    kind = page[hdr]
    if kind not in BTREE_TYPES:
        raise PageError(f"page {pgno}: type byte 0x{kind:02x} is not a b-tree page type")
    first_fb, ncells, content, frag = struct.unpack_from(">HHHB", page, hdr + 1)
    if content == 0:
        content = 65536
    leaf = kind in (LEAF_TABLE, LEAF_INDEX)
    right = 0 if leaf else struct.unpack_from(">I", page, hdr + 8)[0]
    ptr_start = hdr + (8 if leaf else 12)
    if ptr_start + 2 * ncells > usable:
        raise PageError(f"page {pgno}: {ncells} cells do not fit in a {usable}-byte page")
    pointers = struct.unpack_from(f">{ncells}H", page, ptr_start)
    lo = ptr_start + 2 * ncells
    if pointers and (min(pointers) < lo or max(pointers) >= usable):
        for p in pointers:  # the first one out of range names the error
            if p < lo or p >= usable:
                raise PageError(f"page {pgno}: cell pointer {p} outside the content area [{lo}, {usable})")
    if first_fb and (first_fb < lo or first_fb > usable - 4):
        raise PageError(f"page {pgno}: first freeblock offset {first_fb} outside the page")
    return PageHeader(kind, hdr, first_fb, ncells, content, frag, right, pointers)


def freeblocks(page: bytes, header: PageHeader, usable: int) -> list[tuple[int, int]]:
    """The freeblock chain as ``(offset, size)``; stops (and raises) on loops or bad sizes."""
    out: list[tuple[int, int]] = []
    off = header.first_freeblock
    seen: set[int] = set()
    while off:
        if off in seen or off + 4 > usable:
            raise PageError(f"freeblock chain broken at offset {off}")
        seen.add(off)
        nxt, size = struct.unpack_from(">HH", page, off)
        if size < 4 or off + size > usable:
            raise PageError(f"freeblock at {off} has impossible size {size}")
        out.append((off, size))
        if nxt and nxt <= off:
            raise PageError(f"freeblock chain goes backwards at offset {off}")
        off = nxt
    return out


@dataclass(slots=True)
class TableCell:
    """One table-leaf cell: rowid and the local part of its payload (plus overflow pointer)."""

    offset: int
    rowid: int
    payload_size: int
    local: bytes
    overflow: int
    end: int


def read_table_leaf_cell(page: bytes, off: int, usable: int) -> TableCell:
    """Read the table-leaf cell at ``off``; raise PageError if it runs past the page."""
    psize, p = read_varint(page, off)
    rowid, p = read_varint(page, p)
    if psize < 0:
        raise PageError(f"cell at {off}: negative payload size")
    local = local_payload_size(psize, usable, True)
    end = p + local
    overflow = 0
    if local < psize:
        if end + 4 > usable:
            raise PageError(f"cell at {off}: overflow pointer past the page end")
        overflow = struct.unpack_from(">I", page, end)[0]
        end += 4
    elif end > usable:
        raise PageError(f"cell at {off}: payload of {psize} bytes runs past the page end")
    return TableCell(off, rowid, psize, page[p:p + local], overflow, end)


def read_index_cell(page: bytes, off: int, usable: int, interior: bool) -> tuple[bytes, int, int]:
    """Index cell at ``off``: ``(local payload, payload size, overflow page)``."""
    p = off + 4 if interior else off
    psize, p = read_varint(page, p)
    local = local_payload_size(psize, usable, False)
    if p + local > usable:
        raise PageError(f"index cell at {off}: payload runs past the page end")
    overflow = struct.unpack_from(">I", page, p + local)[0] if local < psize else 0
    return page[p:p + local], psize, overflow


def read_overflow(view: PageView, first: int, need: int, usable: int,
                  pages: list[int] | None = None) -> tuple[bytes, str | None]:
    """Follow an overflow chain for ``need`` more bytes: ``(bytes, error or None)``.

    Chains in carved cells point into pages that may since have been reused, so a broken chain is
    reported (the caller keeps the local part) instead of raised.
    """
    chunks: list[bytes] = []
    got = 0
    pg = first
    seen: set[int] = set()
    step = usable - 4
    while got < need:
        if pg == 0 or pg in seen:
            return b"".join(chunks), f"overflow chain ends early at page {pg or 'none'} ({got}/{need} bytes)"
        seen.add(pg)
        image = view.get(pg)
        if image is None:
            return b"".join(chunks), f"overflow page {pg} is outside the file"
        if pages is not None:
            pages.append(pg)
        take = min(step, need - got)
        chunks.append(image[4:4 + take])
        got += take
        pg = struct.unpack_from(">I", image, 0)[0]
    return b"".join(chunks), None


@dataclass
class WalkResult:
    """What walking one b-tree found: its pages by kind, its live cells and its errors."""

    root: int
    pages: dict[int, str] = field(default_factory=dict)  # pgno -> kind
    overflow_pages: list[int] = field(default_factory=list)
    rows: list[tuple[int, bytes]] = field(default_factory=list)  # (rowid, full payload) of table leaves
    index_payloads: list[bytes] = field(default_factory=list)  # full payloads of index cells (WITHOUT ROWID)
    errors: list[dict[str, Any]] = field(default_factory=list)


def walk_btree(view: PageView, root: int, usable: int, *, claimed: dict[int, Any] | None = None,
               want_index_payloads: bool = False, max_depth: int = 40) -> WalkResult:
    """Walk the b-tree rooted at ``root`` iteratively, never following a page twice.

    ``claimed`` (pgno -> owner) is shared across trees so a page reached from two trees is
    reported as an error instead of being read twice (a sign of corruption).
    """
    result = WalkResult(root)
    stack: list[tuple[int, int]] = [(root, 0)]
    claimed = claimed if claimed is not None else {}
    while stack:
        pgno, depth = stack.pop()
        if pgno in result.pages or pgno in claimed:
            result.errors.append({"page": pgno, "error": f"page {pgno} is referenced twice (b-tree loop "
                                                         f"or cross-link from root {root})"})
            continue
        if depth > max_depth:
            result.errors.append({"page": pgno, "error": f"b-tree deeper than {max_depth} levels at page {pgno}"})
            continue
        page = view.get(pgno)
        if page is None:
            result.errors.append({"page": pgno, "error": f"page {pgno} is outside the file (truncated?)"})
            continue
        try:
            header = parse_page_header(page, pgno, usable)
        except PARSE_ERRORS as exc:
            result.errors.append({"page": pgno, "error": str(exc)})
            continue
        result.pages[pgno] = BTREE_TYPES[header.kind]
        claimed[pgno] = root
        try:
            _walk_page(view, page, pgno, header, usable, depth, stack, result, want_index_payloads)
        except PARSE_ERRORS as exc:
            result.errors.append({"page": pgno, "error": f"page {pgno}: {exc}"})
    return result


def _walk_page(view: PageView, page: bytes, pgno: int, header: PageHeader, usable: int, depth: int,
               stack: list[tuple[int, int]], result: WalkResult, want_index: bool) -> None:
    kind = header.kind
    if kind == LEAF_TABLE:
        rows = result.rows
        max_local = usable - 35
        for off in header.pointers:
            # The common cell (payload on the page) read inline: the same checks and errors as
            # read_table_leaf_cell, without a TableCell per row.
            b = page[off]
            if b < 0x80:
                psize, q = b, off + 1
            elif page[off + 1] < 0x80:
                psize, q = (b & 0x7F) << 7 | page[off + 1], off + 2
            else:
                psize, q = read_varint(page, off)
            b = page[q]
            if b < 0x80:
                rowid, q = b, q + 1
            elif page[q + 1] < 0x80:
                rowid, q = (b & 0x7F) << 7 | page[q + 1], q + 2
            elif page[q + 2] < 0x80:
                rowid, q = ((b & 0x7F) << 7 | (page[q + 1] & 0x7F)) << 7 | page[q + 2], q + 3
            else:
                rowid, q = read_varint(page, q)
            if 0 <= psize <= max_local:
                if q + psize > usable:
                    raise PageError(f"cell at {off}: payload of {psize} bytes runs past the page end")
                rows.append((rowid, page[q:q + psize]))
                continue
            cell = read_table_leaf_cell(page, off, usable)
            payload = cell.local
            if cell.overflow:
                rest, err = read_overflow(view, cell.overflow, cell.payload_size - len(cell.local), usable,
                                          result.overflow_pages)
                payload = payload + rest
                if err:
                    result.errors.append({"page": pgno, "error": f"page {pgno} cell at {off} (rowid "
                                                                 f"{cell.rowid}): {err}"})
            rows.append((cell.rowid, payload))
    elif kind == INTERIOR_TABLE:
        children = [struct.unpack_from(">I", page, off)[0] for off in header.pointers]
        children.append(header.right_child)
        for child in reversed(children):
            stack.append((child, depth + 1))
    else:
        interior = kind == INTERIOR_INDEX
        max_local = ((usable - 12) * 64 // 255) - 23
        for off in header.pointers:
            if interior:
                stack.append((struct.unpack_from(">I", page, off)[0], depth + 1))
            # Index cells are read even when their values are not wanted: their overflow
            # pages must be claimed, or the census would call them orphans. A cell whose
            # payload fits on the page (and stays inside it) has nothing to claim.
            if not want_index:
                q = off + 4 if interior else off
                b = page[q]
                if b < 0x80:
                    psize, q = b, q + 1
                else:
                    psize, q = read_varint(page, q)
                if psize <= max_local and q + psize <= usable:
                    continue
            local, psize, ovf = read_index_cell(page, off, usable, interior)
            if ovf:
                rest, err = read_overflow(view, ovf, psize - len(local), usable, result.overflow_pages)
                local = local + rest
                if err:
                    result.errors.append({"page": pgno, "error": f"page {pgno} index cell at {off}: {err}"})
            if want_index:
                result.index_payloads.append(local)
        if interior:
            stack.append((header.right_child, depth + 1))


def iter_table_cells(page: bytes, header: PageHeader, usable: int) -> Iterator[TableCell]:
    """Cells of a table-leaf page image; damaged cells are skipped by the caller's error handling."""
    for off in header.pointers:
        yield read_table_leaf_cell(page, off, usable)
