"""Static checks that catch whole classes of bugs before a user does (a NameError in a rarely taken
branch, a leftover import, a value that can be None where it is used): pyflakes over the package,
the tests and the benchmarks, and mypy over the package, must report nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_reports_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "pyflakes", "bakestore", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "" and result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_errors_in_the_package(tmp_path: Path) -> None:
    # The package ships py.typed: its annotations are a promise to the people who import it.
    result = subprocess.run([sys.executable, "-m", "mypy", "bakestore", "--cache-dir", str(tmp_path / "cache")],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
