"""docs/guarantees.md: every promise names tests, and every test it names exists.

A promise whose proof was renamed or deleted would go on reading as proved; this keeps the list
honest. ``::name`` after a ``tests/file.py::name`` refers to the same file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| ([A-Z]+\d+) \|(.*)\|(.*)\|\s*$")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        names |= {f"{cls.name}::{n.name}" for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def test_every_promise_names_tests_that_exist() -> None:
    rows = [m for line in (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8").splitlines()
            if (m := ROW.match(line))]
    assert len(rows) > 60
    missing, unproved, seen = [], [], set()
    for m in rows:
        promise_id, proof = m.group(1), m.group(3)
        assert promise_id not in seen, f"{promise_id} is listed twice"
        seen.add(promise_id)
        refs = re.findall(r"`((?:tests/[\w/]+\.py)?::[\w:\[\]-]+|tests/[\w/]+\.py)`", proof)
        if not refs:
            unproved.append(promise_id)
        current: Path | None = None
        for ref in refs:
            file_part, _, name = ref.partition("::")
            if file_part:
                current = ROOT / file_part
                if not current.is_file():
                    missing.append(f"{promise_id}: {file_part}")
                    continue
            if name and current is not None and current.is_file():
                if name.split("[")[0] not in _tests_in(current):
                    missing.append(f"{promise_id}: {current.relative_to(ROOT)}::{name}")
    assert not unproved, f"promises without a test: {unproved}"
    assert not missing, "tests named in guarantees.md that do not exist:\n" + "\n".join(missing)
