"""The rollback journal (``-journal``): page pre-images of the last (or an interrupted) transaction.

A journal in PERSIST mode has its first 28 header bytes zeroed at commit but keeps its records,
so the header is optional here: without it the sector size is guessed and each record's checksum
is used in reverse to find the common nonce (records that agree on it are genuine).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
_SECTORS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


@dataclass(slots=True)
class JournalRecord:
    """One saved page: its number, where its image sits in the journal, and whether it checks out."""

    offset: int  # of the 4-byte page number
    pgno: int
    checksum_ok: bool | None
    segment: int

    @property
    def data_offset(self) -> int:
        return self.offset + 4

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "pgno": self.pgno, "checksum_ok": self.checksum_ok,
                "segment": self.segment}


@dataclass
class JournalInfo:
    present: bool = False
    size: int = 0
    header_valid: bool = False
    header_zeroed: bool = False
    record_count: int | None = None
    nonce: int | None = None
    initial_pages: int | None = None
    sector_size: int = 0
    page_size: int = 0
    records: list[JournalRecord] = field(default_factory=list)
    hot: bool = False
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"present": self.present, "size": self.size, "header_valid": self.header_valid,
                "header_zeroed": self.header_zeroed, "record_count": self.record_count, "nonce": self.nonce,
                "initial_pages": self.initial_pages, "sector_size": self.sector_size,
                "page_size": self.page_size, "records": len(self.records),
                "records_checksum_ok": sum(1 for r in self.records if r.checksum_ok),
                "hot": self.hot, "errors": self.errors}


def _page_sum(data: bytes, start: int, page_size: int) -> int:
    total = 0
    i = page_size - 200
    while i > 0:
        total += data[start + i]
        i -= 200
    return total


def _scan(data: bytes, first: int, page_size: int, max_pgno: int, nonce: int | None,
          count: int | None, segment: int) -> tuple[list[JournalRecord], int]:
    """Read records from ``first``; stop at an implausible page number or the declared count."""
    records: list[JournalRecord] = []
    rec = 4 + page_size + 4
    off = first
    while off + rec <= len(data) and (count is None or count < 0 or len(records) < count):
        pgno = struct.unpack_from(">I", data, off)[0]
        if pgno < 1 or pgno > max_pgno:
            break
        stored = struct.unpack_from(">I", data, off + 4 + page_size)[0]
        ok = None
        if nonce is not None:
            ok = (nonce + _page_sum(data, off + 4, page_size)) & 0xFFFFFFFF == stored
        records.append(JournalRecord(off, pgno, ok, segment))
        off += rec
    return records, off


def parse_journal(data: bytes, db_page_size: int, db_pages: int) -> JournalInfo:
    """Parse every segment of a rollback journal; guess the layout when the header was zeroed."""
    info = JournalInfo(present=True, size=len(data))
    if not data:
        return info
    max_pgno = max(db_pages * 4, 1 << 20)
    if data[:8] == JOURNAL_MAGIC and len(data) >= 28:
        info.header_valid = True
        count, nonce, initial, sector, psize = struct.unpack_from(">iIIII", data, 8)
        if psize < 512 or psize > 65536 or psize & (psize - 1):
            info.errors.append(f"journal page size {psize} invalid; using {db_page_size}")
            psize = db_page_size
        if sector < 32 or sector > 65536 or sector & (sector - 1):
            info.errors.append(f"journal sector size {sector} invalid; assuming 512")
            sector = 512
        info.record_count, info.nonce, info.initial_pages = count, nonce, initial
        info.sector_size, info.page_size = sector, psize
        info.hot = count != 0
        off, segment = 0, 0
        while off + 28 <= len(data) and data[off:off + 8] == JOURNAL_MAGIC:
            segment += 1
            count, nonce = struct.unpack_from(">iI", data, off + 8)
            recs, end = _scan(data, off + sector, psize, max_pgno, nonce, None if count < 0 else count or None,
                              segment)
            info.records.extend(recs)
            off = -(-end // sector) * sector  # next segment header starts on a sector boundary
        return info
    info.header_zeroed = data[:28] == b"\x00" * 28
    if not info.header_zeroed:
        info.errors.append("journal header magic missing and header not zeroed; records guessed")
    best: tuple[int, int, list[JournalRecord]] = (0, 0, [])
    for sector in _SECTORS:
        if sector >= len(data):
            break
        recs, _ = _scan(data, sector, db_page_size, max_pgno, None, None, 1)
        if not recs:
            continue
        nonces = Counter((struct.unpack_from(">I", data, r.offset + 4 + db_page_size)[0]
                          - _page_sum(data, r.data_offset, db_page_size)) & 0xFFFFFFFF for r in recs)
        nonce, agree = nonces.most_common(1)[0]
        if agree > best[0]:
            for r in recs:
                r.checksum_ok = ((nonce + _page_sum(data, r.data_offset, db_page_size)) & 0xFFFFFFFF
                                 == struct.unpack_from(">I", data, r.offset + 4 + db_page_size)[0])
            best = (agree, sector, recs)
            info.nonce = nonce
    info.sector_size, info.page_size = best[1], db_page_size
    info.records = [r for r in best[2] if r.checksum_ok]
    return info


def record_image(info: JournalInfo, data: bytes, record: JournalRecord) -> bytes:
    return data[record.data_offset:record.data_offset + info.page_size]
