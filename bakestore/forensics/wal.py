"""The write-ahead log (``-wal``) and its index (``-shm``), read from raw bytes.

Frames are validated exactly as SQLite does (salts and the cumulative checksum) so the report can
say which frames a reader would use, which are an uncommitted tail and which are stale frames of an
older WAL generation: older page images that secure_delete never touched.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

WAL_MAGIC_LE, WAL_MAGIC_BE = 0x377F0682, 0x377F0683
_MASK = 0xFFFFFFFF


@dataclass(slots=True)
class WalFrame:
    """One frame: where it is, which page it holds and how SQLite would judge it."""

    index: int  # 1-based
    offset: int  # of the frame header in the WAL file
    pgno: int
    commit_size: int  # database size in pages if this frame commits a transaction, else 0
    salt1: int
    salt2: int
    salt_ok: bool
    checksum_ok: bool
    state: str = ""  # committed | uncommitted | invalid | stale
    transaction: int = 0  # 1-based commit number for committed frames

    @property
    def data_offset(self) -> int:
        return self.offset + 24

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("index", "offset", "pgno", "commit_size", "salt1", "salt2",
                                             "salt_ok", "checksum_ok", "state", "transaction")}


@dataclass
class WalInfo:
    """The WAL header, every frame and the totals the report states."""

    present: bool = False
    size: int = 0
    magic_ok: bool = False
    big_endian: bool = False
    version: int = 0
    page_size: int = 0
    checkpoint_seq: int = 0
    salt1: int = 0
    salt2: int = 0
    header_checksum_ok: bool = False
    frames: list[WalFrame] = field(default_factory=list)
    trailing_bytes: int = 0
    last_commit_frame: int = 0
    db_size_after_commit: int = 0
    errors: list[str] = field(default_factory=list)
    shm: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for f in self.frames:
            states[f.state] = states.get(f.state, 0) + 1
        commits = sum(1 for f in self.frames if f.state == "committed" and f.commit_size)
        pages = {f.pgno for f in self.frames if f.state == "committed"}
        return {
            "present": self.present, "size": self.size, "magic_ok": self.magic_ok,
            "byte_order": "big-endian" if self.big_endian else "little-endian", "version": self.version,
            "page_size": self.page_size, "checkpoint_seq": self.checkpoint_seq, "salt1": self.salt1,
            "salt2": self.salt2, "header_checksum_ok": self.header_checksum_ok,
            "frames": len(self.frames), "valid_frames": states.get("committed", 0) + states.get("uncommitted", 0),
            "committed_frames": states.get("committed", 0), "uncommitted_frames": states.get("uncommitted", 0),
            "invalid_frames": states.get("invalid", 0), "stale_frames": states.get("stale", 0),
            "commits": commits, "pages_in_committed_frames": len(pages),
            "last_commit_frame": self.last_commit_frame, "db_size_after_commit": self.db_size_after_commit,
            "trailing_bytes": self.trailing_bytes, "shm": self.shm,
            "frames_not_checkpointed": (self.shm.get("mx_frame", 0) - self.shm.get("n_backfill", 0))
            if self.shm.get("valid") else None,
            "errors": self.errors,
        }


def wal_checksum(data: bytes, start: int, end: int, s0: int, s1: int, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum over ``data[start:end]`` continuing from ``(s0, s1)``."""
    n = (end - start) // 4
    words = struct.unpack_from(f"{'>' if big_endian else '<'}{n}I", data, start)
    it = iter(words)
    for a in it:
        b = next(it)
        s0 = (s0 + a + s1) & _MASK
        s1 = (s1 + b + s0) & _MASK
    return s0, s1


