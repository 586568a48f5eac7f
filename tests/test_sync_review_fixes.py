"""Sync fixes found in review: an undone sync stays undone, a first sync keeps this device's own
edits to seeded rows, a bad line from one device does not block the others, UNIQUE clashes never
hide user data, and a refused sync leaves no restore point behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from bakestore import audit
from bakestore.store import Store
from bakestore.sync import sync
from tests import test_sync as base
from tests.conftest import DEVICE_A, DEVICE_B, db_fingerprint

# The two-device fixtures of tests/test_sync.py.
shared = base.shared
make_store = base.make_store
pair = base.pair
exchange = base.exchange


def _generation(store: Store) -> str | None:
    row = store.db.execute("SELECT value FROM _bakestore_meta WHERE key = 'sync_generation'").fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- finding 1: undo of a sync


@pytest.mark.parametrize("swap", ["rename", "backup-api"])
def test_undoing_a_sync_and_syncing_again_propagates_the_undo(pair: tuple[Store, Store], shared: Path,
                                                              tmp_path: Path, swap: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The restore point a sync takes holds the previous sync generation; the fast (rename) undo
    made it live as it was, so the next sync ran as a "recovery" without a baseline and the
    merged rows came straight back."""
    if swap == "backup-api":
        monkeypatch.setenv("BAKESTORE_NO_RENAME_SWAP", "1")
    a, b = pair
    row = a.insert("suppliers", {"name": "Acme", "slug": "acme", "notes": "A's notes"})
    exchange([a, b], shared)
    b.update("suppliers", row["id"], {"notes": "B overwrote this"})
    sync(b, shared)
    applied = sync(a, shared)
    assert applied.restore_point is not None and a.get("suppliers", row["id"])["notes"] == "B overwrote this"
    a.undo()
    assert next(audit.read(a.path))["details"].get("swap") == ("rename" if swap == "rename" else None)
    assert a.get("suppliers", row["id"])["notes"] == "A's notes"
    assert _generation(a) is None  # "restored or replaced", whichever way the file became live
    report = sync(a, shared)
    assert report.mode == "baseline" and report.captured["minted_versions"] == 1
    assert a.get("suppliers", row["id"])["notes"] == "A's notes", "the undone sync came back"
    sync(b, shared)
    assert b.get("suppliers", row["id"])["notes"] == "A's notes", "the undo did not reach the other device"
    base.assert_converged([a, b], tmp_path)
