"""Performance paths of the restore pipeline keep its behaviour: the diff that runs beside the
fresh file's checks is the same diff, and a failure there still removes the fresh file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakestore import restore
from bakestore.exports import ExportFolderSource
from bakestore.store import Store

from .conftest import DEVICE_A
from .test_exports import leftovers, populate_every_table


def _export(tmp_path: Path) -> Path:
    with Store(tmp_path / "src.db", device_id=DEVICE_A) as store:
        populate_every_table(store, n=2)
        return store.export(tmp_path, name="good").path


def test_the_diff_beside_the_checks_equals_a_diff_after_them(tmp_path: Path) -> None:
    export = _export(tmp_path)
    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        populate_every_table(store, n=1)
        result = store.restore(export, dry_run=True, allow_shrink=True)
        source = ExportFolderSource(export)
        source.verify()
        page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
        fresh = restore.build_fresh(store.path, source, page_size=page_size, meta={}, registry=store.registry)
        try:
            expected = restore.diff_databases(store.path, fresh.path, store.registry)
        finally:
            restore._remove_db_files(fresh.path)
    assert {t: d.as_dict() for t, d in result.diff.items()} == {t: d.as_dict() for t, d in expected.items()}
    assert any(not d.unchanged for d in result.diff.values())


def test_a_failure_beside_the_checks_removes_the_fresh_file(tmp_path: Path) -> None:
    export = _export(tmp_path)
    source = ExportFolderSource(export)
    source.verify()
    live = tmp_path / "live.db"
    Store(live, device_id=DEVICE_A).close()

    def fails(path: Path) -> None:
        raise RuntimeError("diff failed")

    with pytest.raises(RuntimeError, match="diff failed"):
        restore.build_fresh(live, source, page_size=4096, meta={}, alongside=fails)
    assert leftovers(tmp_path) == []


def test_undo_uses_the_diff_beside_the_checks(tmp_path: Path) -> None:
    export = _export(tmp_path)
    with Store(tmp_path / "live.db", device_id=DEVICE_A) as store:
        populate_every_table(store, n=1)
        before = {t: store.count(t) for t in restore._live_counts(store)}
        store.restore(export, allow_shrink=True)
        result = store.undo()
        assert result.counts_after == before
        assert {t: store.count(t) for t in before} == before
