"""Swapping a database file by rename — only when it is proven that nobody else has it open.

A rename swap is instant, but with another connection open it is dangerous (sqlite-facts A2): a
process that keeps the old inode reads old data forever, or mixes both files through the
``-wal`` and ``-shm`` that it finds *by name*. So bakestore swaps by rename only when every one of
these holds, and otherwise uses the backup-API swap (one write transaction into the live file),
which is safe with any number of readers:

1. Linux, and the database, its restore points and its siblings on one local filesystem
   (never NFS, SMB, FUSE or the like: their locks and renames do not keep these promises). The
   database path is a regular file with no other name (not a symlink, no hard link: either would
   keep pointing at the old file), and the replacement can be given its owner, group, permissions
   and extended attributes; the replacement is fsynced before any name points at it, and if the
   live file cannot be hard-linked under the restore point's name nothing has changed.
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
import stat
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
#: How long after the rename /proc is read again (an open in progress shows up a moment later).
LATE_OPENER_GRACE_S = 0.005


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


def file_id(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)``: which file a path names now, or None if it names none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _identities(paths: list[Path]) -> set[tuple[int, int]]:
    return {ident for ident in map(file_id, paths) if ident is not None}


def processes_holding(identities: set[tuple[int, int]]) -> set[int] | None:
    """PIDs of *other* processes with any of these files (``(st_dev, st_ino)``) open, among the
    processes whose open files this process may read; None without /proc. Processes it may not
    read (another user's, for a user that is not root) are left to the lock probe, which sees
    every connection that has read the file (sqlite-facts A5)."""
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
        except OSError:
            continue  # ended, or not ours to read
        for fd in fds:
            try:
                info = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in identities:
                holders.add(int(entry.name))
                break
    return holders


def own_descriptors(identities: set[tuple[int, int]]) -> int:
    """How many of this process's file descriptors are open on these files."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            info = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += (info.st_dev, info.st_ino) in identities
    return count


def _exclusive(path: Path, *, was_wal: bool) -> Any:
    """A connection holding ``path`` exclusively in rollback mode, or NotProvenAlone. On
    failure the file is put back in WAL mode if ``was_wal``."""
    conn = sqlite3.connect(str(path), timeout=0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        # Leaving WAL mode needs every other connection gone (it checkpoints and deletes -wal
        # and -shm); the exclusive lock then keeps newcomers from reading.
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if mode != "delete":
            raise NotProvenAlone(f"{path.name}: journal mode stayed {mode}")
        conn.execute("PRAGMA synchronous = FULL")  # a write before the swap is durable before it
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        _release(conn, back_to_wal=was_wal)
        raise NotProvenAlone(f"another connection has {path.name} open ({exc})") from None
    except BaseException:
        _release(conn, back_to_wal=was_wal)
        raise


def _release(conn: Any, *, back_to_wal: bool) -> None:
    """End the hold; with ``back_to_wal`` leave the file as it was found (WAL mode). Close."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
    if back_to_wal:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA locking_mode = NORMAL")
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


class ProvenAlone:
    """Inside :func:`proven_alone`: both files are held exclusively (nobody can read either) and
    nobody else has them open. ``replacement`` is the connection holding the replacement, for
    last writes into it before it goes live; :meth:`swap` does the rename."""

    def __init__(self, live: Path, replacement_path: Path, replacement: Any, old: set[tuple[int, int]],
                 new: set[tuple[int, int]]) -> None:
        self.live, self.replacement_path, self.replacement = live, replacement_path, replacement
        self.old, self.new = old, new
        self.swapped = False
        self.late_openers: set[int] = set()

    @staticmethod
    def _holders(identities: set[tuple[int, int]]) -> set[int]:
        """Other processes with these files open, and this one if it has more than the one
        descriptor our own held connection uses (another thread opened the file)."""
        holders = processes_holding(identities) or set()
        if own_descriptors(identities) > 1:
            holders.add(os.getpid())
        return holders

    def swap(self, keep_old_as: Path) -> None:
        """Make the replacement the live file and keep the live file as ``keep_old_as``.

        Raises NotProvenAlone, with nothing changed, when the live file cannot be given that
        second name (another filesystem, hard links not allowed there, too many links).
        """
        live, replacement = self.live, self.replacement_path
        try:
            os.link(live, keep_old_as)
        except OSError as exc:
            raise NotProvenAlone(f"cannot keep the live file as {keep_old_as} by a hard link ({exc.strerror or exc})"
                                 ) from None
        try:
            os.replace(replacement, live)
        except OSError:
            os.unlink(keep_old_as)
            raise
        self.swapped = True
        # Somebody who opened the old file in the instant before the rename (an open in
        # progress shows in /proc a moment later: look twice) cannot have read it — it is locked.
        time.sleep(LATE_OPENER_GRACE_S)
        late = self._holders(self.old)
        if late:
            if not self._holders(self.new):
                # Nobody has the new file open either: put everything back as it was.
                os.link(live, replacement)
                os.replace(keep_old_as, live)
                self.swapped = False
                fsync_dir(live.parent)
                fsync_dir(replacement.parent)
                raise NotProvenAlone(f"process(es) {sorted(late)} opened the database during the swap")
            # Both files are open elsewhere (two races at once). Keep the old file locked until
            # its late openers let go, so none of them reads it against the new file's -wal.
            deadline = time.monotonic() + LATE_OPENER_WAIT_S
            while (late := self._holders(self.old)) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.late_openers = late
        fsync_dir(live.parent)
        if keep_old_as.parent != live.parent:
            fsync_dir(keep_old_as.parent)


def _take_on_owner_and_mode(replacement: Path, live: Path, live_info: os.stat_result) -> None:
    """Give the replacement the live file's owner, group, permissions and extended attributes
    (ACLs, security labels), or raise NotProvenAlone: the swapped-in file must be usable by
    everybody who could use the live one (a restore run with sudo, or by another member of a
    shared household group, would otherwise lock the owner out)."""
    have = os.lstat(replacement)
    try:
        if (have.st_uid, have.st_gid) != (live_info.st_uid, live_info.st_gid):
            os.chown(replacement, live_info.st_uid, live_info.st_gid)
        if stat.S_IMODE(have.st_mode) != stat.S_IMODE(live_info.st_mode):
            os.chmod(replacement, stat.S_IMODE(live_info.st_mode))
        if hasattr(os, "listxattr"):
            wanted = {name: os.getxattr(live, name) for name in os.listxattr(live)}
            present = {name: os.getxattr(replacement, name) for name in os.listxattr(replacement)}
            for name, value in wanted.items():
                if present.get(name) != value:
                    os.setxattr(replacement, name, value)
            for name in set(present) - set(wanted):
                os.removexattr(replacement, name)
    except OSError as exc:
        raise NotProvenAlone("cannot give the replacement the live file's owner, permissions and attributes "
                             f"({exc.strerror or exc})") from None


@contextlib.contextmanager
def proven_alone(live: Path, replacement: Path) -> Iterator[ProvenAlone]:
    """Prove that a rename swap of ``live`` for ``replacement`` is safe and hold it so.

    Raises :class:`NotProvenAlone` (with everything as it was) unless the conditions in this
    module's docstring hold. ``replacement`` must be a closed, complete database file without
    ``-wal``/``-journal`` siblings, on the same filesystem as ``live``, that nothing in this
    process has open; the caller must have closed its own connections to ``live``.
    """
    if os.environ.get(DISABLE_ENV):
        raise NotProvenAlone(f"rename swaps are turned off ({DISABLE_ENV})")
    if not sys.platform.startswith("linux"):
        raise NotProvenAlone("rename swaps are only proven safe on Linux")
    kind = filesystem_type(live)
    if kind not in LOCAL_FILESYSTEMS:
        raise NotProvenAlone(f"filesystem {kind!r} is not a local filesystem known to keep the promises")
    live_info, replacement_info = os.lstat(live), os.lstat(replacement)
    if not stat.S_ISREG(live_info.st_mode) or not stat.S_ISREG(replacement_info.st_mode):
        # A symlinked database path would be replaced by a plain file (the link's target keeps the
        # old content, and whoever opens the resolved path goes on using it).
        raise NotProvenAlone("the database path or the replacement is not a regular file (a symbolic link?)")
    if live_info.st_nlink != 1 or replacement_info.st_nlink != 1:
        raise NotProvenAlone("the database file (or the replacement) has other names: hard links would keep the old one")
    if live_info.st_dev != replacement_info.st_dev:
        raise NotProvenAlone("the files are on different filesystems")
    for suffix in ("-wal", "-journal"):
        if Path(f"{replacement}{suffix}").exists():
            raise NotProvenAlone(f"{replacement.name}{suffix} exists")
    siblings = [Path(f"{live}{suffix}") for suffix in SIBLINGS]
    old, new = _identities(siblings), _identities([replacement])
    # Cheap checks first, before the probe changes the journal mode.
    if own_descriptors(old | new):
        raise NotProvenAlone("this process still has the database or the restore point open")
    if processes_holding(old | new):
        raise NotProvenAlone("another process has the database open")
    _take_on_owner_and_mode(replacement, live, live_info)
    # The replacement's bytes reach the disk before any name points at it (nothing in this
    # process has it open, checked above: closing this descriptor drops no lock).
    fd = os.open(replacement, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    probe = _exclusive(live, was_wal=True)
    swap: ProvenAlone | None = None
    try:
        if any(Path(f"{live}{suffix}").exists() for suffix in ("-wal", "-journal")):
            raise NotProvenAlone("the live file still has a -wal or -journal")
        held = _exclusive(replacement, was_wal=False)
        old = _identities(siblings)
        swap = ProvenAlone(live, replacement, held, old, new)
        # Exactly the two connections just opened, and nobody else.
        if own_descriptors(old) != 1 or own_descriptors(new) != 1:
            raise NotProvenAlone("another connection in this process has the database open")
        holders = processes_holding(old | new)
        if holders is None:
            raise NotProvenAlone("cannot see the processes' open files")
        if holders:
            raise NotProvenAlone(f"process(es) {sorted(holders)} have the database open")
        yield swap
    finally:
        swapped = swap is not None and swap.swapped
        if swap is not None:
            # The replacement (now live, or still a restore point) is let go of first.
            _release(swap.replacement, back_to_wal=False)
        # The old file: back to WAL when it is still the live file; kept as a restore point
        # (rollback mode) when the swap happened.
        _release(probe, back_to_wal=not swapped)