def parse_wal(data: bytes, db_page_size: int) -> WalInfo:
    """Parse a WAL file; frames past a checksum break are kept (as evidence) but marked."""
    info = WalInfo(present=True, size=len(data))
    if len(data) == 0:
        return info
    if len(data) < 32:
        info.errors.append(f"WAL file is {len(data)} bytes, shorter than its 32-byte header")
        info.trailing_bytes = len(data)
        return info
    magic, version, page_size, seq, salt1, salt2, c1, c2 = struct.unpack_from(">8I", data, 0)
    info.magic_ok = magic in (WAL_MAGIC_LE, WAL_MAGIC_BE)
    info.big_endian = magic == WAL_MAGIC_BE
    info.version, info.checkpoint_seq, info.salt1, info.salt2 = version, seq, salt1, salt2
    if not info.magic_ok:
        info.errors.append(f"WAL magic 0x{magic:08x} is wrong; frames are read with the database page size")
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        info.errors.append(f"WAL page size {page_size} is invalid; using the database's {db_page_size}")
        page_size = db_page_size
    info.page_size = page_size
    s0, s1 = wal_checksum(data, 0, 24, 0, 0, info.big_endian)
    info.header_checksum_ok = (s0, s1) == (c1, c2)
    if not info.header_checksum_ok:
        info.errors.append("WAL header checksum does not match: no frame is valid for SQLite")
    frame_size = 24 + page_size
    chain_ok = info.magic_ok and info.header_checksum_ok
    pending: list[WalFrame] = []
    transaction = 0
    off, index = 32, 0
    while off + frame_size <= len(data):
        index += 1
        pgno, commit, fs1, fs2, fc1, fc2 = struct.unpack_from(">6I", data, off)
        salt_ok = (fs1, fs2) == (salt1, salt2)
        checksum_ok = False
        if salt_ok and chain_ok:
            t0, t1 = wal_checksum(data, off, off + 8, s0, s1, info.big_endian)
            t0, t1 = wal_checksum(data, off + 24, off + frame_size, t0, t1, info.big_endian)
            checksum_ok = (t0, t1) == (fc1, fc2) and pgno > 0
            if checksum_ok:
                s0, s1 = t0, t1
            else:
                chain_ok = False  # SQLite stops at the first bad frame; later ones are not used
        frame = WalFrame(index, off, pgno, commit, fs1, fs2, salt_ok, checksum_ok)
        if not salt_ok:
            frame.state = "stale"
        elif not checksum_ok:
            frame.state = "invalid"
        else:
            frame.state = "uncommitted"
            pending.append(frame)
            if commit:
                transaction += 1
                for f in pending:
                    f.state, f.transaction = "committed", transaction
                pending = []
                info.last_commit_frame = index
                info.db_size_after_commit = commit
        info.frames.append(frame)
        off += frame_size
    info.trailing_bytes = len(data) - off
    if info.trailing_bytes:
        info.errors.append(f"{info.trailing_bytes} bytes after the last whole frame (a torn write)")
    return info


def committed_overlay(info: WalInfo, data: bytes) -> dict[int, bytes]:
    """Page images a reader sees: the newest committed valid frame of each page."""
    overlay: dict[int, bytes] = {}
    ps = info.page_size
    for f in info.frames:
        if f.state == "committed":
            overlay[f.pgno] = data[f.data_offset:f.data_offset + ps]
    return overlay


def frame_image(info: WalInfo, data: bytes, frame: WalFrame) -> bytes:
    return data[frame.data_offset:frame.data_offset + info.page_size]


def parse_shm(data: bytes) -> dict[str, Any]:
    """The WAL-index header (native byte order, assumed little-endian here). Derived data only."""
    if len(data) < 136:
        return {"present": True, "size": len(data), "valid": False,
                "note": "shorter than the WAL-index header (truncated or zeroed by the last close)"}
    for order in ("<", ">"):
        version, _unused, change, is_init, be_cksum, psize, mx_frame, npage = struct.unpack_from(
            f"{order}IIIBBHII", data, 0)
        if version == 3007000:
            break
    else:
        return {"present": True, "size": len(data), "valid": False, "note": "no WAL-index version 3007000"}
    copies_equal = data[0:48] == data[48:96]
    n_backfill, = struct.unpack_from(f"{order}I", data, 96)
    marks = list(struct.unpack_from(f"{order}5I", data, 100))
    return {"present": True, "size": len(data), "valid": bool(is_init) and copies_equal,
            "byte_order": "little" if order == "<" else "big", "change_counter": change,
            "is_init": bool(is_init), "header_copies_equal": copies_equal,
            "page_size": 65536 if psize == 1 else psize, "mx_frame": mx_frame, "db_pages": npage,
            "n_backfill": n_backfill, "read_marks": marks}


def wal_to_dict(info: WalInfo) -> dict[str, Any]:
    d = info.summary()
    d["frame_list"] = [f.to_dict() for f in info.frames]
    return d


__all__ = ["WalFrame", "WalInfo", "parse_wal", "parse_shm", "committed_overlay", "frame_image",
           "wal_checksum", "wal_to_dict"]
