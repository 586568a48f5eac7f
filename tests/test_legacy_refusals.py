"""Bad upstream inputs are refused with a clear one-line message, and the live database is untouched.

Each case starts from a populated store (the synthetic sample imported), closes it, hashes the
``.db`` file, attempts the bad import, closes again and compares the hash: "refused" must mean
"nothing changed", which is exactly what the upstream importer did not guarantee.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from bakestore import LegacyFormatError, ShrinkRefusedError, Store
from bakestore.audit import read as read_audit
from bakestore.errors import BakestoreError
from bakestore.legacy import import_legacy

from .conftest import LEGACY_SAMPLES as LEGACY

SINGLE = LEGACY / "sample_single_v4.json"
FOLDER = LEGACY / "sample_coordinated_backup"
MINIMAL = LEGACY / "sample_data_min.json"
DEVICE = "3" * 32


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def single() -> dict[str, Any]:
    return json.loads(SINGLE.read_text(encoding="utf-8"))


def write_json(tmp: Path, name: str, data: Any) -> Path:
    path = tmp / name
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def edited(tmp: Path, change: Callable[[dict[str, Any]], None], name: str = "edited.json") -> Path:
    data = copy.deepcopy(single())
    change(data)
    return write_json(tmp, name, data)


def copied_folder(tmp: Path) -> Path:
    target = tmp / "backup_2026-11-25_112310"
    shutil.copytree(FOLDER, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def folder_with_changed_file(tmp: Path) -> Path:
    folder = copied_folder(tmp)
    products = folder / "products.json"
    products.write_bytes(products.read_bytes().replace(b'"KA"', b'"KB"', 1))
    return folder


def folder_with_missing_file(tmp: Path) -> Path:
    folder = copied_folder(tmp)
    (folder / "purchases.json").unlink()
    return folder


def folder_with_wrong_count(tmp: Path) -> Path:
    folder = copied_folder(tmp)
    manifest = json.loads((folder / "manifest.json").read_text())
    next(f for f in manifest["files"] if f["entity_type"] == "suppliers")["record_count"] = 3
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def folder_with_empty_manifest(tmp: Path) -> Path:
    folder = copied_folder(tmp)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def catalog_only(tmp: Path) -> Path:
    """A Catalog export: all 29 keys present, everything but the catalog emptied (formats §2.4)."""
    def change(data: dict[str, Any]) -> None:
        for key, value in data.items():
            if isinstance(value, list) and key not in ("suppliers", "ingredients", "products"):
                data[key] = []
    return edited(tmp, change, "catalog.json")


def two_same_size_products(tmp: Path) -> Path:
    """Two KA flour products that differ only in package size, and a purchase with no lot to tell."""
    def change(data: dict[str, Any]) -> None:
        for product in data["products"]:
            product.pop("product_name", None)
        data["purchases"][0].pop("product_name")
        data["inventory_items"] = []
    return edited(tmp, change)


# (case id, builder(tmp) -> path, import kwargs, expected error type, substrings of the message)
CASES: list[tuple[str, Callable[[Path], Path], dict[str, Any], type[BakestoreError], tuple[str, ...]]] = [
    ("wrong-version", lambda t: edited(t, lambda d: d.update(version="5.0")), {}, LegacyFormatError,
     ("edited.json", "unsupported version '5.0'", "4.0")),
    ("pre-v4-version", lambda t: edited(t, lambda d: d.update(version="3.2")), {}, LegacyFormatError,
     ("'3.2'", "pre-4.0")),
    ("numeric-version", lambda t: edited(t, lambda d: d.update(version=4.1)), {}, LegacyFormatError,
     ("'version' must be text",)),
    ("missing-version", lambda t: edited(t, lambda d: d.pop("version")), {}, LegacyFormatError,
     ("no 'version' key", "expected an upstream BakeTracker")),
    ("not-json", lambda t: (t / "broken.json").write_text('{"version": "4.1", "suppliers": [') and t / "broken.json",
     {}, LegacyFormatError, ("broken.json", "not valid JSON", "line 1")),
    ("not-utf8", lambda t: (t / "latin1.json").write_bytes('{"version": "4.1", "notes": "Crème"}'.encode("latin-1"))
     and t / "latin1.json", {}, LegacyFormatError, ("latin1.json", "not UTF-8", "offset")),
    ("empty-file", lambda t: (t / "empty.json").write_bytes(b"") == 0 and t / "empty.json", {}, LegacyFormatError,
     ("empty.json", "empty")),
    ("unknown-format-list", lambda t: write_json(t, "list.json", [{"name": "x"}]), {}, LegacyFormatError,
     ("list.json", "a list, not an object", "expected an upstream BakeTracker")),
    ("unknown-format-object", lambda t: write_json(t, "other.json", {"recipes": {"a": 1}}), {}, LegacyFormatError,
     ("other.json", "no 'version' key")),
    ("entity-file-alone", lambda t: FOLDER / "products.json", {}, LegacyFormatError,
     ("products.json", "one entity file", "manifest.json")),
    ("folder-without-manifest", lambda t: (t / "nothing").mkdir() or t / "nothing", {}, LegacyFormatError,
     ("nothing", "no manifest.json")),
    ("incident-file", lambda t: write_json(t, "incident.json", {"version": "4.0", "ingredients": []}), {},
     LegacyFormatError, ("incident.json", "no records", "yields no rows")),
    ("header-only", lambda t: write_json(t, "header.json", {"version": "4.1", "application": "bake-tracker",
                                                              "exported_at": "2026-01-06T12:00:00Z"}), {},
     LegacyFormatError, ("header.json", "no records")),
    ("catalog-as-backup", catalog_only, {}, ShrinkRefusedError, ("refusing", "empty")),
    ("changed-file-in-folder", folder_with_changed_file, {}, LegacyFormatError,
     ("products.json", "sha256 does not match the manifest")),
    ("missing-file-in-folder", folder_with_missing_file, {}, LegacyFormatError,
     ("purchases.json", "listed in the manifest but missing")),
    ("record-count-mismatch", folder_with_wrong_count, {}, LegacyFormatError,
     ("suppliers.json", "holds 2 records but the manifest says 3")),
    ("manifest-with-no-files", folder_with_empty_manifest, {}, LegacyFormatError, ("manifest.json", "no records")),
    ("wrong-type-array", lambda t: edited(t, lambda d: d.update(ingredients={"slug": "x"})), {}, LegacyFormatError,
     ("edited.json", "'ingredients' must be a list")),
    ("wrong-type-field", lambda t: edited(t, lambda d: d["purchases"][1].update(quantity_purchased="two")), {},
     LegacyFormatError, ("edited.json: purchases[1]", "quantity_purchased", "whole number")),
    ("missing-key", lambda t: edited(t, lambda d: d["ingredients"][2].pop("display_name")), {}, LegacyFormatError,
     ("ingredients[2] (ap_flour)", "display_name", "missing")),
    ("duplicate-slugs", lambda t: edited(t, lambda d: d["ingredients"].append(dict(d["ingredients"][3],
                                                                                   display_name="Sugar 2"))),
     {}, LegacyFormatError, ("ingredients[4] (sugar)", "duplicate", "slug", "ingredients[3]")),
    ("missing-reference", lambda t: edited(t, lambda d: d["products"][0].update(ingredient_slug="rye_flour")), {},
     LegacyFormatError, ("products[0]", "rye_flour", "ingredient_slug")),
    ("ambiguous-event-name", lambda t: edited(t, lambda d: d["events"].append(dict(d["events"][0], year=2024,
                                                                                   event_date="2024-12-20"))),
     {}, LegacyFormatError, ("Christmas 2025", "ambiguous", "does not guess")),
    ("ambiguous-product", two_same_size_products, {}, LegacyFormatError,
     ("purchases[0]", "differ only in package size", "does not guess")),
    ("bad-enum", lambda t: edited(t, lambda d: d["events"][0].update(plan_state="frozen")), {}, LegacyFormatError,
     ("events[0] (Christmas 2025)", "plan_state", "'frozen' is not one of")),
    ("bad-date", lambda t: edited(t, lambda d: d["purchases"][0].update(purchase_date="2025-13-45")), {},
     LegacyFormatError, ("purchases[0]", "purchase_date", "2025-13-45")),
    ("bad-uuid", lambda t: edited(t, lambda d: d["suppliers"][0].update(uuid="not-a-uuid")), {}, LegacyFormatError,
     ("suppliers[0] (costco_boston_ma)", "uuid", "not a UUID")),
    ("generic-material-component", lambda t: edited(t, lambda d: d["compositions"][1].update(
        material_unit_slug=None, material_slug="red-satin")), {}, LegacyFormatError,
     ("compositions[1]", "material_slug", "cannot be represented")),
    ("bakestore-export", lambda t: write_json(t, "manifest.json", {"format": "bakestore-export", "tables": []}),
     {}, LegacyFormatError, ("bakestore export", "bakestore restore")),
    ("minimal-file-restore", lambda t: MINIMAL, {}, LegacyFormatError,
     ("sample_data_min.json", "50 ingredient slugs", "flour_all_purpose")),
]


@pytest.mark.parametrize("case_id, build, kwargs, error, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_the_database_is_unchanged(
        tmp_path: Path, populated_template: Path, case_id: str, build: Callable[[Path], Path],
        kwargs: dict[str, Any], error: type[BakestoreError], expected: tuple[str, ...]) -> None:
    live = tmp_path / "live.db"
    shutil.copyfile(populated_template, live)
    source = build(tmp_path)
    before = sha(live)
    with Store(live, device_id=DEVICE) as store:
        counts = store.counts()
        with pytest.raises(error) as caught:
            import_legacy(store, source, **kwargs)
        assert store.counts() == counts
    message = str(caught.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert sha(live) == before
    assert not list((tmp_path).glob("live.db-wal")) or (tmp_path / "live.db-wal").stat().st_size == 0
    # Every refusal leaves an audit record next to the database.
    newest = next(read_audit(live, limit=1))
    assert newest["operation"] == "import-legacy" and newest["outcome"] == "refused"


def test_incident_file_is_refused_even_on_an_empty_store(tmp_path: Path) -> None:
    path = write_json(tmp_path, "incident.json", {"version": "4.0", "ingredients": []})
    with Store(tmp_path / "empty.db", device_id=DEVICE) as store:
        with pytest.raises(LegacyFormatError, match="yields no rows"):
            import_legacy(store, path)


def test_merge_into_an_empty_store_names_the_missing_slugs(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db", device_id=DEVICE) as store:
        with pytest.raises(LegacyFormatError) as caught:
            import_legacy(store, MINIMAL, merge=True)
    assert "in neither the file nor the store" in str(caught.value)
    assert "butter_unsalted" in str(caught.value)


def test_the_changed_file_is_refused_before_anything_is_parsed(tmp_path: Path) -> None:
    """A changed file is named even when another file is not even JSON: sha256 comes first."""
    folder = folder_with_changed_file(tmp_path)
    (folder / "recipes.json").write_text("not json at all")
    with Store(tmp_path / "s.db", device_id=DEVICE) as store:
        with pytest.raises(LegacyFormatError) as caught:
            import_legacy(store, folder)
    assert "sha256 does not match" in str(caught.value)
    assert "products.json" in str(caught.value) and "recipes.json" in str(caught.value)
