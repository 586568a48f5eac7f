"""Bad restore sources: every one refused with a message naming file, line and field; the live
database byte-for-byte unchanged; no temporary files left; the refusal in the audit log.

Each case starts from a good export of a populated store, damages it in one way (fixing the
manifest's checksum and count where the point is to reach a deeper check), and restores it into
a copy of that populated store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3 as stdlib_sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from bakestore import audit, exports, restore
from bakestore.errors import BakestoreError, ShrinkRefusedError, SourceError, ValidationError
from bakestore.exports import MANIFEST
from bakestore.registry import REGISTRY
from bakestore.store import Store

from .conftest import DEVICE_A, db_fingerprint
from .test_exports import export_bytes, leftovers, populate_every_table

UUID_X = "01234567-89ab-7cde-8f01-23456789abcd"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A populated database (closed, no -wal) and a good export of it."""
    folder = tmp_path_factory.mktemp("template")
    with Store(folder / "live.db", device_id=DEVICE_A) as store:
        populate_every_table(store, n=1)
        result = store.export(folder, name="good")
    return folder / "live.db", result.path


# --------------------------------------------------------------------------- damaging an export


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _set_file(folder: Path, table: str, data: bytes, *, fix_manifest: bool = True) -> None:
    """Replace a table file; with ``fix_manifest`` its sha256, size and row count are updated too,
    so the damage is found by the row-level checks rather than the checksum."""
    (folder / f"{table}.ndjson").write_bytes(data)
    if fix_manifest:
        manifest = _manifest(folder)
        for entry in manifest["tables"]:
            if entry["name"] == table:
                entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), rows=data.count(b"\n"))
        _write_manifest(folder, manifest)


def _lines(folder: Path, table: str) -> list[str]:
    return (folder / f"{table}.ndjson").read_text(encoding="utf-8").splitlines()


def _set_lines(folder: Path, table: str, lines: list[str]) -> None:
    _set_file(folder, table, "".join(line + "\n" for line in lines).encode("utf-8"))


def _edit_row(table: str, index: int = 0, **changes: object) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        lines = _lines(folder, table)
        row = json.loads(lines[index])
        for key, value in changes.items():
            if value is _DROP:
                del row[key]
            else:
                row[key] = value
        lines[index] = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        _set_lines(folder, table, lines)
        return folder
    return damage


def _raw_line(table: str, index: int, text: str) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        lines = _lines(folder, table)
        lines[index] = text
        _set_lines(folder, table, lines)
        return folder
    return damage


def _edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        manifest = _manifest(folder)
        change(manifest)
        _write_manifest(folder, manifest)
        return folder
    return damage


def _entry(manifest: dict, table: str) -> dict:
    return next(e for e in manifest["tables"] if e["name"] == table)


_DROP = object()


def _truncated(fix_manifest: bool) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        data = (folder / "ingredients.ndjson").read_bytes()
        _set_file(folder, "ingredients", data[: len(data) - 40], fix_manifest=fix_manifest)
        return folder
    return damage


def _flip_byte(folder: Path) -> Path:
    path = folder / "recipes.ndjson"
    data = bytearray(path.read_bytes())
    data[data.index(b"Sugar")] = ord("B")  # same length, different content; manifest untouched
    path.write_bytes(bytes(data))
    return folder


def _count_mismatch(folder: Path) -> Path:
    manifest = _manifest(folder)
    _entry(manifest, "recipes")["rows"] += 1
    _write_manifest(folder, manifest)
    return folder


def _missing_file(folder: Path) -> Path:
    (folder / "products.ndjson").unlink()
    return folder


