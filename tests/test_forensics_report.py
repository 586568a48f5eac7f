"""The report, findings, case.db, the CLI command and --compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from bakestore.cli.forensics import commands, forensics
from bakestore.errors import ForensicsError
from bakestore.forensics import analyze, compare, render_text
from bakestore.sqlite import sqlite3
from tests.forensics_corpus import build_incident, build_wal


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("incident")
    db = build_incident(root / "db")
    return root, analyze(db.path, root / "case")


def test_report_json_has_the_documented_keys(incident: tuple[Path, Any]) -> None:
    root, report = incident
    doc = json.loads((root / "case" / "report.json").read_text())
    assert {"file", "header", "pages", "integrity", "wal", "tables", "timeline", "findings", "recovered"} <= set(doc)
    assert doc["format"] == {"name": "bakestore-forensics-report", "version": 1}
    h = doc["header"]
    for key in ("page_size", "page_count", "page_count_from_file", "file_change_counter", "version_valid_for",
                "schema_cookie", "freelist_trunk", "freelist_count", "encoding", "user_version",
                "application_id", "auto_vacuum", "reserved_bytes"):
        assert key in h
    assert doc["pages"]["free_pages"] > 0 and 0 < doc["pages"]["free_ratio"] < 1
    assert set(doc["pages"]["by_kind"]) >= {"table_leaf", "freelist_leaf"}
    for item in doc["recovered"]:
        assert {"table", "source", "page", "offset", "rowid", "values", "confidence"} <= set(item)
    assert (root / "case" / "report.md").read_text().startswith("# Forensic report: bake_tracker.db")


def test_incident_findings_in_plain_words(incident: tuple[Path, Any]) -> None:
    _, report = incident
    kinds = {f["kind"]: f for f in report.findings}
    assert "free_pages" in kinds and "% " not in kinds["free_pages"]["title"]
    wipe = kinds["wipe_fingerprint"]
    assert set(wipe["data"]["empty"]) == {"recipes", "recipe_categories", "ingredients", "products",
                                          "recipe_ingredients"} - {"recipe_categories"}
    assert {"units", "materials", "material_categories", "recipe_categories"} <= set(wipe["data"]["full"])
    reseeded = [f for f in report.findings if f["kind"] == "reseeded"]
    assert [f["tables"] for f in reseeded] == [["recipe_categories"]]
    assert "hours after the newest row of" in reseeded[0]["detail"]
    assert "All 7 rows of recipe_categories" in reseeded[0]["detail"]
    empty = {f["tables"][0] for f in report.findings if f["kind"] == "empty_table"}
    assert {"recipes", "products", "ingredients", "recipe_ingredients"} <= empty
    assert set(wipe["data"]["with_evidence"]) == empty
    sd = kinds["secure_delete"]
    assert sd["data"]["setting"] == "OFF"


def test_timeline_clusters(incident: tuple[Path, Any]) -> None:
    _, report = incident
    tl = report.timeline
    cols = {(c["table"], c["column"]): c for c in tl["columns"]}
    units = cols[("units", "created_at")]["live"]
    assert units["count"] == 35 and len(units["clusters"]) == 1 and units["min"] == "2026-02-07 22:37:25"
    cats = cols[("recipe_categories", "created_at")]
    assert cats["live"]["count"] == 7 and cats["live"]["min"] > "2026-02-08"
    assert cols[("ingredients", "created_at")]["recovered"]["count"] == 413
    assert len(tl["clusters"]) == 2
    assert tl["histogram"] and {"table", "hour", "state", "rows"} <= set(tl["histogram"][0])


def test_case_db_is_browsable(incident: tuple[Path, Any]) -> None:
    root, report = incident
    db = sqlite_utils.Database(root / "case" / "case.db")
    names = set(db.table_names())
    assert {"evidence", "file_info", "tables", "pages", "freelist", "wal_frames", "recovered_rows", "timeline",
            "findings"} <= names
    assert db["pages"].count == report.pages["page_count"]
    assert db["recovered_rows"].count == len(report.recovered)
    assert db["freelist"].count == report.pages["free_pages"]
    row = next(db.query("select * from recovered_rows where table_name = 'ingredients' limit 1"))
    assert json.loads(row["values_json"])[1].startswith("MK")
    db.close()


def test_blob_values_are_tagged_base64(tmp_path: Path) -> None:
    path = tmp_path / "blobs.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB NOT NULL)")
    for i in range(40):
        conn.execute("INSERT INTO photos (name, data) VALUES (?, ?)", (f"MK{i:07d}Z", bytes(range(i, i + 60))))
    conn.execute("DELETE FROM photos WHERE id > 30")
    conn.close()
    doc = analyze(path, tmp_path / "case").to_dict()
    rec = [r for r in doc["recovered"] if r["table"] == "photos"]
    assert len(rec) == 10
    assert all(set(r["values"][2]) == {"$base64"} for r in rec)
    json.dumps(doc)  # everything is JSON-safe


def test_cli_command_text_json_and_errors(incident: tuple[Path, Any], tmp_path: Path) -> None:
    root, _ = incident
    assert commands == [forensics]
    runner = CliRunner()
    db = root / "db" / "bake_tracker.db"
    res = runner.invoke(forensics, [str(db), "--case", str(tmp_path / "c1")])
    assert res.exit_code == 0, res.output
    assert "Findings" in res.output and "Recovered rows" in res.output
    res = runner.invoke(forensics, [str(db), "--case", str(tmp_path / "c2"), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["file"]["name"] == "bake_tracker.db"
    res = runner.invoke(forensics, [str(tmp_path / "nope.db"), "--case", str(tmp_path / "c3")])
    assert isinstance(res.exception, ForensicsError)
    res = runner.invoke(forensics, [])
    assert res.exit_code == 2


def test_cli_default_case_folder_is_timestamped_in_cwd(incident: tuple[Path, Any], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = incident
    db = (root / "db" / "bake_tracker.db").resolve()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(forensics, [str(db), "--integrity", "none"])
    assert res.exit_code == 0, res.output
    cases = list(tmp_path.glob("bakestore-case-*"))
    assert len(cases) == 1 and (cases[0] / "case.db").exists()


def test_compare_added_removed_changed(tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    conn = sqlite3.connect(a, isolation_level=None)
    conn.execute("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT, qty INTEGER)")
    conn.execute("CREATE TABLE logs (body TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(f"k{i}", f"item {i}", i) for i in range(50)])
    conn.executemany("INSERT INTO logs VALUES (?)", [(f"log {i}",) for i in range(5)])
    conn.close()
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    conn = sqlite3.connect(b, isolation_level=None)
    conn.execute("DELETE FROM items WHERE qty < 10")
    conn.execute("UPDATE items SET qty = qty + 100 WHERE qty >= 45")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(f"n{i}", "new", 1) for i in range(3)])
    conn.execute("CREATE TABLE extra (x)")
    conn.close()
    res = compare(a, b)
    items = res["tables"]["items"]
    assert (items["added"], items["removed"], items["changed"], items["key"]) == (3, 10, 5, "id")
    assert items["changed_examples"][0]["columns"]["qty"][1] >= 145
    assert res["tables"]["logs"]["key"] == "rowid" and res["tables"]["logs"]["added"] == 0
    assert res["tables"]["extra"]["only_in"] == "b"
    out = CliRunner().invoke(forensics, ["--compare", str(a), str(b)])
    assert out.exit_code == 0 and "| items | id | 50 | 43 | 3 | 10 | 5 |" in out.output


def test_compare_reads_wal_without_checkpointing(tmp_path: Path) -> None:
    db = build_wal(tmp_path / "w", secure_delete=True, n_recipes=100, n_big=2)
    before = db.path.with_name(db.path.name + "-wal").read_bytes()
    res = compare(db.path, db.path)
    assert res["totals"] == {"added": 0, "removed": 0, "changed": 0}
    assert db.path.with_name(db.path.name + "-wal").read_bytes() == before


def test_render_text_mentions_every_section(incident: tuple[Path, Any]) -> None:
    _, report = incident
    text = render_text(report)
    for section in ("## Header", "## Pages", "## Integrity", "## WAL", "## Tables", "## Timeline", "## Findings",
                    "## Recovered rows"):
        assert section in text
    assert "Secure delete:" in text


def test_fresh_database_raises_no_alarm(tmp_path: Path) -> None:
    """Empty tables alone are not a wipe: a new database has them too."""
    path = tmp_path / "fresh.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE units (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);
        CREATE TABLE recipes (id INTEGER PRIMARY KEY, unit_id INTEGER REFERENCES units(id), name TEXT);
        CREATE TABLE products (id INTEGER PRIMARY KEY, unit_id INTEGER REFERENCES units(id), name TEXT);
        CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT);
    """)
    conn.executemany("INSERT INTO units (name, created_at) VALUES (?, '2026-02-07 22:37:25')", [("g",), ("ml",)])
    conn.commit()
    conn.close()
    report = analyze(path, tmp_path / "case")
    kinds = {f["kind"] for f in report.findings}
    assert not kinds & {"wipe_fingerprint", "empty_table", "reseeded", "recovered_rows", "free_pages"}
    assert report.pages["secure_delete"]["verdict"] in ("no deleted space", "deleted content may be recoverable")


