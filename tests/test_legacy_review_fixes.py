"""Fixes from the read-only review of the legacy importer, one behaviour per test.

Each refusal is checked the same way as everywhere else in the legacy tests: through the CLI,
one ``Error:`` line naming file, record and field, exit status 1, and the live database's bytes
(and its ``-wal``) unchanged; a refusal that is not a dry run leaves an audit record, a dry run
none (guarantees S1, S14).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner, Result

from bakestore import LegacyFormatError, Store
from bakestore import audit
from bakestore.cli import main
from bakestore.legacy import import_legacy, translate

from .legacy_files import FOLDER, MINIMAL, SINGLE, edited, single, write
from .conftest import db_fingerprint

DEVICE = "6" * 32


# --------------------------------------------------------------------------- helpers


def copied_folder(tmp: Path) -> Path:
    target = tmp / "backup_2026-11-25_112310"
    shutil.copytree(FOLDER, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def cli(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), "import-legacy", *args])


def audit_count(db: Path) -> int:
    return len(list(audit.read(db)))


def live_copy(tmp: Path, template: Path) -> Path:
    live = tmp / "live.db"
    shutil.copyfile(template, live)
    return live


def assert_refused(db: Path, source: Path, *expected: str, flags: tuple[str, ...] = ("--yes",),
                   audited: bool = True) -> str:
    """Run the CLI on ``source``: one error line with ``expected`` parts, exit 1, nothing changed."""
    before = db_fingerprint(db)
    records = audit_count(db)
    result = cli(db, str(source), *flags)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for part in expected:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    assert db_fingerprint(db) == before
    if audited:
        assert audit_count(db) == records + 1
        newest = next(audit.read(db, limit=1))
        assert newest["operation"] == "import-legacy" and newest["outcome"] == "refused"
    else:
        assert audit_count(db) == records
    return errors[0]


def names(store: Store, table: str, column: str = "name") -> dict[str, dict[str, Any]]:
    return {row[column]: row for row in store.rows(table)}


# --------------------------------------------------------------------------- 1. base recipes


def _with_recipes(recipe_names: list[str], base: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for name in recipe_names:
            data["recipes"].append({"name": name, "category": "Other", "base_recipe_slug": None, "variant_name": None,
                                    "is_production_ready": True, "finished_units": [], "ingredients": [],
                                    "components": []})
        data["recipes"].append({"name": "Deluxe", "category": "Other", "base_recipe_slug": base,
                                "variant_name": "Deluxe", "is_production_ready": True, "finished_units": [],
                                "ingredients": [], "components": []})
    return change


def test_a_variant_base_never_matches_a_slug_bakestore_generated(tmp_path: Path) -> None:
    """'Pie Crust' gets the kebab slug pie-crust; the file's 'pie-crust' is the pseudo-slug of 'Pie-Crust'."""
    source = edited(tmp_path, _with_recipes(["Pie Crust", "Pie-Crust"], "pie-crust"))
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        import_legacy(store, source)
        recipes = names(store, "recipes")
        assert recipes["Pie Crust"]["slug"] == "pie-crust"  # generated, and still not a reference
        assert recipes["Deluxe"]["base_recipe_id"] == recipes["Pie-Crust"]["id"]


def test_two_recipes_with_one_pseudo_slug_make_the_variant_ambiguous(tmp_path: Path, populated_template: Path) -> None:
    source = edited(tmp_path, _with_recipes(["Shortbread", "ShortBread"], "shortbread"))
    assert_refused(live_copy(tmp_path, populated_template), source, "file.json: recipes[5] (Deluxe)",
                   "base_recipe_slug", "'shortbread' is ambiguous", "'Shortbread'", "'ShortBread'")


def test_merge_refuses_a_base_whose_slug_and_pseudo_slug_name_different_stored_recipes(
        tmp_path: Path, populated_template: Path) -> None:
    db = live_copy(tmp_path, populated_template)
    with Store(db, device_id=DEVICE) as store:
        store.insert("recipes", {"name": "Pie Crust", "slug": "pie-crust", "category": "Other"})
        store.insert("recipes", {"name": "Pie-Crust", "slug": "pie-crust-2", "category": "Other"})

    def change(data: dict[str, Any]) -> None:
        _with_recipes([], "pie-crust")(data)
    source = edited(tmp_path, change)
    assert_refused(db, source, "recipes[3] (Deluxe)", "base_recipe_slug", "'pie-crust' is ambiguous",
                   flags=("--merge", "--yes"))


