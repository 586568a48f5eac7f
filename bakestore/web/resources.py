"""Where the UI's templates and static files are: inside the installed ``bakestore.ui`` package."""

from __future__ import annotations

import importlib.resources
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def ui_dir() -> Path:
    root = importlib.resources.files("bakestore.ui")
    path = Path(str(root))
    if not (path / "templates").is_dir():  # pragma: no cover - only for zipped installs
        raise FileNotFoundError(f"bakestore.ui templates not found under {path}")
    return path


def templates_dir() -> Path:
    return ui_dir() / "templates"


def static_dir() -> Path:
    return ui_dir() / "static"
