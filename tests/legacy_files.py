"""The upstream sample files and the small helpers the legacy-import tests share."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

from .conftest import LEGACY_SAMPLES

SINGLE = LEGACY_SAMPLES / "sample_single_v4.json"
FOLDER = LEGACY_SAMPLES / "sample_coordinated_backup"
MINIMAL = LEGACY_SAMPLES / "sample_data_min.json"


def single() -> dict[str, Any]:
    """A fresh copy of the v4 single-file sample, to edit."""
    return copy.deepcopy(json.loads(SINGLE.read_text(encoding="utf-8")))


def write(tmp: Path, data: Any, name: str = "file.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def edited(tmp: Path, change: Callable[[dict[str, Any]], None], name: str = "file.json") -> Path:
    """The single-file sample with ``change`` applied, written to ``tmp/name``."""
    data = single()
    change(data)
    return write(tmp, data, name)
