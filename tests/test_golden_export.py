"""The repository's exports/demo/ is exactly the export of the deterministic demo dataset."""

from __future__ import annotations

from pathlib import Path

from bakestore.demo import export_golden

GOLDEN = Path(__file__).resolve().parents[1] / "exports" / "demo"


def test_golden_export_regenerates_byte_for_byte(tmp_path: Path) -> None:
    fresh = export_golden(tmp_path / "demo")
    golden_files = sorted(p.name for p in GOLDEN.iterdir())
    assert sorted(p.name for p in fresh.iterdir()) == golden_files
    assert "manifest.json" in golden_files and len(golden_files) == 57  # 56 tables + manifest
    for name in golden_files:
        assert (fresh / name).read_bytes() == (GOLDEN / name).read_bytes(), f"{name} differs (run `make golden`)"


def test_golden_export_restores_and_exports_identically(tmp_path: Path) -> None:
    from bakestore.store import Store

    from .conftest import DEVICE_A

    with Store(tmp_path / "restored.db", device_id=DEVICE_A) as store:
        store.restore(GOLDEN)
        again = store.export(tmp_path / "out", name="demo")
    for path in GOLDEN.iterdir():
        assert (again.path / path.name).read_bytes() == path.read_bytes(), path.name
