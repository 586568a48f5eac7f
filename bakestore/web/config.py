"""The UI's configuration: which database it works on and where exports and cases go.

It travels inside Datasette's metadata as the ``bakestore`` plugin configuration (built by
:func:`bakestore.web.server.build_datasette`), so the plugin needs no global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UIError


def default_case_dir(db_path: Path) -> Path:
    """Forensics case folders made from the UI: ``<db name>-forensics`` next to the database."""
    return db_path.with_name(db_path.stem + "-forensics")


@dataclass(frozen=True)
class UIConfig:
    db_path: Path
    export_dir: Path
    case_root: Path
    demo: bool = False
    live_db: str | None = None
    audit_db: str | None = None

    @classmethod
    def from_datasette(cls, datasette: Any) -> "UIConfig":
        cached = getattr(datasette, "_bakestore_ui_config", None)
        if cached is not None:
            return cached
        settings = datasette.plugin_config("bakestore") or {}
        if not settings.get("db"):
            raise UIError("the bakestore UI was started without a database (plugin configuration 'db')")
        db_path = Path(settings["db"])
        from ..paths import default_export_dir

        config = cls(db_path=db_path,
                     export_dir=Path(settings.get("export_dir") or default_export_dir(db_path)),
                     case_root=Path(settings.get("case_root") or default_case_dir(db_path)),
                     demo=bool(settings.get("demo")), live_db=settings.get("live_db"),
                     audit_db=settings.get("audit_db"))
        datasette._bakestore_ui_config = config
        return config

    def plugin_config(self) -> dict[str, Any]:
        return {"ui": True, "local_only": True, "db": str(self.db_path), "export_dir": str(self.export_dir),
                "case_root": str(self.case_root), "demo": self.demo, "live_db": self.live_db,
                "audit_db": self.audit_db}
