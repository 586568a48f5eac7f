"""Run every benchmark in this folder with its default (quick) size and print what each reports.

Each ``bench_*.py`` measures its own floor in the same run and prints ratios against it, so the
numbers mean the same on any machine. Pass sizes to a single script for the full-size runs
documented in docs/benchmarks.md (e.g. ``python bench/bench_restore.py --rows 1000000``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failures = 0
    for script in sorted(here.glob("bench_*.py")):
        print(f"=== {script.name}", flush=True)
        started = time.monotonic()
        completed = subprocess.run([sys.executable, str(script), *sys.argv[1:]], check=False)
        print(f"--- {script.name}: exit {completed.returncode} in {time.monotonic() - started:.1f}s", flush=True)
        failures += completed.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
