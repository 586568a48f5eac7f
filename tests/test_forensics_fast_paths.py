"""The fast paths give exactly what the plain ones give: report.json text, case.db tables."""

from __future__ import annotations

import io
import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

from bakestore.forensics.carve import Recovered
from bakestore.forensics.casedb import write_case_db
from bakestore.forensics.report import Report, _json_default, _recovered_json


def _values(rng: random.Random) -> list[Any]:
    pool: list[Any] = [None, 0, 1, -7, 2**62, 3.25, -0.0, float("nan"), float("inf"), "", "plain text",
                       "quote \" backslash \\ tab \t newline \n", "ünïcödé ✓", "\x7f", b"", b"\x00\xffbytes",
                       True, 1e300, -2**63]
    return [rng.choice(pool) for _ in range(rng.randint(0, 7))]


def _item(rng: random.Random, i: int) -> Recovered:
    table = rng.choice(["recipes", "sqlite_master", "odd \"name\"", "ingrédients"])
    return Recovered(
        table=table, source=rng.choice(["freelist", "freeblock", "wal"]), page=rng.randint(1, 10**6),
        offset=rng.randint(0, 65535), rowid=rng.choice([None, rng.randint(-5, 2**40)]), values=_values(rng),
        confidence=rng.choice([0.97, 0.8, 0.55, 0.999, 0.5 + i % 7 / 100]),
        region=rng.choice(["cell", "freeblock", "gap"]), frame=rng.choice([None, None, 3]),
        detail=rng.choice(["", "", "overflow chain followed", "x; y"]),
        candidates=rng.choice([[], [], ["recipes"]]),
        also_found_in=rng.choice([[], [], [{"source": "wal", "page": 3, "offset": 9, "region": "cell",
                                           "frame": 2, "confidence": 0.9}]]),
        rowid_live=rng.choice([False, True]), partial=rng.choice([False, True]), key=i)


def _report(items: list[Recovered], pages: int = 0) -> Report:
    return Report(file={"name": "x"}, header={"page_size": 4096}, pages={"page_count": pages}, integrity={},
                  wal={"present": False}, journal={}, tables=[], timeline={}, recovered=items,
                  page_list=[{"page": i, "kind": "table_leaf"} for i in range(pages)],
                  columns={"recipes": ["id", "name"], "sqlite_master": ["type", "name"]}, meta={"t": 1.5})


def test_streamed_report_json_is_the_text_json_dumps_writes() -> None:
    rng = random.Random(5)
    items = [_item(rng, i) for i in range(21000)]
    # types the fast path does not expect take the generic path and must still match
    items[5].confidence = 1  # type: ignore[assignment]
    items[6].rowid_live = 0  # type: ignore[assignment]
    items[7].page = True  # type: ignore[assignment]
    items[8].confidence = float("nan")
    report = _report(items, pages=300)
    assert report._large()
    expected = json.dumps(report.to_dict(), ensure_ascii=False, default=_json_default)
    assert report.to_json() == expected
    out = io.StringIO()
    report.write_json(out)
    assert out.getvalue() == expected
    doc = json.loads(expected)
    assert doc["recovered"][9]["values"] == json.loads(json.dumps(report.to_dict()["recovered"][9]["values"],
                                                                   default=_json_default))


def test_recovered_json_matches_item_dicts() -> None:
    rng = random.Random(11)
    items = [_item(rng, i) for i in range(500)]
    report = _report(items)
    expected = json.dumps(report.to_dict()["recovered"], ensure_ascii=False, default=_json_default)
    assert "[" + _recovered_json(items, report.columns) + "]" == expected
    assert any(isinstance(v, float) and math.isnan(v) for it in items for v in it.values)


def test_small_report_json_stays_indented() -> None:
    report = _report([_item(random.Random(1), 0)])
    assert not report._large()
    assert report.to_json() == json.dumps(report.to_dict(), indent=1, ensure_ascii=False, default=_json_default)


def test_case_db_recovered_rows_hold_the_values(tmp_path: Path) -> None:
    rng = random.Random(3)
    items = [_item(rng, i) for i in range(300)]
    report = _report(items, pages=5)
    write_case_db(report, tmp_path / "case.db")
    conn = sqlite3.connect(tmp_path / "case.db")
    try:
        rows = conn.execute("SELECT id, table_name, page, row_id, values_json, candidates FROM recovered_rows "
                            "ORDER BY id").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert len(rows) == 300 and {"recovered_rows", "pages", "file_info", "findings"} <= tables
    for (i, table, page, rowid, values_json, candidates), item in zip(rows, items):
        assert (table, page, rowid) == (item.table, item.page, item.rowid)
        assert values_json == json.dumps(report.to_dict()["recovered"][i - 1]["values"], ensure_ascii=False)
        assert json.loads(candidates) == item.candidates


def test_drop_live_prefixes_matches_the_prefix_lookup() -> None:
    from types import SimpleNamespace

    from bakestore.forensics.analysis import drop_live_prefixes
    from bakestore.forensics.carve import PrefixLookup

    rng = random.Random(8)
    words = ["", "a", "ab", "abc", "b", "ba", "MK1", "MK12", "MK123"]
    live_rows = [(i, (i, rng.choice(words), rng.choice([None, 1, 2, "2"]), rng.choice(words))) for i in range(400)]
    live_rows += [(500 + i, (None, rng.choice(words))) for i in range(20)]  # another width
    db = SimpleNamespace(tables={"t": SimpleNamespace(rows=live_rows)})
    items = []
    for k in range(3000):
        _, vals = rng.choice(live_rows)
        cut = [v if rng.random() < 0.6 else None for v in vals]
        j = rng.randrange(len(cut))
        if isinstance(cut[j], str):
            cut[j] = cut[j][:rng.randint(0, len(cut[j]))]
        if rng.random() < 0.2:
            cut[rng.randrange(len(cut))] = rng.choice(words + [7, None])
        items.append(Recovered(rng.choice(["t", "t", "gone"]), "freelist", 1, k, None, cut, 0.9, "cell",
                               partial=rng.random() < 0.8, key=k))
    ref: PrefixLookup[bool] = PrefixLookup()
    ref.extend("t", [(vals, True) for _, vals in live_rows])
    expected = [it for it in items if not (it.partial and ref.find(it.table, it.values))]
    got = drop_live_prefixes(items, db)  # type: ignore[arg-type]
    assert [id(it) for it in got] == [id(it) for it in expected]
    assert len(expected) < len(items) and any(it.partial for it in expected)