def test_main_group_turns_forensics_error_into_one_line(tmp_path: Path) -> None:
    from bakestore import cli
    res = CliRunner().invoke(cli.main, ["forensics", str(tmp_path / "missing.db"), "--case", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert "Error: no such file" in res.output


def test_two_unrelated_tables_re_seeded_together_are_both_flagged(tmp_path: Path) -> None:
    """Compared with every other table, each of two late tables saw the other as "newest related"
    and neither was flagged (the demo benchmark's recipe_categories, re-seeded with material_categories)."""
    import sqlite3 as stdlib_sqlite3

    from bakestore.forensics import analyze

    db = tmp_path / "two.db"
    conn = stdlib_sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT);
        CREATE TABLE recipe_categories (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT);
        CREATE TABLE material_categories (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT);
    """)
    conn.executemany("INSERT INTO recipes (name, created_at) VALUES (?, ?)",
                     [(f"recipe {i}", f"2026-10-01 09:{i // 60:02d}:{i % 60:02d}") for i in range(600)])
    conn.executemany("INSERT INTO recipe_categories (name, created_at) VALUES (?, ?)",
                     [(f"category {i}", "2026-10-02 09:00:00") for i in range(8)])
    conn.executemany("INSERT INTO material_categories (name, created_at) VALUES (?, ?)",
                     [(f"material {i}", "2026-10-02 09:14:02") for i in range(5)])
    conn.commit()
    conn.close()
    report = analyze(db, tmp_path / "case", integrity="none", write=False)
    reseeded = sorted(f["tables"][0] for f in report.findings if f["kind"] == "reseeded")
    assert reseeded == ["material_categories", "recipe_categories"]