# --------------------------------------------------------------------------- 2. merging twice


def _with_package_contents(data: dict[str, Any]) -> None:
    data["package_finished_goods"] = [{"package_name": "Holiday Tin", "finished_good_slug": "cookie-box",
                                       "quantity": 2}]
    data["compositions"].append({"component_quantity": 1.0, "sort_order": 0, "finished_good_slug": None,
                                 "package_name": "Holiday Tin", "finished_unit_slug": None,
                                 "finished_good_component_slug": "cookie-box", "packaging_product_id": None,
                                 "material_unit_slug": None, "is_generic": False})


def test_merging_the_same_single_file_twice_adds_nothing(tmp_path: Path) -> None:
    source = edited(tmp_path, _with_package_contents)
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        import_legacy(store, source, merge=True)
        after_first = store.counts()
        assert after_first["inventory_items"] == 2 and after_first["package_finished_goods"] == 1
        report, result = import_legacy(store, source, merge=True)
        assert store.counts() == after_first
        assert {t: (d.added, d.changed) for t, d in result.diff.items() if d.added or d.changed} == {}
        assert sum(lot["quantity"] for lot in store.rows("inventory_items")) == 14.0  # 10 lb flour + 4 lb sugar
        for entity in report.entities.values():
            assert entity.imported == 0 and not entity.refused, entity.entity
            assert entity.existing + entity.folded == entity.read, entity.entity
        third, _ = import_legacy(store, source, merge=True)
        assert store.counts() == after_first


def test_merging_the_same_coordinated_backup_twice_adds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert cli(db, str(FOLDER), "--merge", "--yes").exit_code == 0
    with Store(db, device_id=DEVICE) as store:
        counts = store.counts()
    second = cli(db, str(FOLDER), "--merge", "--yes", "--json")
    assert second.exit_code == 0, second.output
    diff = json.loads(second.stdout)["result"]["diff"]
    assert all(d["added"] == 0 and d["changed"] == 0 for d in diff.values())
    with Store(db, device_id=DEVICE) as store:
        assert store.counts() == counts


def test_a_merged_lot_whose_stored_lot_is_gone_is_not_brought_back(tmp_path: Path) -> None:
    """A lot's identity is its purchase: used up and deleted in the store, it stays deleted."""
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        import_legacy(store, SINGLE, merge=True)
        for lot in list(store.rows("inventory_items")):
            store.delete("inventory_items", lot["id"])
        report, result = import_legacy(store, SINGLE, merge=True)
        assert store.count("inventory_items") == 0 and result.diff["inventory_items"].added == 0
        lots = report.entities["inventory_items"]
        assert lots.existing == 2
        assert any("not added again" in note for note in lots.notes)


# --------------------------------------------------------------------------- 3. duplicate raw ids


def _supplier_id_twice(data: dict[str, Any]) -> None:
    data["suppliers"][1]["id"] = 1  # Amazon claims Costco's raw id: "last one wins" gave everything to Amazon
    data["purchases"][1]["supplier_id"] = 1
    data["products"][0].update(preferred_supplier_id=1, preferred_supplier_slug=None, preferred_supplier_name=None)


def test_a_raw_id_written_twice_is_refused_naming_both_records(tmp_path: Path, populated_template: Path) -> None:
    source = edited(tmp_path, _supplier_id_twice)
    assert_refused(live_copy(tmp_path, populated_template), source, "file.json: suppliers[1] (amazon) field id",
                   "duplicate id 1", "suppliers[0]")


def test_skip_invalid_skips_the_duplicate_and_refuses_references_to_that_id(tmp_path: Path) -> None:
    source = edited(tmp_path, _supplier_id_twice)
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        report, _ = import_legacy(store, source, skip_invalid=True)
        assert [s["slug"] for s in store.rows("suppliers")] == ["costco_boston_ma"]
        assert store.count("purchases") == 0  # both named supplier id 1: neither is attached by guess
    reasons = [p.message(report.label) for p in report.problems]
    assert any("suppliers[1]" in r and "duplicate id 1" in r for r in reasons)
    assert any("purchases[0]" in r and "supplier id 1 is ambiguous" in r and "suppliers[0] and suppliers[1]" in r
               for r in reasons)
    assert any("products[0]" in r and "preferred_supplier_id" in r and "ambiguous" in r for r in reasons)


# --------------------------------------------------------------------------- 4. repeated JSON keys


