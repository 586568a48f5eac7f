"""Evidence handling: raw-byte copies of the database and its siblings, with SHA-256 both sides.

SQLite may checkpoint a WAL, delete ``-wal``/``-shm``, rewrite ``-shm`` or roll back a hot journal
when it opens a file, even read-only. So this module never opens the evidence with SQLite: it
copies bytes, hashes originals and copies, and makes a *second* copy (``work/``) that SQLite may
open and change. At the end :func:`verify_originals` hashes the originals again.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import stat
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ForensicsError

SIBLINGS = ("wal", "shm", "journal")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


@dataclass
class EvidenceFile:
    """One original file, its copy, and the facts that prove the copy is faithful."""

    role: str  # db | wal | shm | journal
    original: str
    copy: str
    size: int
    sha256_original: str
    sha256_copy: str
    mtime_ns: int
    ctime_ns: int
    sha256_after: str | None = None
    mtime_after_ns: int | None = None

    @property
    def unchanged(self) -> bool | None:
        if self.sha256_after is None:
            return None
        return self.sha256_after == self.sha256_original and self.mtime_after_ns == self.mtime_ns

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "original": self.original, "copy": self.copy, "size": self.size,
                "sha256_original": self.sha256_original, "sha256_copy": self.sha256_copy,
                "copy_matches": self.sha256_copy == self.sha256_original,
                "mtime": _iso(self.mtime_ns), "ctime": _iso(self.ctime_ns), "mtime_ns": self.mtime_ns,
                "sha256_after": self.sha256_after, "unchanged_after_analysis": self.unchanged}


@dataclass
class Evidence:
    """The case folder and the evidence files copied into it."""

    case_dir: Path
    files: dict[str, EvidenceFile] = field(default_factory=dict)
    collected_at: str = ""
    _hashing: threading.Thread | None = field(default=None, repr=False, compare=False)

    @property
    def db(self) -> EvidenceFile:
        return self.files["db"]

    def copy_path(self, role: str) -> Path | None:
        f = self.files.get(role)
        return Path(f.copy) if f else None

    def read(self, role: str) -> bytes:
        """The raw bytes of a copy (empty if that sibling did not exist)."""
        p = self.copy_path(role)
        return p.read_bytes() if p else b""

    def read_all(self) -> dict[str, bytes]:
        """The bytes of every copy (db, wal, shm, journal; empty if absent).

        A copy not hashed yet (``collect(hash_copies=False)``) is hashed from exactly these bytes,
        in a thread beside the caller's next work: hashlib releases the GIL. Call
        :meth:`finish_hashing` before using ``sha256_copy``.
        """
        out = {role: self.read(role) for role in ("db", "wal", "shm", "journal")}
        pending = [(self.files[role], out[role]) for role in out
                   if role in self.files and not self.files[role].sha256_copy]
        if pending:
            def work() -> None:
                for f, data in pending:
                    f.sha256_copy = hashlib.sha256(data).hexdigest()

            self._hashing = threading.Thread(target=work, name="forensics-hash-copies", daemon=True)
            self._hashing.start()
        return out

    def finish_hashing(self) -> None:
        """Wait for the hashes :meth:`read_all` started."""
        thread = self._hashing
        if thread is not None:
            thread.join()
            self._hashing = None


_HASH_CHUNK = 8 << 20  # large reads: each one hands the GIL back and forth (this runs in a thread)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    """Copy bytes and hash them in one read of the original (one pass, no SQLite).

    A thread reads the next chunks while this one hashes and writes the last (reads, hashing and
    writes all release the GIL), so a file that is not in the page cache is read from disk while
    the rest of the work goes on.
    """
    h = hashlib.sha256()
    size = 0
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def read_ahead(fin: Any) -> None:
        try:
            while not stop.is_set() and (chunk := fin.read(_HASH_CHUNK)):
                chunks.put(chunk)
            chunks.put(b"")
        except BaseException as exc:  # noqa: BLE001 - handed to the copying thread, which raises it
            chunks.put(exc)

    with open(src, "rb") as fin, open(dst, "xb") as fout:
        reader = threading.Thread(target=read_ahead, args=(fin,), name="forensics-read-ahead", daemon=True)
        reader.start()
        try:
            while True:
                chunk = chunks.get()
                if isinstance(chunk, BaseException):
                    raise chunk
                if not chunk:
                    break
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
        finally:
            stop.set()
            while reader.is_alive():  # never leave the reader blocked on a full queue
                try:
                    chunks.get_nowait()
                except queue.Empty:
                    reader.join(0.01)
    return h.hexdigest(), size


def prepare_case_dir(case_dir: Path) -> Path:
    """Create the case folder; refuse one that already holds a case, so nothing is overwritten."""
    case_dir = Path(case_dir)
    if case_dir.exists():
        if not case_dir.is_dir():
            raise ForensicsError(f"case folder {case_dir} exists and is not a folder")
        if any(case_dir.iterdir()):
            raise ForensicsError(f"case folder {case_dir} is not empty; choose a new one")
    try:
        (case_dir / "evidence").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ForensicsError(f"cannot create case folder {case_dir}: {exc}") from exc
    return case_dir


def collect(path: Path, case_dir: Path, *, hash_copies: bool = True) -> Evidence:
    """Copy ``path`` and its ``-wal``, ``-shm``, ``-journal`` siblings into ``case_dir/evidence``.

    The copies are made read-only and keep the originals' times, so later tools see the same facts.
    Each original is hashed while it is copied (one read). Each copy is hashed by reading it back:
    here, or with ``hash_copies=False`` by :meth:`Evidence.read_all` when the analysis reads the
    copies anyway (``sha256_copy`` stays empty until then).
    """
    path = Path(path)
    if not path.exists():
        raise ForensicsError(f"no such file: {path}")
    if not path.is_file():
        raise ForensicsError(f"not a regular file: {path}")
    case_dir = prepare_case_dir(case_dir)
    evidence = Evidence(case_dir=case_dir, collected_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    candidates = [("db", path)] + [(role, path.with_name(path.name + "-" + role)) for role in SIBLINGS]
    for role, src in candidates:
        if not src.is_file():
            continue
        dst = case_dir / "evidence" / src.name
        try:
            st = os.stat(src)
            digest, size = _copy_hashing(src, dst)
        except OSError as exc:
            if role == "db":
                raise ForensicsError(f"cannot read {src}: {exc}") from exc
            continue  # a sibling that vanished while copying (a live writer closed) is simply absent
        shutil.copystat(src, dst)
        os.chmod(dst, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        evidence.files[role] = EvidenceFile(role, str(src.resolve()), str(dst), size, digest,
                                            sha256_file(dst) if hash_copies else "", st.st_mtime_ns, st.st_ctime_ns)
    return evidence


def make_work_copy(evidence: Evidence) -> Path:
    """A second copy for SQLite (integrity_check may checkpoint or roll back: that is allowed here)."""
    work = evidence.case_dir / "work"
    work.mkdir(exist_ok=True)
    for f in evidence.files.values():
        dst = work / Path(f.copy).name
        shutil.copyfile(f.copy, dst)
        os.chmod(dst, stat.S_IRUSR | stat.S_IWUSR)
    return work / Path(evidence.db.copy).name


def verify_originals(evidence: Evidence) -> list[str]:
    """Hash the originals again; return one message per file that changed (empty: all unchanged)."""
    changed: list[str] = []
    for f in evidence.files.values():
        try:
            f.sha256_after = sha256_file(Path(f.original))
            f.mtime_after_ns = os.stat(f.original).st_mtime_ns
        except OSError as exc:
            changed.append(f"{f.original}: cannot be read any more ({exc})")
            continue
        if not f.unchanged:
            changed.append(f"{f.original} changed during the analysis (another program is writing to it); "
                           "the copy is what was analysed")
    return changed
