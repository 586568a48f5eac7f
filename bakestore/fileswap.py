"""Swapping a database file by rename — only when it is proven that nobody else has it open.

A rename swap is instant, but with another connection open it is dangerous (sqlite-facts A2): a
process that keeps the old inode reads old data forever, or mixes both files through the
``-wal`` and ``-shm`` that it finds *by name*. So bakestore swaps by rename only when every one of
these holds, and otherwise uses the backup-API swap (one write transaction into the live file),
which is safe with any number of readers:

1. Linux, and the database, its restore points and its siblings on one local filesystem
   (never NFS, SMB, FUSE or the like: their locks and renames do not keep these promises).
2. **The probe** (sqlite-facts A5): a connection switches the file from WAL to rollback mode
   (which checkpoints the WAL and removes ``-wal``/``-shm``) and then, in EXCLUSIVE locking
   mode, holds the exclusive lock. Both fail while any other connection, in any process, has read the
   file: in WAL mode every such connection holds a shared lock for as long as it is open.
3. **/proc**: no other process has the file, its ``-wal``, ``-shm`` or ``-journal`` open. This
   covers the probe's blind spot — a connection that is open but has not read yet holds no
   lock but already has the old inode — and it refuses to decide when some process's open files
   cannot be read.
4. **After the rename**, /proc again: if a process opened the old file in the instant between
   the check and the rename, and nobody has the new one open yet, the rename is reversed (the
   caller then takes the safe path). The old file stays exclusively locked throughout, so such a
   process cannot have read anything from it.

The swap itself: hard-link the live file to the name it keeps as a restore point, rename the
replacement over the live name (atomic), fsync both folders.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from .files import fsync_dir
from .sqlite import sqlite3

#: Filesystems where a rename is atomic and POSIX locks work between processes of this machine.
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs", "overlay",
                               "jfs", "reiserfs", "bcachefs", "nilfs2"})
SIBLINGS = ("", "-wal", "-shm", "-journal")
#: Set to anything to never swap by rename (e.g. where other containers share the file).
DISABLE_ENV = "BAKESTORE_NO_RENAME_SWAP"
#: How long the old file stays locked for a process that opened it during the swap.
LATE_OPENER_WAIT_S = 10.0


class NotProvenAlone(Exception):
    """One of the conditions for a rename swap does not hold; nothing was changed."""


def filesystem_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (Linux ``/proc/self/mountinfo``)."""
    try:
        device = os.stat(path).st_dev
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                major, minor = fields[2].split(":")
                if os.makedev(int(major), int(minor)) == device:
                    return fields[fields.index("-") + 1]
    except (OSError, ValueError, IndexError):
        return None
    return None


def _identities(paths: list[Path]) -> set[tuple[int, int]]:
    found = set()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            info = os.stat(path)
            found.add((info.st_dev, info.st_ino))
    return found


def processes_holding(identities: set[tuple[int, int]]) -> set[int] | None:
    """PIDs of *other* processes with any of these files (``(st_dev, st_ino)``) open, or None
    when that cannot be known (no /proc, or a process whose open files we may not read)."""
    proc = Path("/proc")
    if not identities:
        return set()
    if not (proc / "self" / "fd").is_dir():
        return None
    me = os.getpid()
    holders: set[int] = set()
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fd_dir = f"/proc/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # the process has ended
        except PermissionError:
            return None
        for fd in fds:
            try:
                info = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in identities:
                holders.add(int(entry.name))
                break
    return holders


@contextlib.contextmanager
def exclusive_probe(live: Path) -> Iterator[Any]:
    """Hold ``live`` exclusively in rollback mode, or raise :class:`NotProvenAlone`.

    On the way out the file is put back in WAL mode when it is still the live file (the swap did
    not happen); after a swap the connection is on the old file, which stays in rollback mode.
    """
    conn = sqlite3.connect(str(live), timeout=0, isolation_level=None, check_same_thread=False)
    swapped = False
    try:
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            # Leaving WAL mode needs every other connection gone (it checkpoints and deletes
            # -wal and -shm); the exclusive lock then keeps newcomers from reading.
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if mode != "delete":
                raise NotProvenAlone(f"journal mode stayed {mode}")
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            raise NotProvenAlone(f"another connection has the database open ({exc})") from None

        class Probe:
            connection = conn

            def mark_swapped(self, value: bool = True) -> None:
                nonlocal swapped
                swapped = value

        yield Probe()
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if not swapped:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA journal_mode = WAL")
        conn.close()


