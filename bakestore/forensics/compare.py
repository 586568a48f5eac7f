"""Compare two databases (e.g. a restore point and the live file): rows added, removed, changed.

Both files are read through evidence-safe copies with the raw reader, so comparing never
checkpoints or rolls back either of them, and a damaged file still compares as far as it reads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .analysis import LiveTable, load
from .evidence import collect, verify_originals
from .report import jsonable


def row_key(lt: LiveTable) -> tuple[str, list[int]]:
    """How rows are matched: declared primary key, else an ``id`` column, else the rowid."""
    schema = lt.schema
    pk = sorted((c.pk, i) for i, c in enumerate(schema.columns) if c.pk)
    if pk:
        idx = [i for _, i in pk]
        return ",".join(schema.columns[i].name for i in idx), idx
    names = [c.name.lower() for c in schema.columns]
    if "id" in names:
        return schema.columns[names.index("id")].name, [names.index("id")]
    return "rowid", []


def _keyed(lt: LiveTable, idx: list[int]) -> dict[Any, tuple[Any, ...]]:
    out: dict[Any, tuple[Any, ...]] = {}
    for rowid, vals in lt.rows:
        key = tuple(vals[i] if i < len(vals) else None for i in idx) if idx else (rowid,)
        out[key[0] if len(key) == 1 else key] = vals
    return out


def compare(a: str | Path, b: str | Path, case_dir: str | Path | None = None, *, examples: int = 5) -> dict[str, Any]:
    """Per-table rows added (in B only), removed (in A only) and changed, with a few example keys."""
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if case_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bakestore-compare-")
        case_dir = tmp.name
    try:
        case = Path(case_dir)
        ev_a = collect(Path(a), case / "a")
        ev_b = collect(Path(b), case / "b")
        db_a, db_b = load(ev_a), load(ev_b)
        changed_originals = verify_originals(ev_a) + verify_originals(ev_b)
    finally:
        if tmp is not None:
            tmp.cleanup()
    names = [n for n in dict.fromkeys([*db_a.tables, *db_b.tables]) if not n.startswith("sqlite_")]
    tables: dict[str, Any] = {}
    totals = {"added": 0, "removed": 0, "changed": 0}
    for name in names:
        ta, tb = db_a.tables.get(name), db_b.tables.get(name)
        if ta is None or tb is None:
            present = tb if ta is None else ta
            assert present is not None
            n = len(present.rows)
            tables[name] = {"only_in": "b" if ta is None else "a", "rows_a": 0 if ta is None else n,
                            "rows_b": n if ta is None else 0, "added": n if ta is None else 0,
                            "removed": n if tb is None else 0, "changed": 0, "key": None}
            totals["added" if ta is None else "removed"] += n
            continue
        key_name, idx = row_key(tb)
        ka, kb = _keyed(ta, idx), _keyed(tb, idx)
        added = [k for k in kb if k not in ka]
        removed = [k for k in ka if k not in kb]
        changed = [k for k in kb if k in ka and ka[k] != kb[k]]
        cols = tb.schema.column_names
        change_examples = []
        for k in changed[:examples]:
            va, vb = ka[k], kb[k]
            diff = {cols[i] if i < len(cols) else str(i): [va[i] if i < len(va) else None, vb[i] if i < len(vb) else None]
                    for i in range(max(len(va), len(vb))) if (va[i] if i < len(va) else None) != (vb[i] if i < len(vb) else None)}
            change_examples.append({"key": k, "columns": diff})
        tables[name] = {"key": key_name, "rows_a": len(ta.rows), "rows_b": len(tb.rows), "added": len(added),
                        "removed": len(removed), "changed": len(changed), "added_examples": added[:examples],
                        "removed_examples": removed[:examples], "changed_examples": change_examples,
                        "schema_changed": ta.schema.sql != tb.schema.sql}
        for k in totals:
            totals[k] += tables[name][k]
    return jsonable({"a": {"path": str(Path(a).resolve()), "sha256": ev_a.db.sha256_original, "size": ev_a.db.size},
                     "b": {"path": str(Path(b).resolve()), "sha256": ev_b.db.sha256_original, "size": ev_b.db.size},
                     "tables": tables, "totals": totals, "originals_changed": changed_originals,
                     "errors": {"a": len(db_a.errors), "b": len(db_b.errors)}})


def render_compare(result: dict[str, Any]) -> str:
    """Readable text for the CLI."""
    lines = [f"A: {result['a']['path']}", f"B: {result['b']['path']}", "",
             "| table | key | rows A | rows B | added | removed | changed |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, t in result["tables"].items():
        key = t.get("key") or f"(only in {t.get('only_in', '').upper()})"
        lines.append(f"| {name} | {key} | {t['rows_a']} | {t['rows_b']} | {t['added']} | {t['removed']} | {t['changed']} |")
    tot = result["totals"]
    lines += ["", f"Total: {tot['added']} added, {tot['removed']} removed, {tot['changed']} changed (B relative to A)."]
    return "\n".join(lines) + "\n"
