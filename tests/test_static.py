"""Static checks that catch whole classes of bugs before a user does (a NameError in a rarely taken
branch, a leftover import): pyflakes over the package and the tests must report nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_reports_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "pyflakes", "bakestore", "tests"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "" and result.returncode == 0, result.stdout + result.stderr
