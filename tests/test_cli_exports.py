"""The backup commands through click's CliRunner: export, restore, merge, restore-points, undo,
reset, audit. Every destructive one previews, asks, and changes nothing when told no."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bakestore import audit
from bakestore.cli import main
from bakestore.store import Store

from .conftest import DEVICE_A, db_fingerprint


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    with Store(path, device_id=DEVICE_A) as store:
        flour = store.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
        store.insert("products", {"ingredient_id": flour["id"], "package_unit": "lb", "package_unit_quantity": 5.0})
        store.insert_many("recipients", [{"name": f"R{i}"} for i in range(5)])
    return path


def run(runner: CliRunner, db: Path, *args: str, input: str | None = None):  # noqa: A002
    return runner.invoke(main, ["--db", str(db), *args], input=input)


def _export(runner: CliRunner, live: Path, tmp_path: Path) -> Path:
    result = run(runner, live, "export", "--to", str(tmp_path / "exports"), "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.output)["path"])


def test_export_writes_a_verified_folder(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    folder = _export(runner, live, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {t["name"]: t["rows"] for t in manifest["tables"]}["recipients"] == 5
    text = run(runner, live, "export").output
    assert "exported" in text and "live-exports" in text


def test_export_retention_option(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    for _ in range(3):
        assert run(runner, live, "export", "--to", str(tmp_path / "x"), "--keep-last", "2",
                   "--keep-daily", "0").exit_code == 0
    assert len([p for p in (tmp_path / "x").iterdir() if not p.name.startswith(".")]) == 2


def _tree(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("args", [("--keep-last", "-5"), ("--keep-last", "0"),
                                  ("--keep-last", "2", "--keep-daily", "-1")])
def test_export_retention_refuses_bad_counts_and_deletes_nothing(runner: CliRunner, live: Path, tmp_path: Path,
                                                                 args: tuple[str, ...]) -> None:
    # Before the fix -5 pruned everything but the newest and 0 pruned nothing, both with exit 0.
    for _ in range(3):
        assert run(runner, live, "export", "--to", str(tmp_path / "x")).exit_code == 0
    before, db_before = _tree(tmp_path / "x"), db_fingerprint(live)
    result = run(runner, live, "export", "--to", str(tmp_path / "x"), *args)
    assert result.exit_code != 0
    assert "Invalid value" in result.output and args[-2] in result.output
    assert _tree(tmp_path / "x") == before, "no export written and nothing pruned"
    assert db_fingerprint(live) == db_before


def test_restore_asks_and_no_changes_nothing(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    folder = _export(runner, live, tmp_path)
    with Store(live, device_id=DEVICE_A) as store:
        store.insert("recipients", {"name": "added after the export"})
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db_fingerprint(live)
    result = run(runner, live, "restore", str(folder), input="n\n")
    assert result.exit_code == 1
    assert "recipients" in result.output and "cancelled" in result.output
    assert db_fingerprint(live) == before
    assert next(audit.read(live))["outcome"] == "cancelled"


def test_restore_asks_and_yes_applies_what_was_shown(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    folder = _export(runner, live, tmp_path)
    with Store(live, device_id=DEVICE_A) as store:
        store.insert("recipients", {"name": "added after the export"})
    result = run(runner, live, "restore", str(folder), input="y\n")
    assert result.exit_code == 0, result.output
    import re

    assert re.search(r"recipients\s+6 → 5\s", result.output), result.output
    assert "restore done" in result.output
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("recipients") == 5
    assert next(audit.read(live))["outcome"] == "done"


def test_restore_dry_run_and_json(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    folder = _export(runner, live, tmp_path)
    before = db_fingerprint(live)
    result = run(runner, live, "restore", str(folder), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] is True and data["diff"]["recipients"]["after"] == 5
    assert db_fingerprint(live) == before
    usage = run(runner, live, "restore", str(folder), "--json")
    assert usage.exit_code == 2 and "--json needs --yes or --dry-run" in usage.output


def test_restore_of_a_bad_source_is_one_line(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    folder = _export(runner, live, tmp_path)
    (folder / "recipients.ndjson").write_text('{"name": "broken"\n', encoding="utf-8")
    before = db_fingerprint(live)
    result = run(runner, live, "restore", str(folder), "--yes")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "recipients.ndjson" in errors[0]
    assert db_fingerprint(live) == before


def test_undo_and_restore_points(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    assert "no restore points yet" in run(runner, live, "restore-points").output
    folder = _export(runner, live, tmp_path)
    with Store(live, device_id=DEVICE_A) as store:
        store.insert("recipients", {"name": "extra"})
    assert run(runner, live, "restore", str(folder), "--yes").exit_code == 0
    points = json.loads(run(runner, live, "restore-points", "--json").output)
    assert len(points) == 1 and points[0]["path"].endswith("-restore.db")
    result = run(runner, live, "undo", "--yes")
    assert result.exit_code == 0, result.output
    # Nobody else had the file open: the fast undo, which says its diff is by counts only.
    assert "note: fast undo" in result.output and "recipients" in result.output
    recipients = next(line for line in result.output.splitlines() if line.startswith("recipients"))
    assert recipients.split()[1:4] == ["5", "→", "6"] and recipients.split()[4:] == ["?", "?", "?"]
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("recipients") == 6
    # Interactive: the full diff is shown before the question, then the same fast swap.
    again = run(runner, live, "undo", input="y\n")
    assert again.exit_code == 0, again.output
    row = next(line for line in again.output.splitlines() if line.startswith("recipients"))
    assert row.split()[1:] == ["6", "→", "5", "0", "1", "0"]


def test_reset_is_refused_then_allowed(runner: CliRunner, live: Path) -> None:
    before = db_fingerprint(live)
    refused = run(runner, live, "reset", "--yes")
    assert refused.exit_code == 1 and "would empty" in refused.output
    assert db_fingerprint(live) == before
    done = run(runner, live, "reset", "--yes", "--allow-shrink")
    assert done.exit_code == 0, done.output
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("ingredients") == 0 and store.count("units") == 35


def test_merge_previews_and_applies(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with Store(other, device_id="b" * 32) as store:
        store.insert("recipients", {"name": "from the other store"})
        folder = store.export(tmp_path / "o").path
    result = run(runner, live, "merge", str(folder), input="y\n")
    assert result.exit_code == 0, result.output
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("recipients") == 6


def test_audit_lists_every_outcome(runner: CliRunner, live: Path) -> None:
    run(runner, live, "reset", "--yes")
    text = run(runner, live, "audit").output
    assert "reset" in text and "refused" in text
    data = json.loads(run(runner, live, "audit", "--json").output)
    assert data[0]["operation"] == "reset" and data[0]["outcome"] == "refused"