def test_a_repeated_top_level_key_is_refused_naming_key_and_line(tmp_path: Path, populated_template: Path) -> None:
    text = json.dumps(single(), indent=1, ensure_ascii=False)
    text = text[:text.rstrip().rindex("}")].rstrip() + ',\n "recipients": [{"name": "Aunt May"}]\n}\n'
    line = text.count("\n", 0, text.index('"recipients": [{"name": "Aunt May"}]')) + 1
    source = tmp_path / "merged.json"
    source.write_text(text, encoding="utf-8")
    assert_refused(live_copy(tmp_path, populated_template), source, "merged.json", "key 'recipients' appears twice",
                   f"line {line}", "top-level object")


def test_a_repeated_key_inside_a_record_is_refused_naming_the_record(tmp_path: Path) -> None:
    lines = json.dumps(single(), indent=1, ensure_ascii=False).splitlines()
    at = next(i for i, text in enumerate(lines) if '"unit_price": "12.9900"' in text)
    lines.insert(at + 1, lines[at].replace("12.9900", "0.9900"))
    source = tmp_path / "file.json"
    source.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(LegacyFormatError) as caught:
        translate(source, device_id=DEVICE)
    assert f"key 'unit_price' appears twice in one JSON object (line {at + 2}, column 4, in purchases[0])" \
        in str(caught.value)


def test_a_repeated_key_in_a_coordinated_entity_file_is_refused(tmp_path: Path, populated_template: Path) -> None:
    folder = copied_folder(tmp_path)
    products = folder / "products.json"
    raw = products.read_bytes().replace(b'"brand": "KA",', b'"brand": "KA", "brand": "KB",', 1)
    products.write_bytes(raw)
    manifest = json.loads((folder / "manifest.json").read_text())
    next(f for f in manifest["files"] if f["filename"] == "products.json")["sha256"] = hashlib.sha256(raw).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    assert_refused(live_copy(tmp_path, populated_template), folder, "backup_2026-11-25_112310/products.json",
                   "key 'brand' appears twice", "line ", "records[")


# --------------------------------------------------------------------------- 5. dry runs write nothing


def test_a_dry_run_against_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "new.db"
    result = cli(db, str(SINGLE), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "suppliers" in result.stdout and "0 → 2" in result.stdout
    assert "does not exist and was not created" in result.stdout
    as_json = cli(db, str(SINGLE), "--dry-run", "--json")
    data = json.loads(as_json.stdout)
    assert data["database"] == {"path": str(db), "exists": False, "created": False}
    assert data["result"]["diff"]["purchases"]["added"] == 2
    refused = cli(db, str(MINIMAL), "--dry-run")
    assert refused.exit_code == 1 and "50 ingredient slugs" in refused.stderr
    assert list(folder.iterdir()) == []


def test_a_refused_dry_run_leaves_no_audit_record(tmp_path: Path, populated_template: Path) -> None:
    db = live_copy(tmp_path, populated_template)
    incident = write(tmp_path, {"version": "4.1", "ingredients": []}, "incident.json")
    assert_refused(db, incident, "incident.json", "yields no rows", flags=("--dry-run",), audited=False)
    with Store(db, device_id=DEVICE) as store:
        with pytest.raises(LegacyFormatError):
            import_legacy(store, incident, dry_run=True)
    assert audit_count(db) == 0
    assert_refused(db, incident, "incident.json", "yields no rows")  # the real attempt is audited


# --------------------------------------------------------------------------- 6. huge numbers


@pytest.mark.parametrize("digits, reason", [(400, "number too large: 100000000000… (401 characters)"),
                                            (5000, "number too large: a 5001-digit integer")])
def test_a_huge_number_is_one_audited_line_naming_record_and_field(
        tmp_path: Path, populated_template: Path, digits: int, reason: str) -> None:
    text = SINGLE.read_text(encoding="utf-8").replace('"unit_price": "12.9900"', '"unit_price": 1' + "0" * digits, 1)
    source = tmp_path / "big.json"
    source.write_text(text, encoding="utf-8")
    db = live_copy(tmp_path, populated_template)
    assert_refused(db, source, "big.json: purchases[0] (ap_flour:KA:AP 10lb) field unit_price", reason)
    assert_refused(db, source, "field unit_price", flags=("--dry-run",), audited=False)


def test_huge_numbers_anywhere_are_refused_never_crash(tmp_path: Path) -> None:
    def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Any:
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
        for key, value in items:
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))

    src = single()
    for path in list(paths(src))[::3]:
        data = copy.deepcopy(src)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = "@HUGE@"
        source = tmp_path / "f.json"
        source.write_text(json.dumps(data).replace('"@HUGE@"', "9" * 5000), encoding="utf-8")
        try:
            translate(source, device_id=DEVICE)
        except LegacyFormatError as exc:
            assert "\n" not in str(exc)