class ProvenAlone:
    """Inside :func:`proven_alone`: the conditions hold and the live file is locked; :meth:`swap`
    does the rename."""

    def __init__(self, live: Path, replacement: Path, probe: Any, old: set[tuple[int, int]]) -> None:
        self.live, self.replacement, self.probe, self.old = live, replacement, probe, old
        self.swapped = False

    def swap(self, keep_old_as: Path) -> None:
        """Make the replacement the live file and keep the live file as ``keep_old_as``."""
        live, replacement = self.live, self.replacement
        new = _identities([replacement])
        os.link(live, keep_old_as)
        try:
            os.replace(replacement, live)
        except OSError:
            os.unlink(keep_old_as)
            raise
        self.probe.mark_swapped()
        late = processes_holding(self.old)
        if late is None or late:
            # Somebody opened the old file between the check and the rename. It cannot have read
            # from it (we hold the lock); if nobody has the new file yet, put everything back.
            if processes_holding(new) == set():
                os.link(live, replacement)
                os.replace(keep_old_as, live)
                self.probe.mark_swapped(False)
                fsync_dir(live.parent)
                fsync_dir(replacement.parent)
                raise NotProvenAlone(f"process(es) {sorted(late or [])} opened the database during the swap")
            # Both files are open elsewhere (two races at once). Keep the old file locked until
            # its late openers let go, so none of them reads it against the new file's -wal.
            deadline = time.monotonic() + LATE_OPENER_WAIT_S
            while processes_holding(self.old) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.swapped = True
        fsync_dir(live.parent)
        if keep_old_as.parent != live.parent:
            fsync_dir(keep_old_as.parent)


@contextlib.contextmanager
def proven_alone(live: Path, replacement: Path) -> Iterator[ProvenAlone]:
    """Prove that a rename swap of ``live`` for ``replacement`` is safe and hold it so.

    Raises :class:`NotProvenAlone` (with everything as it was) unless the conditions in this
    module's docstring hold. ``replacement`` must be a closed, complete database file without
    ``-wal``/``-journal`` siblings, on the same filesystem as ``live``. The caller must have
    closed its own connections to ``live``.
    """
    if os.environ.get(DISABLE_ENV):
        raise NotProvenAlone(f"rename swaps are turned off ({DISABLE_ENV})")
    if not sys.platform.startswith("linux"):
        raise NotProvenAlone("rename swaps are only proven safe on Linux")
    kind = filesystem_type(live)
    if kind not in LOCAL_FILESYSTEMS:
        raise NotProvenAlone(f"filesystem {kind!r} is not a local filesystem known to keep the promises")
    if os.stat(live).st_dev != os.stat(replacement).st_dev:
        raise NotProvenAlone("the files are on different filesystems")
    for suffix in ("-wal", "-journal"):
        if Path(f"{replacement}{suffix}").exists():
            raise NotProvenAlone(f"{replacement.name}{suffix} exists")
    with exclusive_probe(live) as probe:
        if any(Path(f"{live}{suffix}").exists() for suffix in ("-wal", "-journal")):
            raise NotProvenAlone("the live file still has a -wal or -journal")
        old = _identities([Path(f"{live}{suffix}") for suffix in SIBLINGS])
        holders = processes_holding(old | _identities([replacement]))
        if holders is None:
            raise NotProvenAlone("cannot see every process's open files")
        if holders:
            raise NotProvenAlone(f"process(es) {sorted(holders)} have the database open")
        yield ProvenAlone(live, replacement, probe, old)
