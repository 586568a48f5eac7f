"""The thin UI, in-process through ``datasette.client``: every route, CSRF, validation messages next
to their fields, natural keys in URLs, confirmations for destructive actions, no traceback pages."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from bakestore import audit
from bakestore.registry import REGISTRY
from bakestore.store import Store
from bakestore.web import forms, views
from bakestore.web.server import build_datasette

from .conftest import DEVICE_A, db_fingerprint

_TOKEN = re.compile(r'name="csrftoken" value="([^"]+)"')


class UI:
    """A synchronous browser-ish client over ``datasette.client`` that keeps cookies."""

    def __init__(self, datasette: Any) -> None:
        self.ds = datasette
        self.loop = asyncio.new_event_loop()
        self.cookies: dict[str, str] = {}
        self.loop.run_until_complete(datasette.invoke_startup())

    def _keep(self, response: Any) -> Any:
        for name, value in response.cookies.items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._keep(self.loop.run_until_complete(self.ds.client.get(path, cookies=dict(self.cookies), **kwargs)))

    def token(self, page: str) -> str:
        response = self.get(page)
        assert response.status_code == 200, (page, response.status_code)
        match = _TOKEN.search(response.text)
        assert match, f"no CSRF token in the form of {page}"
        return match.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, *, form_page: str | None = None,
             token: bool = True, **kwargs: Any) -> Any:
        data = dict(data or {})
        if token:
            data["csrftoken"] = self.token(form_page or path)
        return self._keep(self.loop.run_until_complete(
            self.ds.client.post(path, data=data, cookies=dict(self.cookies), **kwargs)))

    def close(self) -> None:
        for db in self.ds.databases.values():
            db.close()
        if self.ds.executor is not None:
            self.ds.executor.shutdown(wait=True)
        self.loop.close()


def field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="error-text" id="error-{re.escape(name)}">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)) if match else None


def based_on(page: str) -> dict[str, str]:
    """The hidden inputs that say which row, and which version of it, an edit page showed."""
    return {name: html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="(_row_id|_row_version)" value="([^"]*)"', page)}


def alerts(page: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
            for m in re.findall(r'role="(?:alert|status)">(.*?)</div>', page, re.S)]


def _small_db(path: Path) -> None:
    with Store(path, device_id=DEVICE_A) as store:
        flour = store.insert("ingredients", {"display_name": "Bread Flour", "slug": "bread_flour", "category": "Flour"})
        store.insert("ingredients", {"display_name": "Cane Sugar", "slug": "cane_sugar", "category": "Sugar"})
        store.insert("suppliers", {"name": "Mill Shop", "slug": "mill_shop", "city": "Springfield", "state": "IL"})
        store.insert("products", {"ingredient_id": flour["id"], "brand": "Mill", "package_unit": "bag",
                                  "package_unit_quantity": 5.0, "slug": "mill_bread_flour_5"})
        store.insert_many("ingredients", [{"display_name": f"Spice {i:02d}", "slug": f"spice_{i:02d}",
                                            "category": "Spice"} for i in range(60)])


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    _small_db(path)
    return path


@pytest.fixture
def ui(live: Path) -> Iterator[UI]:
    client = UI(build_datasette(live, ui=True))
    yield client
    client.close()


# --------------------------------------------------------------------------- pages


def test_dashboard_shows_groups_health_backups_and_watcher(ui: UI) -> None:
    page = ui.get("/")
    assert page.status_code == 200
    text = page.text
    for group in REGISTRY.groups():
        assert f'<span class="gname">{group}</span>' in text
    assert "healthy" in text and "integrity check" in text
    assert "Last export" in text and "Last restore point" in text
    assert 'id="watcher"' in text and "watcher:" in text
    assert "Browse tables" in text and 'href="/bakestore"' in text


def test_every_registry_table_has_a_list_page(ui: UI) -> None:
    index = ui.get("/data")
    assert index.status_code == 200
    for spec in REGISTRY:
        assert f'href="/data/{spec.name}"' in index.text
        page = ui.get(f"/data/{spec.name}")
        assert page.status_code == 200, spec.name
        assert f"<h1>{spec.name}</h1>" in page.text
        if forms.editable(spec):
            assert page.status_code == 200 and f'href="/data/{spec.name}/-/new"' in page.text
            form = ui.get(f"/data/{spec.name}/-/new")
            assert form.status_code == 200, spec.name
            assert 'name="csrftoken"' in form.text
            for column in forms.form_columns(spec):
                assert f'name="{column.name}"' in form.text, (spec.name, column.name)


def test_forms_use_input_types_selects_and_checkboxes_from_the_registry(ui: UI) -> None:
    text = ui.get("/data/products/-/new").text
    # Foreign key: a select whose options show the natural key of the ingredient.
    select = re.search(r'<select id="input-ingredient_id" name="ingredient_id">(.*?)</select>', text, re.S).group(1)
    assert ">bread_flour</option>" in select and ">cane_sugar</option>" in select
    assert re.search(r'<input type="checkbox" name="preferred" value="1"', text)
    assert 'id="input-package_unit_quantity" type="number"' in text and 'step="any"' in text
    ingredients = ui.get("/data/ingredients/-/new").text
    hierarchy = re.search(r'<select id="input-hierarchy_level" name="hierarchy_level">(.*?)</select>', ingredients, re.S)
    assert hierarchy and '<option value="2" selected>2</option>' in hierarchy.group(1)  # choices, default selected
    assert '<textarea id="input-allergens"' in ingredients  # JSON column
    depletion = ui.get("/data/inventory_depletions/-/new").text
    assert 'type="datetime-local" name="depletion_date"' in depletion


def test_natural_keys_in_urls_and_detail_page(ui: UI) -> None:
    listing = ui.get("/data/ingredients").text
    assert 'href="/data/ingredients/bread_flour"' in listing
    detail = ui.get("/data/ingredients/bread_flour")
    assert detail.status_code == 200
    assert "<h1>bread_flour</h1>" in detail.text
    assert 'href="/data/ingredients/bread_flour/edit"' in detail.text
    # Products that use it are linked, with what a delete would do to them.
    assert "they are deleted too" in detail.text and "/data/products?ingredient_id=" in detail.text
    product = ui.get("/data/products/mill_bread_flour_5").text
    assert 'href="/data/ingredients/bread_flour">bread_flour</a>' in product
    # The id works too; unit codes with a space are addressed percent-encoded.
    row_id = re.search(r'<th scope="row"[^>]*>id</th>\s*<td class="uuid">([0-9a-f-]{36})', detail.text).group(1)
    assert ui.get(f"/data/ingredients/{row_id}").status_code == 200
    assert ui.get("/data/units/fl%20oz").status_code == 200


def test_pagination(ui: UI) -> None:
    first = ui.get("/data/ingredients").text
    assert "page 1 of 2" in first and 'href="/data/ingredients?page=2"' in first
    second = ui.get("/data/ingredients?page=2").text
    assert "page 2 of 2" in second and "spice_59" in second and "bread_flour" not in second


def test_filter_by_foreign_key(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        flour_id = store.resolve("ingredients", "bread_flour")
    page = ui.get(f"/data/products?ingredient_id={flour_id}").text
    assert "ingredient_id = bread_flour" in page and "mill_bread_flour_5" in page


# --------------------------------------------------------------------------- writes


def test_create_ingredient_and_product(ui: UI, live: Path) -> None:
    created = ui.post("/data/ingredients/-/new", {"display_name": "Rye Flour", "slug": "rye_flour",
                                                   "category": "Flour", "hierarchy_level": "2"})
    assert created.status_code == 302 and created.headers["location"] == "/data/ingredients/rye_flour"
    assert "Saved ingredients rye_flour." in alerts(ui.get("/data/ingredients/rye_flour").text)
    form = ui.get("/data/products/-/new").text
    rye_id = re.search(r'<option value="([0-9a-f-]{36})">rye_flour</option>', form).group(1)
    product = ui.post("/data/products/-/new", {"ingredient_id": rye_id, "brand": "Mill", "package_unit": "bag",
                                               "package_unit_quantity": "2.5", "slug": "mill_rye_2",
                                               "preferred": "1"})
    assert product.status_code == 302 and product.headers["location"] == "/data/products/mill_rye_2"
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("products", "mill_rye_2")
    assert row["ingredient_id"] == rye_id and row["package_unit_quantity"] == 2.5 and row["preferred"] == 1


def test_validation_errors_are_shown_next_to_their_fields(ui: UI, live: Path) -> None:
    before = db_fingerprint(live)
    missing = ui.post("/data/ingredients/-/new", {"display_name": "", "slug": "nameless", "category": "Flour"})
    assert missing.status_code == 400
    assert field_error(missing.text, "display_name") == "Field required"
    assert 'value="nameless"' in missing.text  # what was typed is kept
    duplicate = ui.post("/data/ingredients/-/new", {"display_name": "Other", "slug": "bread_flour", "category": "x"})
    assert duplicate.status_code == 400
    assert "already has the same" in (field_error(duplicate.text, "slug") or "")
    not_a_number = ui.post("/data/products/-/new", {"ingredient_id": "", "package_unit": "bag",
                                                    "package_unit_quantity": "lots"},
                           form_page="/data/products/-/new")
    assert not_a_number.status_code == 400
    assert field_error(not_a_number.text, "ingredient_id") or field_error(not_a_number.text, "package_unit_quantity")
    bad_json = ui.post("/data/ingredients/-/new", {"display_name": "J", "slug": "j", "category": "x",
                                                   "allergens": "{not json"})
    assert "JSON" in (field_error(bad_json.text, "allergens") or "")
    assert db_fingerprint(live) == before


def test_a_number_that_is_not_a_number_is_reported_by_the_model(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        flour_id = store.resolve("ingredients", "bread_flour")
    page = ui.post("/data/products/-/new", {"ingredient_id": flour_id, "package_unit": "bag",
                                            "package_unit_quantity": "lots", "slug": "p"})
    assert page.status_code == 400
    assert "valid number" in (field_error(page.text, "package_unit_quantity") or "")


def test_edit_changes_the_row_and_follows_a_new_natural_key(ui: UI, live: Path) -> None:
    form = ui.get("/data/ingredients/cane_sugar/edit").text
    assert 'value="Cane Sugar"' in form
    saved = ui.post("/data/ingredients/cane_sugar/edit",
                    {**based_on(form), "display_name": "Cane Sugar", "slug": "white_sugar", "category": "Sugar",
                     "hierarchy_level": "2", "notes": "fine"})
    assert saved.status_code == 302 and saved.headers["location"] == "/data/ingredients/white_sugar"
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "white_sugar")["notes"] == "fine"
    cleared = ui.post("/data/ingredients/white_sugar/edit",
                      {**based_on(ui.get("/data/ingredients/white_sugar/edit").text), "display_name": "",
                       "slug": "white_sugar", "category": "Sugar", "hierarchy_level": "2"})
    assert cleared.status_code == 400 and field_error(cleared.text, "display_name")


def test_delete_needs_confirmation_and_shows_refusals(ui: UI, live: Path) -> None:
    page = ui.get("/data/ingredients/spice_00/delete")
    assert page.status_code == 200 and "Yes, delete this ingredients row" in page.text
    unconfirmed = ui.post("/data/ingredients/spice_00/delete", {}, form_page="/data/ingredients/spice_00/delete")
    assert unconfirmed.status_code == 400 and "needs the confirmation" in unconfirmed.text
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "spice_00")
    plan = re.search(r'name="plan" value="([^"]+)"', page.text).group(1)  # what the page said it deletes
    done = ui.post("/data/ingredients/spice_00/delete", {"confirm": "yes", "plan": plan})
    assert done.status_code == 302 and done.headers["location"] == "/data/ingredients"
    assert ui.get("/data/ingredients/spice_00").status_code == 404
    # A RESTRICT reference (purchases.product_id) refuses the delete, with the reason on the page.
    with Store(live, device_id=DEVICE_A) as store:
        store.insert("purchases", {"product_id": store.resolve("products", "mill_bread_flour_5"),
                                   "supplier_id": store.resolve("suppliers", "mill_shop"),
                                   "purchase_date": "2026-01-02", "unit_price": 3.5, "quantity_purchased": 2})
    before = db_fingerprint(live)
    # The page says so before anything is tried, and offers no Delete button.
    page = ui.get("/data/products/mill_bread_flour_5/delete").text
    assert "The delete would be refused" in page and "still used by 1 purchases row(s)" in html.unescape(page)
    assert 'name="confirm"' not in page
    refused = ui.post("/data/products/mill_bread_flour_5/delete", {"confirm": "yes"},
                      form_page="/data/ingredients/spice_01/delete")
    assert refused.status_code == 400
    assert "still used by 1 purchases row(s)" in html.unescape(refused.text)
    assert db_fingerprint(live) == before


def test_system_tables_are_read_only(ui: UI) -> None:
    assert ui.get("/data/_bakestore_meta").status_code == 200
    page = ui.get("/data/_bakestore_meta/-/new")
    assert page.status_code == 400 and "read-only" in page.text


# --------------------------------------------------------------------------- CSRF and errors


@pytest.mark.parametrize("path", ["/data/ingredients/-/new", "/data/ingredients/spice_01/delete", "/backups/export",
                                  "/backups/restore", "/backups/undo", "/forensics"])
def test_post_without_csrf_token_is_refused(ui: UI, live: Path, path: str) -> None:
    before = db_fingerprint(live)
    response = ui.post(path, {"display_name": "X", "slug": "x", "category": "x", "confirm": "yes", "source": "live"},
                       token=False)
    assert response.status_code == 403
    forged = ui.post(path, {"display_name": "X", "csrftoken": "forged", "confirm": "yes"}, token=False)
    assert forged.status_code == 403
    assert db_fingerprint(live) == before


def test_errors_are_calm_pages_not_tracebacks(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown_table = ui.get("/data/no_such_table")
    assert unknown_table.status_code == 404 and "unknown table" in unknown_table.text
    unknown_row = ui.get("/data/ingredients/no_such_row")
    assert unknown_row.status_code == 404 and "no_such_row" in unknown_row.text

    def boom(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(views, "_dashboard_data", boom)
    page = ui.get("/")
    assert page.status_code == 500
    assert "Something went wrong" in page.text and "disk on fire" in page.text
    assert "Traceback" not in page.text and 'href="/data"' in page.text  # our layout, not a bare error


def test_requests_for_another_host_are_refused(ui: UI) -> None:
    response = ui.get("/", headers={"host": "attacker.example"})
    assert response.status_code == 421


# --------------------------------------------------------------------------- backups


def _export_name(ui: UI) -> str:
    exported = ui.post("/backups/export", {}, form_page="/backups")
    assert exported.status_code == 302
    page = ui.get("/backups").text
    assert any(m.startswith("Exported") for m in alerts(page))
    return re.search(r'/backups/restore\?export=([^"]+)"', page).group(1)


def test_export_restore_with_confirmation_and_undo(ui: UI, live: Path) -> None:
    name = _export_name(ui)
    with Store(live, device_id=DEVICE_A) as store:
        exported = store.count("ingredients")
        store.insert("ingredients", {"display_name": "After Export", "slug": "after_export", "category": "x"})
    preview = ui.get(f"/backups/restore?export={name}")
    assert preview.status_code == 200
    assert "nothing has changed yet" in preview.text
    assert re.search(rf'<td>ingredients</td><td class="num">{exported + 1}</td><td class="num">{exported}</td>\s*'
                     r'<td class="num">0</td><td class="num minus">1</td>', preview.text)
    # Without the confirmation box nothing happens.
    before = db_fingerprint(live)
    fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', preview.text).group(1)
    unconfirmed = ui.post("/backups/restore", {"export": name, "fingerprint": fingerprint},
                          form_page=f"/backups/restore?export={name}")
    assert unconfirmed.status_code == 400 and "tick the confirmation box" in unconfirmed.text
    assert db_fingerprint(live) == before
    done = ui.post("/backups/restore", {"export": name, "fingerprint": fingerprint, "confirm": "yes"},
                   form_page=f"/backups/restore?export={name}")
    assert done.status_code == 302
    backups = ui.get("/backups").text
    assert any("Restored from" in m and "restore point" in m for m in alerts(backups))
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("ingredients") == exported
    # Undo: a preview, then the confirmation.
    undo_preview = ui.get("/backups/undo")
    assert undo_preview.status_code == 200 and "nothing has changed yet" in undo_preview.text
    point = re.search(r'name="undo_point" value="([^"]+)"', undo_preview.text).group(1)
    stale = ui.post("/backups/undo", {"confirm": "yes", "undo_point": "20000101T000000000Z-000-restore.db"},
                    form_page="/backups/undo")
    assert stale.status_code == 400 and "changed since the preview" in stale.text
    undo_fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', undo_preview.text).group(1)
    undone = ui.post("/backups/undo", {"confirm": "yes", "undo_point": point, "fingerprint": undo_fingerprint},
                     form_page="/backups/undo")
    assert undone.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        assert store.count("ingredients") == exported + 1
    # The audit page lists both, newest first, with details.
    page = ui.get("/audit").text
    operations = re.findall(r"<strong>(restore|undo)</strong>", page)
    assert operations[:2] == ["undo", "restore"]
    assert "restore point" in page and "ingredients" in page


def test_restore_refuses_when_the_preview_is_stale(ui: UI, live: Path) -> None:
    name = _export_name(ui)
    preview = ui.get(f"/backups/restore?export={name}").text
    fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', preview).group(1)
    with Store(live, device_id=DEVICE_A) as store:  # the data changes after the preview
        store.insert("ingredients", {"display_name": "Late", "slug": "late", "category": "x"})
    before = db_fingerprint(live)
    response = ui.post("/backups/restore", {"export": name, "fingerprint": fingerprint, "confirm": "yes"},
                       form_page=f"/backups/restore?export={name}")
    assert response.status_code == 400 and "changed since the preview" in response.text
    assert db_fingerprint(live) == before


def test_refusals_are_shown_with_their_reason(ui: UI, live: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db", device_id=DEVICE_A) as empty:
        export = empty.export(tmp_path / "elsewhere")

    def preview(**extra: str) -> Any:
        return ui.post("/backups/restore", {"action": "preview", **extra}, form_page="/backups")

    shrink = preview(path=str(export.path))
    assert shrink.status_code == 200
    assert "Refused:" in shrink.text and "would empty" in shrink.text
    assert "--allow-shrink" not in shrink.text  # a web page, not the command line
    assert "Preview, allowing the data to shrink" in shrink.text
    allowed = preview(path=str(export.path), allow_shrink="1")
    assert "nothing has changed yet" in allowed.text and 'name="allow_shrink" value="1"' in allowed.text
    missing = preview(path=str(tmp_path / "nope"))
    assert "Refused:" in missing.text
    unknown = ui.get("/backups/restore?export=bakestore-export-unknown")
    assert "no export named" in unknown.text
    no_point = ui.get("/backups/undo")
    assert "Refused:" in no_point.text and "no restore point" in no_point.text
    # Previews are questions: they leave no audit record, and a path is never previewed on a GET.
    assert list(audit.read(live)) == []
    by_get = ui.get(f"/backups/restore?path={export.path}")
    assert by_get.status_code == 400 and "form on the Backups page" in by_get.text
    assert list(audit.read(live)) == []
    refused = ui.post("/backups/restore", {"path": str(export.path), "confirm": "yes", "fingerprint": "x"},
                      form_page="/backups")
    assert refused.status_code == 400 and "would empty" in refused.text
    # A refused restore is audited, and the audit page shows the reason.
    records = list(audit.read(live))
    assert records and records[0]["outcome"] == "refused"
    assert "refused" in ui.get("/audit").text


# --------------------------------------------------------------------------- forensics


def test_forensics_report_with_timeline(ui: UI, live: Path, tmp_path: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        for i in range(10, 20):
            store.delete("ingredients", f"spice_{i:02d}")
    missing = ui.post("/forensics", {"source": "path", "path": str(tmp_path / "nope.db")})
    assert missing.status_code == 400 and "no such file" in missing.text
    ran = ui.post("/forensics", {"source": "live"})
    assert ran.status_code == 302
    case_url = ran.headers["location"]
    page = ui.get(case_url)
    assert page.status_code == 200
    for section in ('id="findings"', 'id="pages"', 'id="timeline"', 'id="recovered"', "free pages"):
        assert section in page.text
    assert "<svg" in page.text and 'class="live"' in page.text
    assert "ingredients" in page.text
    svg = ui.get(case_url + "/timeline.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<circle" in svg.text
    listing = ui.get("/forensics").text
    assert case_url in listing
    assert ui.get("/forensics/cases/not-a-case").status_code == 404


def test_dashboard_shows_the_watcher_status(ui: UI, live: Path) -> None:
    import json
    import os

    from bakestore import watch
    assert "watcher: not running" in ui.get("/").text
    watch.status_path_for(live).write_text(json.dumps(
        {"pid": os.getpid(), "state": "watching", "started_at": "2026-11-25T10:00:00.000Z",
         "last_export": {"at": "2026-11-25T10:05:00.000Z", "rows": 42}}), encoding="utf-8")
    text = ui.get("/").text
    assert "watcher: watching" in text and "2026-11-25T10:05:00.000Z (42 rows)" in text
    watch.status_path_for(live).write_text(json.dumps({"pid": 2 ** 22 + 12345, "state": "watching"}),
                                           encoding="utf-8")
    assert "watcher: not running" in ui.get("/").text  # a dead pid is not shown as alive


def test_datasette_pages_link_to_the_ui(ui: UI) -> None:
    page = ui.get("/bakestore/ingredients")
    assert page.status_code == 200
    for label in ("bakestore: Dashboard", "bakestore: Backups", "bakestore: Forensics"):
        assert label in page.text  # menu_links in Datasette's own menu


def test_every_ui_file_is_shipped_in_the_package() -> None:
    """pip install . (not only editable) must carry every template and static file of ui/."""
    import fnmatch
    import importlib.resources
    import tomllib

    from bakestore.web.resources import static_dir, templates_dir

    repo = Path(__file__).resolve().parents[1]
    config = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"]["bakestore.ui"] == "ui"
    assert {"bakestore.ui", "bakestore.web"} <= set(config["packages"])
    globs = config["package-data"]["bakestore.ui"]
    files = [p.relative_to(repo / "ui").as_posix() for p in (repo / "ui").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, g) for g in globs), f"ui/{name} is not in the package data"
    # At run time the files are found through the installed package, not the repository layout.
    assert templates_dir() == Path(str(importlib.resources.files("bakestore.ui"))) / "templates"
    assert (templates_dir() / "base.html").is_file() and (static_dir() / "bakestore.css").is_file()


def test_timeline_svg_shows_clusters_lanes_and_recovered_rows() -> None:
    from bakestore.web.charts import timeline_svg

    day = 86400
    t0 = 1_790_000_000 // 3600 * 3600
    histogram = ([{"table": "ingredients", "hour_ts": t0, "hour": "a", "state": "live", "rows": 40},
                  {"table": "recipes", "hour_ts": t0 + 3600, "hour": "b", "state": "live", "rows": 5},
                  {"table": "recipes", "hour_ts": t0 + 3 * day, "hour": "c", "state": "live", "rows": 7},
                  {"table": "recipes", "hour_ts": t0 + 3 * day, "hour": "c", "state": "recovered", "rows": 2}])
    clusters = [{"start_ts": t0, "end_ts": t0 + 3600, "count": 45, "start": "s1", "end": "e1"},
                {"start_ts": t0 + 3 * day, "end_ts": t0 + 3 * day, "count": 7, "start": "s2", "end": "e2"}]
    svg = timeline_svg({"histogram": histogram, "clusters": clusters, "gap_seconds": 3600})
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count('<g class="cluster">') == 2 and "C1 · 45" in svg and "C2 · 7" in svg
    assert ">all tables</text>" in svg and ">ingredients</text>" in svg and ">recipes</text>" in svg
    assert svg.count('class="recovered"') == 2  # the recipes lane and the all-tables lane
    import xml.dom.minidom

    xml.dom.minidom.parseString(svg)  # well-formed
    empty = timeline_svg({"histogram": [], "clusters": []})
    assert "no timeline" in empty


def test_every_table_of_the_demo_renders_list_detail_edit_and_delete_pages(tmp_path: Path) -> None:
    from bakestore.demo import build_demo

    path = tmp_path / "demo.db"
    build_demo(path)
    client = UI(build_datasette(path, ui=True, demo=True))
    try:
        assert "demo data" in client.get("/").text
        for spec in REGISTRY:
            listing = client.get(f"/data/{spec.name}")
            assert listing.status_code == 200, spec.name
            if not spec.has_row_identity:
                continue
            links = re.findall(rf'<td class="[a-z]+"><a href="(/data/{spec.name}/[^"]+)"', listing.text)
            assert links, f"{spec.name}: the demo has no rows to link to"
            detail = client.get(html.unescape(links[0]))
            assert detail.status_code == 200, (spec.name, links[0])
            if spec.natural_key and len(spec.natural_key) > 1:
                # /data/<table>/<parent key>%2F<slug>: the "/" inside a key is encoded (a slug
                # "edit" or "delete" must not open another page)
                assert links[0].count("/") == 3 and "%2F" in links[0], links[0]
            if forms.editable(spec):
                for suffix in ("/edit", "/delete"):
                    page = client.get(html.unescape(links[0]) + suffix)
                    assert page.status_code == 200, (spec.name, suffix)
    finally:
        client.close()


def test_an_edit_based_on_a_stale_page_is_refused(ui: UI, live: Path) -> None:
    import re as _re

    page = ui.get("/data/ingredients/cane_sugar/edit").text
    version = _re.search(r'name="_row_version" value="([^"]+)"', page).group(1)
    with Store(live, device_id=DEVICE_A) as store:
        store.update("ingredients", "cane_sugar", {"notes": "changed by a sync meanwhile"})
    stale = ui.post("/data/ingredients/cane_sugar/edit",
                    {**based_on(page), "_row_version": version, "display_name": "Cane Sugar", "slug": "cane_sugar",
                     "category": "Sugar", "hierarchy_level": "2", "notes": "my edit"})
    assert stale.status_code == 400 and "changed by someone else" in stale.text
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "cane_sugar")["notes"] == "changed by a sync meanwhile"