# --------------------------------------------------------------------------- 7. yield_type


def test_a_missing_yield_type_is_serving_and_noted(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["finished_units"] = [data["finished_units"][0]]  # the iced unit exists only nested
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        report, _ = import_legacy(store, edited(tmp_path, change))
        units = names(store, "finished_units", "slug")
    assert units["sugar-cookie"]["yield_type"] == "EA"  # folded into its top-level copy, which says EA
    assert units["iced-sugar-cookie"]["yield_type"] == "SERVING"
    assert report.entities["recipes[].finished_units"].notes["yield_type: missing: SERVING (upstream default)"] == 1
    assert "yield_type: missing: SERVING (upstream default) (1x)" in report.format_text()

    def older(data: dict[str, Any]) -> None:
        del data["finished_units"][1]["yield_type"]  # a file from before 2026-02-08
    with Store(tmp_path / "t.db", device_id=DEVICE) as store:
        report, _ = import_legacy(store, edited(tmp_path, older, "older.json"))
    assert report.entities["finished_units"].notes["yield_type: missing: SERVING (upstream default)"] == 1


# --------------------------------------------------------------------------- 8. raw id next to a slug


def test_a_raw_supplier_id_next_to_a_slug_must_agree(tmp_path: Path, populated_template: Path) -> None:
    conflict = edited(tmp_path, lambda d: d["purchases"][0].update(supplier_slug="amazon"), "conflict.json")
    assert_refused(live_copy(tmp_path, populated_template), conflict, "conflict.json: purchases[0]",
                   "field supplier_id", "raw id 1 and slug 'amazon' name different suppliers")
    agreeing = edited(tmp_path, lambda d: d["purchases"][0].update(supplier_slug="costco_boston_ma"), "agree.json")
    report = translate(agreeing, device_id=DEVICE).report
    assert "supplier_id" not in report.entities["purchases"].unused_keys  # it was read and checked


def test_a_raw_id_the_file_cannot_resolve_leaves_the_slug_to_decide(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        for supplier in data["suppliers"]:
            del supplier["id"]
        for purchase in data["purchases"]:
            purchase["supplier_slug"] = "amazon"
    report = translate(edited(tmp_path, change), device_id=DEVICE).report
    assert report.entities["purchases"].notes["supplier_id: raw id not resolvable in this file: the slug was used"] == 2


# --------------------------------------------------------------------------- 9. unlisted entity files


def _unlisted_purchases(tmp: Path) -> Path:
    folder = copied_folder(tmp)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["entity_type"] != "purchases"]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def test_an_entity_file_the_manifest_does_not_list_is_refused(tmp_path: Path, populated_template: Path) -> None:
    assert_refused(live_copy(tmp_path, populated_template), _unlisted_purchases(tmp_path),
                   "backup_2026-11-25_112310/purchases.json", "manifest does not list", "--skip-invalid")


def test_skip_invalid_leaves_the_unlisted_entity_file_out_and_says_so(tmp_path: Path) -> None:
    folder = _unlisted_purchases(tmp_path)
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        report, _ = import_legacy(store, folder, skip_invalid=True)
        assert store.count("purchases") == 0 and store.count("suppliers") == 2
    assert any("purchases.json" in w and "skipped, nothing imported from it" in w for w in report.warnings)


# --------------------------------------------------------------------------- recurring event names


def test_recurring_event_names_say_which_rows_and_what_to_do(tmp_path: Path, populated_template: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["events"][0]["name"] = "Christmas"
        data["events"].append(dict(data["events"][0], event_date="2024-12-20", year=2024))
        for key in ("event_recipient_packages", "event_production_targets", "production_runs", "assembly_runs",
                    "event_recipes", "event_finished_goods", "batch_decisions"):
            for row in data[key]:
                row["event_name"] = "Christmas"
    line = assert_refused(live_copy(tmp_path, populated_template), edited(tmp_path, change),
                          "7 records refer to 'Christmas'", "event_recipient_packages[0]", "batch_decisions[0]",
                          "events[0] on 2025-12-20, events[1] on 2024-12-20", "names its event only by name",
                          "distinct names in BakeTracker", "--skip-invalid")
    assert "does not guess" in line
