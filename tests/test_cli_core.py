"""Core CLI commands with click's CliRunner, including bad input that must change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bakestore.cli import main
from bakestore.store import Store

from .conftest import DEVICE_A, db_fingerprint


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    with Store(path, device_id=DEVICE_A) as store:
        flour = store.insert("ingredients", {"display_name": "Flour", "slug": "flour", "category": "Flour"})
        store.insert("products", {"ingredient_id": flour["id"], "package_unit": "lb", "package_unit_quantity": 5.0})
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def invoke(runner: CliRunner, db: Path, *args: str, input: str | None = None):  # noqa: A002
    return runner.invoke(main, ["--db", str(db), *args], input=input)


def test_init_creates_and_is_idempotent(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = invoke(runner, db, "init")
    assert result.exit_code == 0, result.output
    assert "created" in result.output and db.exists()
    again = invoke(runner, db, "init")
    assert again.exit_code == 0 and "already exists" in again.output


def test_db_from_environment(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKESTORE_DB", str(tmp_path / "env.db"))
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_default_location_guard_reaches_the_cli(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAKESTORE_HOME")
    result = runner.invoke(main, ["tables"])
    assert result.exit_code == 1
    assert "under pytest" in result.output and "Traceback" not in result.output


def test_doctor_ok_and_json(runner: CliRunner, live: Path) -> None:
    result = invoke(runner, live, "doctor")
    assert result.exit_code == 0 and "healthy" in result.output
    data = json.loads(invoke(runner, live, "doctor", "--json").output)
    assert data["ok"] is True
    assert {c["name"] for c in data["checks"]} >= {"integrity_check", "foreign_key_check", "registry_vs_schema",
                                                     "journal_mode", "page_size", "sqlite_version"}


def test_doctor_fails_on_drift(runner: CliRunner, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        store.db.execute("CREATE TABLE sneaky (x TEXT)")
    result = invoke(runner, live, "doctor")
    assert result.exit_code == 1
    assert "sneaky" in result.output


def test_doctor_on_missing_db_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, tmp_path / "nope.db", "doctor")
    assert result.exit_code == 1 and "no such database" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_tables_lists_every_domain_table_with_counts(runner: CliRunner, live: Path) -> None:
    data = json.loads(invoke(runner, live, "tables", "--json").output)
    assert len(data) == 55
    counts = {d["table"]: d["count"] for d in data}
    assert counts["units"] == 35 and counts["ingredients"] == 1 and counts["products"] == 1
    text = invoke(runner, live, "tables").output
    assert "recipe_categories" in text and "_tombstones" not in text
    assert "_tombstones" in invoke(runner, live, "tables", "--all").output


def test_rows_json_and_ndjson(runner: CliRunner, live: Path) -> None:
    rows = json.loads(invoke(runner, live, "rows", "ingredients", "--json").output)
    assert [r["slug"] for r in rows] == ["flour"]
    lines = invoke(runner, live, "rows", "units", "--limit", "3").output.strip().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["code"] for line in lines)
    result = invoke(runner, live, "rows", "units", "--where", "code = 'lb'", "--json")
    assert [r["code"] for r in json.loads(result.output)] == ["lb"]


def test_insert_json_ndjson_and_upsert(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    ndjson = tmp_path / "r.ndjson"
    ndjson.write_text('{"name": "Ann"}\n{"name": "Bob", "household_name": "Smith"}\n', encoding="utf-8")
    result = invoke(runner, live, "insert", "recipients", str(ndjson))
    assert result.exit_code == 0, result.output
    assert "inserted 2" in result.output
    result = invoke(runner, live, "upsert", "ingredients", "-",
                    input='{"slug": "flour", "display_name": "Flour", "category": "Flour", "notes": "sift"}')
    assert result.exit_code == 0, result.output
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "flour")["notes"] == "sift"
        assert store.count("ingredients") == 1 and store.count("recipients") == 2


BAD_INPUTS = [
    ("insert", "ingredients", '{"display_name": "X", "category": "c", "hierarchy_level": "two"}',
     "ingredients.hierarchy_level"),
    ("insert", "ingredients", '{"display_name": "X", "category": "c", "colour": "red"}', "unknown column 'colour'"),
    ("insert", "widgets", '{"a": 1}', "unknown table 'widgets'"),
    ("insert", "products", '{"ingredient_id": "01234567-89ab-7def-8123-456789abcdef", "package_unit": "lb", '
     '"package_unit_quantity": 1}', "products.ingredient_id: no ingredients row"),
    ("insert", "ingredients", '{"display_name": "Flour", "category": "c", "slug": "flour2"}', "same"),
    ("insert", "ingredients", '[{"display_name": "A", "category": "c"}, {"display_name": "B"}]', "record 2"),
    ("insert", "ingredients", '{"display_name": "A", "category": ', "invalid JSON"),
    ("insert", "ingredients", '', "empty input"),
    ("insert", "ingredients", '[1, 2]', "expected an object"),
    ("upsert", "ingredients", '{"slug": "flour", "display_name": "Flour", "category": "c", "hierarchy_level": 9}',
     "ingredients.hierarchy_level"),
    ("delete", "ingredients", None, "no row with id or slug 'nope'"),
]


@pytest.mark.parametrize("command,table,payload,message", BAD_INPUTS)
def test_bad_input_is_one_clear_line_and_changes_nothing(runner: CliRunner, live: Path, command: str, table: str,
                                                         payload: str | None, message: str) -> None:
    before = db_fingerprint(live)
    args = [command, table, "nope"] if payload is None else [command, table, "-"]
    result = invoke(runner, live, *args, input=payload)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert db_fingerprint(live) == before


def test_non_utf8_input_is_refused(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"name": "\xff"}')
    before = db_fingerprint(live)
    result = invoke(runner, live, "insert", "recipients", str(bad))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert db_fingerprint(live) == before


def test_delete_by_natural_key_reports_cascade(runner: CliRunner, live: Path) -> None:
    result = invoke(runner, live, "delete", "ingredients", "flour", input="y\n")
    assert result.exit_code == 0, result.output
    assert "and products" in result.output.split("Delete these rows?")[0]  # shown before the question
    assert "also deleted products" in result.output
    data = json.loads(invoke(runner, live, "rows", "_tombstones", "--json").output)
    assert {d["table_name"] for d in data} == {"ingredients", "products"}


def test_usage_errors_exit_2(runner: CliRunner, live: Path) -> None:
    assert invoke(runner, live, "rows").exit_code == 2
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2


def test_version_and_module_entry_point(runner: CliRunner) -> None:
    import subprocess
    import sys

    from bakestore import __version__

    assert __version__ in runner.invoke(main, ["--version"]).output
    out = subprocess.run([sys.executable, "-m", "bakestore", "--help"], capture_output=True, text=True, check=True)
    assert "restore" in out.stdout and "doctor" in out.stdout


def test_a_file_that_is_not_a_database_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"this is not a database at all, just some text\n" * 100)
    before = junk.read_bytes()
    result = invoke(runner, junk, "tables")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "not a usable SQLite database" in result.output
    assert junk.read_bytes() == before


def test_sqlite_errors_in_user_sql_are_one_line(runner: CliRunner, live: Path) -> None:
    result = invoke(runner, live, "rows", "units", "--where", "1=1; DROP TABLE units")
    assert result.exit_code == 1 and result.output.startswith("Error: SQLite:")
    assert "Traceback" not in result.output


def test_rows_output_can_be_edited_and_upserted_back(runner: CliRunner, live: Path) -> None:
    row = json.loads(invoke(runner, live, "rows", "ingredients", "--json").output)[0]
    row["notes"] = "edited"
    result = invoke(runner, live, "upsert", "ingredients", "-", input=json.dumps(row))
    assert result.exit_code == 0, result.output
    after = json.loads(invoke(runner, live, "rows", "ingredients", "--json").output)[0]
    assert after["notes"] == "edited" and after["row_version"] > row["row_version"]


def test_init_and_demo_speak_json(runner: CliRunner, tmp_path: Path) -> None:
    made = json.loads(invoke(runner, tmp_path / "a.db", "init", "--json").output)
    assert made["created"] is True and made["counts"]["units"] == 35
    again = json.loads(invoke(runner, tmp_path / "a.db", "init", "--json").output)
    assert again["created"] is False
    demo = json.loads(invoke(runner, tmp_path / "demo.db", "demo", "--json").output)
    assert demo["scale"] == 1 and demo["total_rows"] == sum(demo["counts"].values()) > 5000
