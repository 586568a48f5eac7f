"""Durable file writes: the two moves every writer of exports, snapshots and restore points needs.

A rename is atomic but not durable until the directory holding it is fsynced; a file's bytes are
not durable until the file is. These helpers do both, so "written" means "survives power loss".
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make the entries of a directory (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, tmp_name: str | None = None) -> None:
    """Replace ``path`` with ``data`` in one step: temp file in the same folder, fsync, rename.

    ``tmp_name`` lets a caller name the temporary file so that its own clean-up (or a sync
    engine's debris rules) can recognise it.
    """
    tmp = path.with_name(tmp_name or f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
