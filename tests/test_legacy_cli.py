"""``bakestore import-legacy`` through click's CliRunner: report, diff, confirmation, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bakestore import Store
from bakestore.cli import main

from .conftest import LEGACY_SAMPLES as LEGACY

SINGLE = LEGACY / "sample_single_v4.json"
MINIMAL = LEGACY / "sample_data_min.json"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKESTORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BAKESTORE_DB", raising=False)


def run(db: Path, *args: str, input: str | None = None) -> Result:  # noqa: A002
    return CliRunner().invoke(main, ["--db", str(db), "import-legacy", *args], input=input)


def counts(db: Path) -> dict[str, int]:
    with Store(db, device_id="5" * 32) as store:
        return store.counts()


def test_yes_imports_and_prints_report_and_diff(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    result = run(db, str(SINGLE), "--yes")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "BakeTracker single-file v4.1 JSON (restore)" in out
    assert "event_recipient_packages" in out and "0 → 1" in out
    assert "legacy import done" in out and "restore point:" in out
    assert counts(db)["purchases"] == 2


def test_without_yes_it_asks_and_no_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    assert run(db, str(SINGLE), "--yes").exit_code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    declined = run(db, str(SINGLE), input="n\n")
    assert declined.exit_code == 1
    assert "Apply this legacy import?" in declined.output and "cancelled; nothing was changed" in declined.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    from bakestore import audit

    assert next(audit.read(db))["outcome"] == "cancelled"  # a "no" leaves a trace too
    accepted = run(db, str(SINGLE), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "legacy import done" in accepted.stdout and counts(db)["recipients"] == 1


def test_end_of_input_at_the_prompt_is_a_no_audited_as_cancelled(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    assert run(db, str(SINGLE), "--yes").exit_code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    declined = run(db, str(SINGLE), input="")  # EOF at "Apply this legacy import?" (as Ctrl+D; Ctrl+C alike)
    assert declined.exit_code == 1
    assert "cancelled; nothing was changed" in declined.output and "Abort" not in declined.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    from bakestore import audit

    assert next(audit.read(db))["outcome"] == "cancelled"


def test_dry_run_and_json(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    result = run(db, str(SINGLE), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["result"]["dry_run"] is True and data["result"]["diff"]["suppliers"]["added"] == 2
    assert {e["entity"]: e["imported"] for e in data["report"]["entities"]}["purchases"] == 2
    assert counts(db)["suppliers"] == 0
    usage = run(db, str(SINGLE), "--json")
    assert usage.exit_code == 2 and "--json needs --yes or --dry-run" in usage.output


def test_refusal_prints_the_report_and_one_error_line(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    result = run(db, str(MINIMAL), "--yes")
    assert result.exit_code == 1
    assert result.stderr.count("Error: ") == 1
    assert "Error: sample_data_min.json: 50 ingredient slugs referenced but not in the file" in result.stderr
    assert "108 record(s) refused" in result.stderr and "… and 88 more" in result.stderr
    as_json = run(db, str(MINIMAL), "--yes", "--json")
    assert as_json.exit_code == 1
    assert len(json.loads(as_json.stdout)["report"]["entities"][0]["refusals"]) == 50


def test_merge_and_skip_invalid_flags(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with Store(db, device_id="5" * 32) as store:
        store.insert("ingredients", {"slug": "flour_all_purpose", "display_name": "AP flour", "category": "Flour"})
    result = run(db, str(MINIMAL), "--merge", "--skip-invalid", "--yes")
    assert result.exit_code == 0, result.output
    assert "legacy merge done" in result.stdout and "record(s) skipped" in result.stdout
    after = counts(db)
    assert after["products"] == 1 and after["events"] == 4
