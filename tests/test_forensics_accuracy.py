"""Accuracy of recovery on a generated corpus with known answers (issue 5 targets).

Recall counts deleted rows whose marker bytes still exist in the evidence files; precision counts
recovered items that carry a deleted row's marker; no live row may ever be reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from bakestore.forensics import analyze
from tests.forensics_corpus import MARKER, SCENARIOS, CorpusDB, score


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[CorpusDB, dict[str, Any]]]:
    out = {}
    root = tmp_path_factory.mktemp("forensics-corpus")
    for name, build in SCENARIOS.items():
        db = build(root / name)
        report = analyze(db.path, root / name / "case", integrity="quick")
        out[name] = (db, report.to_dict())
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_recall_precision_and_no_live_rows(corpus: dict[str, Any], name: str) -> None:
    db, doc = corpus[name]
    s = score(db, doc["recovered"])
    assert s["live_reported"] == 0, s
    assert s["precision"] >= 0.98, s
    assert s["recall"] >= 0.90, s


def test_overall_accuracy(corpus: dict[str, Any]) -> None:
    found = present = tp = items = 0
    for db, doc in corpus.values():
        s = score(db, doc["recovered"])
        found, present = found + s["found"], present + s["present"]
        tp, items = tp + s["tp"], items + s["recovered_items"]
    assert present > 2500
    assert found / present >= 0.95
    assert tp / items >= 0.99


def test_secure_delete_on_leaves_nothing_in_main_file_and_verdict_says_so(corpus: dict[str, Any]) -> None:
    db, doc = corpus["rollback_on"]
    assert db.present_deleted() == set()
    assert doc["recovered"] == [] or all(r["table"].startswith("sqlite_") for r in doc["recovered"])
    assert doc["pages"]["secure_delete"]["setting"] == "ON"
    assert corpus["rollback_off"][1]["pages"]["secure_delete"]["setting"] == "OFF"


def test_sources_cover_freelist_freeblock_gap_wal_journal_superseded(corpus: dict[str, Any]) -> None:
    def sources(name: str) -> set[str]:
        doc = corpus[name][1]
        return {r["source"] for r in doc["recovered"]} | {a["source"] for r in doc["recovered"]
                                                           for a in r["also_found_in"]}

    assert {"freelist", "freeblock", "unallocated"} <= sources("rollback_off")
    assert "wal" in sources("wal_off")
    # secure_delete ON wipes the deleting page, but the un-checkpointed main-file image and
    # older WAL frames still hold the rows.
    assert {"superseded", "wal"} <= sources("wal_on")
    assert sources("persist_on") == {"journal"}


def test_overflow_rows_recovered_whole(corpus: dict[str, Any]) -> None:
    db, doc = corpus["rollback_off"]
    big = [r for r in doc["recovered"] if r["table"] == "recipes" and isinstance(r["values"][2], str)
           and len(r["values"][2]) > 5000]
    assert len(big) >= 4  # of the 6 overflow-sized rows deleted inside pages, those whose chain survives
    for r in big:
        m = MARKER.findall(r["values"][1])[0]
        assert r["values"][2].startswith(m)


def test_dropped_table_and_its_rows(corpus: dict[str, Any]) -> None:
    db, doc = corpus["rollback_off"]
    assert any(h["table"] == "events" and "CREATE TABLE events" in h["sql"] for h in doc["schema_history"])
    events = [r for r in doc["recovered"] if r["table"] == "events"]
    assert len(events) >= 190
    assert all(isinstance(r["rowid"], int) and r["values"][0] == r["rowid"] for r in events if r["rowid"])


def test_recovered_items_have_required_keys_and_rowids_where_known(corpus: dict[str, Any]) -> None:
    db, doc = corpus["wal_on"]
    assert doc["recovered"]
    for r in doc["recovered"]:
        assert {"table", "source", "page", "offset", "rowid", "values", "confidence"} <= set(r)
        assert 0 < r["confidence"] <= 1
        assert r["source"] in {"freelist", "freeblock", "unallocated", "wal", "journal", "superseded"}
    # Whole cells from older page images carry their rowid.
    assert sum(1 for r in doc["recovered"] if r["rowid"] is not None) >= 0.9 * len(doc["recovered"])


def test_deduplicated_across_sources(corpus: dict[str, Any]) -> None:
    for name in ("wal_off", "incident", "rollback_off"):
        db, doc = corpus[name]
        seen: dict[str, int] = {}
        for r in doc["recovered"]:
            for m in {m for v in r["values"] if isinstance(v, str) for m in MARKER.findall(v)}:
                seen[m] = seen.get(m, 0) + 1
        dup = {m: n for m, n in seen.items() if n > 1}
        assert not dup, (name, list(dup)[:5])


def test_utf16_database_decodes_text(corpus: dict[str, Any]) -> None:
    db, doc = corpus["rollback_off_utf16"]
    assert doc["header"]["encoding"] == "utf-16-le"
    assert any(MARKER.search(str(r["values"][1])) for r in doc["recovered"] if r["table"] == "recipes")


def test_reader_row_counts_match_sqlite(corpus: dict[str, Any]) -> None:
    for name, (db, doc) in corpus.items():
        assert doc["integrity"]["ok"] is True, name
        assert doc["integrity"]["reader_vs_sqlite_row_mismatches"] == {}, name
        for t in doc["tables"]:
            if not t["dropped"]:
                assert t["rows"] == t["rows_sqlite"], (name, t["name"])


def test_a_cut_short_copy_of_a_live_schema_row_is_not_an_earlier_schema() -> None:
    """Page 1 is rewritten on every schema change, so the gap keeps stale copies of the schema rows,
    often cut short by newer bytes; the start of the live CREATE statement is not a replaced table
    (the demo benchmark reported "units (earlier schema) was dropped or replaced" from one)."""
    from bakestore.forensics.analysis import LiveTable, dropped_schemas
    from bakestore.forensics.carve import Recovered
    from bakestore.forensics.fileformat import parse_create_table

    sql = ('CREATE TABLE "units" (\n  "id" TEXT PRIMARY KEY NOT NULL,\n  "category" TEXT NOT NULL CHECK '
           '("category" IN (\'weight\', \'volume\')),\n  "code" TEXT NOT NULL,\n  UNIQUE ("code")\n)')
    live = {"units": LiveTable(parse_create_table("units", sql, 2))}

    def schema_row(text: str) -> Recovered:
        return Recovered("sqlite_master", "unallocated", 1, 900, None, ["table", "units", "units", 2, text], 0.8,
                         "gap", partial=text != sql)

    tail = sql.index("'volume'))") + len("'volume'))")
    cuts = [sql[:tail], sql[:tail + 12], sql[:-2]]  # cut where newer bytes began; each still parses to columns
    assert all(parse_create_table("units", cut, 2).columns for cut in cuts)
    assert dropped_schemas([schema_row(sql), *(schema_row(cut) for cut in cuts)], live) == []
    earlier = sql.replace('"code" TEXT NOT NULL', '"code" TEXT NOT NULL, "old" INTEGER')
    found = dropped_schemas([schema_row(earlier)], live)
    assert [t.name for t in found] == ["units (earlier schema)"] and "old" in [c.name for c in found[0].columns]
