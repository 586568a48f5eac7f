"""Small helpers shared by the benchmarks: timing, peak memory, and "ratio to the floor" reports.

Every bakestore benchmark prints its own time next to a *floor* measured in the same run on the
same machine (the simplest way SQLite can do the same work), because absolute numbers vary
between machines while the ratio says how much overhead bakestore adds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


@dataclass
class Timing:
    """Elapsed wall-clock seconds of a ``with timer():`` block (``seconds`` is set on exit)."""

    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)


@contextlib.contextmanager
def timer() -> Iterator[Timing]:
    """``with timer() as t: ...`` then read ``t.seconds``."""
    timing = Timing(_start=time.perf_counter())
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - timing._start


class Stopwatch:
    """Accumulates only the timed parts of a loop (e.g. writes, not the reads that feed them)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rate(rows: int, seconds: float) -> str:
    """Rows per second, human-readable."""
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "inf rows/s"


def print_header(title: str) -> None:
    """The benchmark's name plus the facts needed to compare runs (Python, SQLite, machine)."""
    from bakestore.sqlite import sqlite3

    print(f"== {title}")
    print(f"   python {platform.python_version()}, {sqlite3.__name__} (SQLite {sqlite3.sqlite_version}), "
          f"{platform.machine()}, {os.cpu_count()} CPUs")


def print_line(label: str, seconds: float, rows: int | None = None, note: str = "") -> None:
    """One aligned result line: label, seconds, optional rows/s, optional note."""
    speed = f"  {rate(rows, seconds):>18}" if rows is not None else ""
    print(f"   {label:<28} {seconds:9.2f} s{speed}{('  ' + note) if note else ''}")


def print_ratio(label: str, seconds: float, floor_seconds: float) -> float:
    """Print and return ``seconds / floor_seconds`` (how many times slower than the floor)."""
    ratio = seconds / floor_seconds if floor_seconds > 0 else float("inf")
    print(f"   {label:<28} ratio = {ratio:.2f}x the floor")
    return ratio


@contextlib.contextmanager
def scratch_dir(prefix: str = "bakestore-bench-", keep: bool = False) -> Iterator[Path]:
    """A temporary directory for benchmark files, removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
