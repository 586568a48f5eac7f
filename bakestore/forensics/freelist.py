"""The freelist (trunk and leaf pages) and pointer-map pages.

Freed pages keep their old bytes unless the deleting connection had secure_delete on, so the
freelist is the richest source of deleted rows after a ``DELETE FROM t`` or ``DROP TABLE``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .btree import PageView


@dataclass
class FreelistInfo:
    """Trunk and leaf page numbers, the header's count, and what disagreed while walking."""

    trunks: list[int] = field(default_factory=list)
    leaves: list[int] = field(default_factory=list)
    trunk_of: dict[int, int] = field(default_factory=dict)  # leaf -> its trunk
    trunk_used: dict[int, int] = field(default_factory=dict)  # trunk -> bytes of its array (8 + 4L)
    header_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def walked_count(self) -> int:
        return len(self.trunks) + len(self.leaves)

    def to_dict(self) -> dict[str, Any]:
        return {"header_count": self.header_count, "walked_count": self.walked_count,
                "trunk_pages": len(self.trunks), "leaf_pages": len(self.leaves), "errors": self.errors}


def walk_freelist(view: PageView, first_trunk: int, header_count: int, usable: int) -> FreelistInfo:
    """Follow the trunk chain; stop with an error entry at a loop or an out-of-range page."""
    info = FreelistInfo(header_count=header_count)
    seen: set[int] = set()
    trunk = first_trunk
    max_leaves = usable // 4 - 2
    while trunk:
        if trunk in seen:
            info.errors.append({"page": trunk, "error": f"freelist trunk chain loops back to page {trunk}"})
            break
        seen.add(trunk)
        image = view.get(trunk)
        if image is None:
            info.errors.append({"page": trunk, "error": f"freelist trunk page {trunk} is outside the file"})
            break
        nxt, count = struct.unpack_from(">II", image, 0)
        info.trunks.append(trunk)
        if count > max_leaves:
            info.errors.append({"page": trunk, "error": f"freelist trunk page {trunk} claims {count} leaves; "
                                                        f"at most {max_leaves} fit"})
            count = max_leaves
        info.trunk_used[trunk] = 8 + 4 * count
        for leaf in struct.unpack_from(f">{count}I", image, 8):
            if leaf < 1 or leaf > view.page_count or leaf in seen:
                info.errors.append({"page": trunk, "error": f"freelist trunk page {trunk} lists invalid or "
                                                            f"repeated leaf page {leaf}"})
                continue
            seen.add(leaf)
            info.leaves.append(leaf)
            info.trunk_of[leaf] = trunk
        if len(seen) > view.page_count + 1:
            info.errors.append({"page": trunk, "error": "freelist is longer than the file"})
            break
        trunk = nxt
        if trunk > view.page_count:
            info.errors.append({"page": trunk, "error": f"next freelist trunk {trunk} is beyond the last page"})
            break
    if header_count != info.walked_count:
        info.errors.append({"page": None, "error": f"header counts {header_count} free pages but the "
                                                   f"freelist holds {info.walked_count}"})
    return info


def pointer_map_pages(page_count: int, usable: int, auto_vacuum: bool) -> list[int]:
    """Page numbers of the pointer-map pages (auto/incremental vacuum databases only)."""
    if not auto_vacuum:
        return []
    step = usable // 5 + 1
    return list(range(2, page_count + 1, step))


def lock_byte_page(page_size: int, page_count: int) -> int | None:
    """The page holding bytes 2^30..2^30+511 (never used by SQLite), if the file is that big."""
    pg = (1 << 30) // page_size + 1
    return pg if pg <= page_count else None