def _duplicate_id(folder: Path) -> Path:
    lines = _lines(folder, "ingredients")
    row = json.loads(lines[0])
    row.update(slug="another_slug", display_name="Another name")
    lines.append(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    _set_lines(folder, "ingredients", lines)
    return folder


def _duplicate_slug(folder: Path) -> Path:
    lines = _lines(folder, "ingredients")
    row = json.loads(lines[0])
    row.update(id=UUID_X, display_name="Another name")
    lines.append(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    _set_lines(folder, "ingredients", lines)
    return folder


def _empty_tables(keep: set[str]) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        for spec in REGISTRY.exported_tables:
            if spec.name not in keep:
                _set_file(folder, spec.name, b"")
        return folder
    return damage


def _incident_json(folder: Path) -> Path:
    path = folder.parent / "baketracker_backup.json"
    path.write_text('{"version":"4.0","ingredients":[]}')
    return path


def _symlinked_table(folder: Path) -> Path:
    elsewhere = folder.parent / "elsewhere.ndjson"
    shutil.move(folder / "ingredients.ndjson", elsewhere)
    (folder / "ingredients.ndjson").symlink_to(elsewhere)  # same bytes: only the link is wrong
    return folder


def _symlinked_manifest(folder: Path) -> Path:
    elsewhere = folder.parent / "elsewhere.json"
    shutil.move(folder / MANIFEST, elsewhere)
    (folder / MANIFEST).symlink_to(elsewhere)
    return folder


def _symlinked_folder(folder: Path) -> Path:
    link = folder.parent / "link-to-export"
    link.symlink_to(folder, target_is_directory=True)
    return link


def _non_utf8(folder: Path) -> Path:
    data = (folder / "recipients.ndjson").read_bytes().replace(b"Aunt", b"A\xffnt", 1)
    _set_file(folder, "recipients", data)
    return folder


def _huge_field(folder: Path) -> Path:
    return _edit_row("recipients", 0, notes="x" * 5000)(folder)


def _manifest_not_json(folder: Path) -> Path:
    (folder / MANIFEST).write_text('{"format": "bakestore-export", "tables": [')
    return folder


def _manifest_missing(folder: Path) -> Path:
    (folder / MANIFEST).unlink()
    return folder


def _listed_twice(manifest: dict) -> None:
    manifest["tables"].append(dict(_entry(manifest, "units")))


def _bad_manifest_file(name: str) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        _entry(manifest, "ingredients")["file"] = name
    return change


def _not_bakestore_db(folder: Path) -> Path:
    path = folder.parent / "other-app.db"
    conn = stdlib_sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('hello')")
    conn.commit()
    conn.close()
    return path


def _corrupt_db(template_db: Path) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        path = folder.parent / "corrupt.db"
        data = bytearray(template_db.read_bytes())
        for offset in range(4096 * 3, len(data), 4096 * 2):  # scribble over every other page
            data[offset:offset + 200] = os.urandom(200)
        path.write_bytes(bytes(data))
        return path
    return damage


def _no_such_path(folder: Path) -> Path:
    return folder.parent / "does-not-exist"


def _live_db_itself(folder: Path) -> Path:
    return folder.parent / "live.db"


@dataclass
class Case:
    damage: Callable[[Path], Path]
    expect: tuple[str, ...]  # fragments of the message: file, line, field, reason
    error: type[BakestoreError] = SourceError


CASES: dict[str, Case] = {
    "truncated-file": Case(_truncated(fix_manifest=False), ("ingredients.ndjson", "sha256 does not match")),
    "truncated-last-line": Case(_truncated(fix_manifest=True),
                                ("ingredients.ndjson", "line 2", "no newline at the end")),
    "bad-json-line": Case(_raw_line("recipes", 1, '{"id": "x", "name": '), ("recipes.ndjson:2", "invalid row")),
    "trailing-garbage": Case(_raw_line("recipes", 0, '{"id": 1} {"id": 2}'), ("recipes.ndjson:1", "Extra data")),
    "blank-line": Case(_raw_line("recipes", 0, ""), ("recipes.ndjson:1", "invalid row")),
    "row-not-an-object": Case(_raw_line("recipes", 0, '["a", "b"]'), ("recipes.ndjson:1", "expected an object")),
    "wrong-type-string-for-int": Case(_edit_row("purchases", 0, quantity_purchased="5"),
                                      ("purchases.ndjson:1", "purchases.quantity_purchased", "expected integer"),
                                      ValidationError),
    "wrong-type-float-for-int": Case(_edit_row("purchases", 0, quantity_purchased=5.0),
                                     ("purchases.ndjson:1", "purchases.quantity_purchased", "got float"),
                                     ValidationError),
    "wrong-type-bool-for-int": Case(_edit_row("finished_units", 0, inventory_count=True),
                                    ("finished_units.ndjson:1", "finished_units.inventory_count", "got bool"),
                                    ValidationError),
    "wrong-type-number-for-text": Case(_edit_row("recipes", 0, name=12),
                                       ("recipes.ndjson:1", "recipes.name", "expected text"), ValidationError),
    "unknown-column": Case(_edit_row("recipes", 0, colour="red"),
                           ("recipes.ndjson:1", "unknown column 'colour'"), ValidationError),
    "missing-column": Case(_edit_row("recipes", 0, notes=_DROP), ("recipes.ndjson:1", "recipes.notes", "missing"),
                           ValidationError),
    "null-in-not-null": Case(_edit_row("ingredients", 0, display_name=None),
                             ("ingredients.ndjson:1", "ingredients.display_name", "null"), ValidationError),
    "missing-file": Case(_missing_file, ("products.ndjson is missing",)),
    "checksum-mismatch": Case(_flip_byte, ("recipes.ndjson", "sha256 does not match")),
    "count-mismatch": Case(_count_mismatch, ("recipes.ndjson", "rows but the manifest says")),
    "dangling-foreign-key": Case(_edit_row("ingredient_aliases", 0, ingredient_id=UUID_X),
                                 ("ingredient_aliases.ndjson:1", "ingredient_aliases.ingredient_id",
                                  f"no ingredients row with id '{UUID_X}'"), ValidationError),
    "duplicate-id": Case(_duplicate_id, ("ingredients.ndjson:3", "ingredients.id", "duplicate primary key"),
                         ValidationError),
    "duplicate-natural-key": Case(_duplicate_slug, ("ingredients.ndjson:3", "ingredients.slug"), ValidationError),
    "check-violation": Case(_edit_row("purchases", 0, quantity_purchased=0),
                            ("purchases.ndjson:1", "purchases.quantity_purchased", "greater than 0"),
                            ValidationError),
    "table-check-violation": Case(_edit_row("finished_goods_adjustments", 0, new_count=11),
                                  ("finished_goods_adjustments.ndjson:1", "new_count = previous_count"),
                                  ValidationError),
    "bad-enum": Case(_edit_row("events", 0, plan_state="bogus"), ("events.ndjson:1", "events.plan_state", "draft"),
                     ValidationError),
    "bad-date": Case(_edit_row("purchases", 0, purchase_date="2025-02-30"),
                     ("purchases.ndjson:1", "purchases.purchase_date", "day is out of range"), ValidationError),
    "bad-timestamp": Case(_edit_row("inventory_items", 0, last_updated="yesterday"),
                          ("inventory_items.ndjson:1", "inventory_items.last_updated", "timestamp"),
                          ValidationError),
    "non-canonical-timestamp": Case(_edit_row("inventory_items", 0, last_updated="2025-12-01 10:00:00"),
                                    ("inventory_items.ndjson:1", "inventory_items.last_updated",
                                     "'2025-12-01T10:00:00.000Z'"), ValidationError),
    "bad-uuid": Case(_edit_row("ingredient_aliases", 0, ingredient_id="not-a-uuid"),
                     ("ingredient_aliases.ndjson:1", "ingredient_aliases.ingredient_id", "not a UUID"),
                     ValidationError),
    "uppercase-uuid": Case(_edit_row("recipients", 0, id=UUID_X.upper()),
                           ("recipients.ndjson:1", "recipients.id", "not in the stored (canonical) form"),
                           ValidationError),
    "invalid-json-column": Case(_edit_row("ingredients", 0, allergens="{not json"),
                                ("ingredients.ndjson:1", "ingredients.allergens", "not valid JSON"),
                                ValidationError),
    "too-long-text": Case(_edit_row("recipes", 0, name="n" * 201), ("recipes.ndjson:1", "recipes.name", "200"),
                          ValidationError),
    "nan-token": Case(_raw_line("recipes", 0, '{"id":NaN}'), ("recipes.ndjson:1", "NaN is not JSON")),
    "nan-special-float": Case(_edit_row("products", 0, package_unit_quantity={"$float": "NaN"}),
                              ("products.ndjson:1", "package_unit_quantity", "NaN cannot be stored")),
    "infinity-special-float": Case(_edit_row("products", 0, package_unit_quantity={"$float": "Infinity"}),
                                   ("products.ndjson:1", "products.package_unit_quantity", "infinity"),
                                   ValidationError),
    "base64-in-text-column": Case(_edit_row("recipes", 0, notes={"$base64": "AAE="}),
                                  ("recipes.ndjson:1", "recipes.notes", "got bytes"), ValidationError),
    "integer-too-large": Case(_edit_row("recipes", 0, estimated_time_minutes=2 ** 70),
                              ("recipes.ndjson:1", "recipes.estimated_time_minutes", "64 bits"), ValidationError),
    "lone-surrogate": Case(_raw_line("recipients", 0, None),  # replaced in the test: needs the row
                           ("recipients.ndjson:1", "recipients.name", "surrogate"), ValidationError),
    "duplicate-key-in-row": Case(_raw_line("recipients", 0, None),
                                 ("recipients.ndjson:1", "'name' appears twice")),
    "list-value": Case(_edit_row("recipes", 0, notes=["a", "b"]), ("recipes.ndjson:1", "'notes'", "list")),
    "nested-object-value": Case(_edit_row("recipes", 0, notes={"a": 1}), ("recipes.ndjson:1", "'notes'", "object")),
    "incident-empty-source": Case(_empty_tables(set()), ("would empty", "ingredients (2 → 0)", "--allow-shrink"),
                                  ShrinkRefusedError),
    "catalog-only-source": Case(_empty_tables({"ingredients", "products", "suppliers", "units", "recipe_categories"}),
                                ("would empty", "recipes (2 → 0)", "events (1 → 0)"), ShrinkRefusedError),
    "incident-json-file": Case(_incident_json, ("baketracker_backup.json", "neither an export folder")),
    "manifest-path-escapes": Case(_edit_manifest(_bad_manifest_file("../ingredients.ndjson")),
                                  (MANIFEST, "tables[", "'../ingredients.ndjson' is not allowed")),
    "manifest-absolute-path": Case(_edit_manifest(_bad_manifest_file("/etc/passwd")),
                                   (MANIFEST, "'/etc/passwd' is not allowed")),
    "manifest-other-tables-file": Case(_edit_manifest(_bad_manifest_file("recipes.ndjson")),
                                       (MANIFEST, "'recipes.ndjson' is not allowed")),
    "symlinked-table-file": Case(_symlinked_table, ("ingredients.ndjson is a symlink",)),
    "symlinked-manifest": Case(_symlinked_manifest, (f"{MANIFEST} is a symlink",)),
    "symlinked-folder": Case(_symlinked_folder, ("link-to-export", "is a symlink")),
    "non-utf8-bytes": Case(_non_utf8, ("recipients.ndjson:1", "not UTF-8")),
    "huge-field": Case(_huge_field, ("recipients.ndjson:1", "longer than 4096 bytes")),
    "manifest-not-json": Case(_manifest_not_json, (MANIFEST, "invalid JSON")),
    "manifest-missing": Case(_manifest_missing, (f"{MANIFEST} is missing",)),
    "manifest-wrong-format": Case(_edit_manifest(lambda m: m.update(format="something-else")),
                                  (MANIFEST, "format is 'something-else'")),
    "wrong-format-version": Case(_edit_manifest(lambda m: m.update(format_version=2)),
                                 (MANIFEST, "format_version 2 is not supported")),
    "newer-schema-version": Case(_edit_manifest(lambda m: m.update(schema_version=99)),
                                 (MANIFEST, "schema_version 99 is newer")),
    "unknown-table": Case(_edit_manifest(lambda m: m["tables"].append(
        {"name": "secrets", "file": "secrets.ndjson", "rows": 0, "sha256": "0" * 64})),
        (MANIFEST, "unknown table 'secrets'")),
    "table-listed-twice": Case(_edit_manifest(_listed_twice), (MANIFEST, "table 'units' listed twice")),
    "table-missing-from-manifest": Case(_edit_manifest(lambda m: m["tables"].pop()),
                                        (MANIFEST, "tables missing from the manifest")),
    "negative-row-count": Case(_edit_manifest(lambda m: _entry(m, "units").update(rows=-1)),
                               (MANIFEST, "negative row count")),
    "not-a-bakestore-db": Case(_not_bakestore_db, ("other-app.db", "not a bakestore database")),
    "corrupt-db": Case(lambda f: f, ("corrupt.db",)),  # damage set in the test (needs the template)
    "no-such-path": Case(_no_such_path, ("does-not-exist", "no such file or folder")),
    "the-live-db-itself": Case(_live_db_itself, ("live.db", "is the live database itself")),
}


def test_there_are_at_least_thirty_distinct_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_source_is_refused_and_changes_nothing(name: str, template: tuple[Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    template_db, good_export = template
    case = CASES[name]
    live = tmp_path / "live.db"
    shutil.copyfile(template_db, live)
    folder = tmp_path / "src"
    shutil.copytree(good_export, folder)
    damage = case.damage
    if name == "corrupt-db":
        damage = _corrupt_db(template_db)
    elif name == "lone-surrogate":
        line = _lines(folder, "recipients")[0]
        damage = _raw_line("recipients", 0, line.replace('"name":"', '"name":"\\ud800', 1))
    elif name == "duplicate-key-in-row":
        line = _lines(folder, "recipients")[0]
        damage = _raw_line("recipients", 0, line.replace('"name":', '"name":"first","name":', 1))
    elif name == "huge-field":
        monkeypatch.setattr(exports, "MAX_LINE_BYTES", 4096)
    source = damage(folder)

    before = db_fingerprint(live)
    points_before = restore.list_restore_points(live)
    with Store(live, device_id=DEVICE_A) as store:
        with pytest.raises(BakestoreError) as caught:
            store.restore(source)
    message = str(caught.value)
    assert isinstance(caught.value, case.error), f"{type(caught.value).__name__}: {message}"
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message
    assert db_fingerprint(live) == before, "the live database changed"
    assert leftovers(tmp_path) == []
    assert restore.list_restore_points(live) == points_before
    record = next(audit.read(live, limit=1))
    assert record["operation"] == "restore" and record["outcome"] == "refused"
    assert record["reason"] == message


def test_merge_refuses_bad_sources_too(template: tuple[Path, Path], tmp_path: Path) -> None:
    template_db, good_export = template
    live = tmp_path / "live.db"
    shutil.copyfile(template_db, live)
    folder = tmp_path / "src"
    shutil.copytree(good_export, folder)
    _edit_row("purchases", 0, quantity_purchased="5")(folder)
    before = db_fingerprint(live)
    with Store(live, device_id=DEVICE_A) as store:
        with pytest.raises(ValidationError, match=r"purchases.ndjson:1: .*quantity_purchased"):
            store.merge(folder)
    assert db_fingerprint(live) == before
    assert leftovers(tmp_path) == []
    assert next(audit.read(live, limit=1))["outcome"] == "refused"


def test_allow_shrink_lets_the_catalog_only_source_through(template: tuple[Path, Path], tmp_path: Path) -> None:
    """The shrink guard is a guard, not a wall: the same source goes through when asked for."""
    template_db, good_export = template
    live = tmp_path / "live.db"
    shutil.copyfile(template_db, live)
    folder = tmp_path / "src"
    shutil.copytree(good_export, folder)
    _empty_tables({"ingredients", "products", "suppliers", "units", "recipe_categories"})(folder)
    with Store(live, device_id=DEVICE_A) as store:
        result = store.restore(folder, allow_shrink=True)
        assert store.count("recipes") == 0 and store.count("ingredients") == 2
        assert any("shrink allowed" in note for note in result.notes)
    record = next(audit.read(live, limit=1))
    assert record["outcome"] == "done" and record["counts_before"]["recipes"] == 2
    assert record["counts_after"]["recipes"] == 0


def test_a_good_copy_of_the_template_restores_fine(template: tuple[Path, Path], tmp_path: Path) -> None:
    """Control for the cases above: the undamaged export is accepted and changes nothing."""
    template_db, good_export = template
    live = tmp_path / "live.db"
    shutil.copyfile(template_db, live)
    with Store(live, device_id=DEVICE_A) as store:
        result = store.restore(good_export)
        assert all(d.unchanged for d in result.diff.values())
        again = store.export(tmp_path, name="again")
    assert export_bytes(again.path) == export_bytes(good_export)
