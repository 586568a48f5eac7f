"""Fixes after the UI review: edits that never overwrite unseen and never change what was not
touched, dangling references, undo and delete applying exactly what was shown, restore from a
typed path past the shrink guard, integers beyond SQLite's range, keys that look like paths, a
busy port, automatic exports, and the CLI's delete, prompts and byte-order marks.

The UI is driven in-process through ``datasette.client`` (as in ``test_ui.py``); a form is posted
the way a browser posts it (:func:`browser_form`)."""

from __future__ import annotations

import html
import json
import re
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from bakestore import audit
from bakestore.cli import main
from bakestore.sqlite import sqlite3
from bakestore.store import Store
from bakestore.web.server import build_datasette

from .conftest import DEVICE_A, DEVICE_B, db_fingerprint
from .test_ui import UI, alerts, field_error


def browser_form(page: str) -> dict[str, str]:
    """What a browser submits for the (one) row form on ``page``, untouched.

    Every input with its value (hidden ones too), a textarea's text without the one newline an HTML
    parser drops after the opening tag and with CRLF line breaks, a select's selected option (else
    its first), a checkbox only when ticked. Not the CSRF token: ``UI.post`` adds a fresh one.
    """
    form_html = re.search(r'<form method="post" class="rowform".*?</form>', page, re.S).group(0)
    form: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", form_html):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if "name" not in attrs or attrs["name"] == "csrftoken":
            continue
        if attrs.get("type") == "checkbox":
            if " checked" in tag:
                form[attrs["name"]] = attrs.get("value", "on")
            continue
        form[attrs["name"]] = html.unescape(attrs.get("value", ""))
    for name, text in re.findall(r'<textarea [^>]*name="(\w+)"[^>]*>(.*?)</textarea>', form_html, re.S):
        text = html.unescape(text)
        if text.startswith("\n"):
            text = text[1:]
        form[name] = text.replace("\r\n", "\n").replace("\n", "\r\n")
    for name, options in re.findall(r'<select [^>]*name="(\w+)"[^>]*>(.*?)</select>', form_html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(r'<option value="([^"]*)"',
                                                                                       options)
        form[name] = html.unescape(chosen.group(1)) if chosen else ""
    return form


def rows_of(path: Path, table: str) -> list[dict[str, Any]]:
    with Store(path, device_id=DEVICE_A) as store:
        return list(store.rows(table))


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    with Store(path, device_id=DEVICE_A) as store:
        flour = store.insert("ingredients", {"display_name": "Bread Flour", "slug": "bread_flour", "category": "Flour"})
        store.insert("ingredients", {"display_name": "Cane Sugar", "slug": "cane_sugar", "category": "Sugar"})
        store.insert("ingredients", {"display_name": "Odd Values", "slug": "odd", "category": "",
                                     "description": "", "notes": "\nstarts with a newline\r\nand a CRLF",
                                     "foodon_id": "   "})
        product = store.insert("products", {"ingredient_id": flour["id"], "brand": "Mill", "package_unit": "bag",
                                            "package_unit_quantity": 5.0, "slug": "mill_5"})
        store.insert("products", {"ingredient_id": flour["id"], "package_unit": "bag",
                                  "package_unit_quantity": 25.0, "slug": "mill_25"})
        for level in ("each", "case"):
            store.insert("product_packaging", {"product_id": product["id"], "packaging_level": level})
        store.insert("inventory_items", {"product_id": product["id"], "quantity": 2.0,
                                         "last_updated": "2026-10-01T09:00:13.554Z"})
        snapshot = store.insert("inventory_snapshots", {"name": "Spring", "snapshot_date": "2026-03-01T00:00:00.000Z"})
        store.insert("snapshot_ingredients", {"snapshot_id": snapshot["id"], "ingredient_id": flour["id"]})
    return path


@pytest.fixture
def ui(live: Path) -> Iterator[UI]:
    client = UI(build_datasette(live, ui=True))
    yield client
    client.close()


def edit(ui: UI, url: str, changes: dict[str, str] | None = None, *, page: str | None = None) -> Any:
    form = browser_form(page if page is not None else ui.get(url).text)
    form.update(changes or {})
    return ui.post(url, form, form_page=url)


# --------------------------------------------------------------------------- 1. no silent overwrite


def test_a_page_shown_again_after_an_error_is_still_based_on_what_was_opened(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    based_on = {name: re.search(rf'name="{name}" value="([^"]+)"', opened).group(1) for name in ("_row_version", "_shown")}
    typo = edit(ui, url, {"notes": "my edit", "moisture_pct": "twelve"}, page=opened)
    assert typo.status_code == 400 and "valid number" in (field_error(typo.text, "moisture_pct") or "")
    for name, value in based_on.items():
        assert f'name="{name}" value="{value}"' in typo.text, name  # not the row's current ones
    with Store(live, device_id=DEVICE_B) as other:  # meanwhile, elsewhere
        other.update("ingredients", "cane_sugar", {"notes": "changed by a sync meanwhile"})
    fixed = edit(ui, url, {"moisture_pct": "12"}, page=typo.text)
    assert fixed.status_code == 400 and "changed by someone else" in fixed.text
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert row["notes"] == "changed by a sync meanwhile" and row["moisture_pct"] is None


def test_a_conflict_is_reported_before_a_field_error(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    with Store(live, device_id=DEVICE_B) as other:
        other.update("ingredients", "cane_sugar", {"notes": "changed meanwhile"})
    before = db_fingerprint(live)
    # A reference that does not resolve is refused while the form is read, before the store's own
    # version check: the conflict must still be what the page says.
    response = edit(ui, url, {"description": "mine", "parent_ingredient_id": "no_such_parent"}, page=opened)
    assert response.status_code == 400 and "changed by someone else" in response.text
    assert db_fingerprint(live) == before
    # Correcting the mistake on the page shown and saving keeps the other change.
    again = edit(ui, url, {"parent_ingredient_id": ""}, page=response.text)
    assert again.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert row["notes"] == "changed meanwhile" and row["description"] == "mine"


def test_after_a_conflict_a_second_click_never_overwrites_unseen(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    with Store(live, device_id=DEVICE_B) as other:
        other.update("ingredients", "cane_sugar", {"description": "set by the other device", "notes": "theirs"})
    conflict = edit(ui, url, {"notes": "mine"}, page=opened)
    assert conflict.status_code == 400 and "changed by someone else" in conflict.text
    form = browser_form(conflict.text)
    # A box the person did not touch now holds the current value; a box both changed keeps theirs,
    # with the current value shown next to it.
    assert form["description"] == "set by the other device" and form["notes"] == "mine"
    note = re.search(r'id="current-notes">(.*?)</p>', conflict.text, re.S).group(1)
    assert "theirs" in note and 'id="current-description"' not in conflict.text
    # Pressing Save again does not replace "theirs" without the explicit tick.
    again = ui.post(url, form, form_page=url)
    assert again.status_code == 400 and "replace them with mine" in again.text
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "cane_sugar")["notes"] == "theirs"
    # Putting the current value back needs no tick; ticking keeps mine. The other change survives.
    ticked = ui.post(url, {**browser_form(again.text), "_overwrite": "yes"}, form_page=url)
    assert ticked.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert row["notes"] == "mine" and row["description"] == "set by the other device"


# --------------------------------------------------------------------------- 2. an untouched form changes nothing


def test_saving_an_untouched_form_changes_nothing(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        item_id = next(store.rows("inventory_items"))["id"]
    for url in ("/data/ingredients/odd/edit", f"/data/inventory_items/{item_id}/edit", "/data/products/mill_5/edit"):
        page = ui.get(url).text
        before = db_fingerprint(live)
        saved = edit(ui, url, page=page)
        assert saved.status_code == 302, (url, alerts(saved.text))
        assert db_fingerprint(live) == before, url  # not even a new row version
    assert "Nothing to save" in " ".join(alerts(ui.get("/data/products/mill_5").text))
    with Store(live, device_id=DEVICE_A) as store:
        odd = store.get("ingredients", "odd")
        assert store.get("inventory_items", item_id)["last_updated"] == "2026-10-01T09:00:13.554Z"
    assert (odd["category"], odd["description"], odd["foodon_id"]) == ("", "", "   ")
    assert odd["notes"] == "\nstarts with a newline\r\nand a CRLF" and odd["slug"] == "odd"


def test_the_page_shows_milliseconds_a_leading_newline_and_null_apart_from_empty(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        item_id = next(store.rows("inventory_items"))["id"]
    item = ui.get(f"/data/inventory_items/{item_id}/edit").text
    assert re.search(r'type="datetime-local" name="last_updated" value="2026-10-01T09:00:13.554"', item)
    odd = ui.get("/data/ingredients/odd/edit").text
    assert re.search(r'<textarea id="input-notes"[^>]*>\n\nstarts with a newline', odd)
    assert re.search(r'<textarea id="input-description"[^>]*placeholder="empty text"', odd)
    assert re.search(r'id="input-foodex2_code"[^>]*placeholder="no value"', odd)


def test_only_edited_fields_are_written_with_the_documented_blank_rule(ui: UI, live: Path) -> None:
    # A required column holding "" (valid, e.g. from an import) does not block editing another field.
    saved = edit(ui, "/data/ingredients/odd/edit", {"notes": "a note", "description": ""})
    assert saved.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        odd = store.get("ingredients", "odd")
        item_id = next(store.rows("inventory_items"))["id"]
    assert odd["notes"] == "a note" and odd["category"] == "" and odd["foodon_id"] == "   "
    assert odd["description"] == ""  # shown as "", posted as "": untouched
    cleared = edit(ui, "/data/ingredients/odd/edit", {"notes": "", "foodon_id": ""})
    assert cleared.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        odd = store.get("ingredients", "odd")
    assert odd["notes"] is None and odd["foodon_id"] is None  # an optional field made blank: no value
    required = edit(ui, "/data/ingredients/cane_sugar/edit", {"category": ""})
    assert required.status_code == 400 and field_error(required.text, "category") == "Field required"
    timed = edit(ui, f"/data/inventory_items/{item_id}/edit", {"last_updated": "2026-10-02T10:11:12.5"})
    assert timed.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("inventory_items", item_id)["last_updated"] == "2026-10-02T10:11:12.500Z"


# --------------------------------------------------------------------------- 3. dangling references


def test_a_dangling_reference_is_shown_as_missing_never_replaced(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        gone = store.insert("ingredients", {"display_name": "Gone", "slug": "gone", "category": "x"})
        store.insert("products", {"ingredient_id": gone["id"], "package_unit": "bag", "package_unit_quantity": 1.0,
                                  "slug": "orphan"})
    conn = sqlite3.connect(live)  # a writer without foreign keys (the sqlite3 shell)
    conn.execute("DELETE FROM ingredients WHERE slug = 'gone'")
    conn.commit()
    conn.close()
    page = ui.get("/data/products/orphan/edit").text
    select = re.search(r'<select id="input-ingredient_id".*?</select>', page, re.S).group(0)
    assert f'<option value="{gone["id"]}" selected>{gone["id"]} (missing)</option>' in select
    before = db_fingerprint(live)
    response = edit(ui, "/data/products/orphan/edit", {"brand": "New brand"}, page=page)
    assert response.status_code == 400 and "no ingredients row" in (field_error(response.text, "ingredient_id") or "")
    assert db_fingerprint(live) == before


# --------------------------------------------------------------------------- 4. undo applies what was previewed


def test_undo_refuses_when_the_data_changed_after_the_preview(ui: UI, live: Path, tmp_path: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        export = store.export(tmp_path / "exports")
        store.insert("ingredients", {"display_name": "B", "slug": "b", "category": "x"})
        store.restore(export.path)  # a restore point holding b; live without it
    preview = ui.get("/backups/undo").text
    form = {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                                                                      preview) if name != "csrftoken"}
    assert form["fingerprint"]
    with Store(live, device_id=DEVICE_A) as store:  # after the preview
        store.insert("ingredients", {"display_name": "After preview", "slug": "after_preview", "category": "x"})
    before = db_fingerprint(live)
    response = ui.post("/backups/undo", {**form, "confirm": "yes"}, form_page="/backups/undo")
    assert response.status_code == 400 and "changed since the preview" in response.text
    assert db_fingerprint(live) == before
    assert [r["outcome"] for r in audit.read(live, limit=1)] == ["cancelled"]


# --------------------------------------------------------------------------- 5. delete shows all it removes


def test_the_delete_page_lists_everything_the_cascade_removes_and_clears(ui: UI, live: Path, tmp_path: Path) -> None:
    page = ui.get("/data/ingredients/bread_flour/delete").text
    removed = dict(re.findall(r"<tr><td>(\w+)(?: <span[^>]*>[^<]*</span>)?</td><td class=\"num\">(\d+)</td></tr>",
                              re.search(r'id="delete-removes">.*?</table>', page, re.S).group(0)))
    # products and what depends on the products (packaging, inventory), not only direct references
    assert removed == {"ingredients": "1", "products": "2", "product_packaging": "2", "inventory_items": "1"}
    assert "removes <strong>6</strong> rows" in page
    cleared = re.search(r'id="delete-clears">.*?</table>', page, re.S).group(0)
    assert "<td>snapshot_ingredients</td><td>ingredient_id</td><td class=\"num\">1</td>" in cleared
    # The same numbers as the delete itself
    plan = re.search(r'name="plan" value="([^"]+)"', page).group(1)
    done = ui.post("/data/ingredients/bread_flour/delete", {"confirm": "yes", "plan": plan},
                   form_page="/data/ingredients/cane_sugar/delete")
    assert done.status_code == 302
    record = next(audit.read(live))
    assert record["operation"] == "delete" and record["outcome"] == "done"
    assert record["details"]["removed"] == {k: int(v) for k, v in removed.items()}
    assert rows_of(live, "products") == [] and rows_of(live, "product_packaging") == []


def test_a_delete_whose_plan_changed_since_the_page_is_refused(ui: UI, live: Path) -> None:
    page = ui.get("/data/ingredients/bread_flour/delete").text
    plan = re.search(r'name="plan" value="([^"]+)"', page).group(1)
    with Store(live, device_id=DEVICE_A) as store:  # one more row would go with it now
        store.insert("ingredient_aliases", {"ingredient_id": store.resolve("ingredients", "bread_flour"),
                                            "alias": "Strong flour"})
    before = db_fingerprint(live)
    response = ui.post("/data/ingredients/bread_flour/delete", {"confirm": "yes", "plan": plan},
                       form_page="/data/ingredients/bread_flour/delete")
    assert response.status_code == 400 and "changed since this page was shown" in response.text
    assert "ingredient_aliases" in response.text  # the new list is shown
    assert db_fingerprint(live) == before


# --------------------------------------------------------------------------- 6. typed path past the shrink guard


def test_a_typed_path_can_be_previewed_allowing_the_data_to_shrink(ui: UI, live: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "small.db", device_id=DEVICE_A) as small:
        export = small.export(tmp_path / "elsewhere")
    refused = ui.post("/backups/restore", {"action": "preview", "path": str(export.path)}, form_page="/backups")
    assert "Refused:" in refused.text and "--allow-shrink" not in refused.text
    button = re.search(r'<form method="(\w+)" action="/backups/restore" class="confirm">(.*?)</form>',
                       refused.text, re.S)
    assert button.group(1) == "post" and 'name="csrftoken"' in button.group(2)
    params = {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', button.group(2))
              if name != "csrftoken"}
    assert params == {"action": "preview", "path": str(export.path), "allow_shrink": "1"}
    before = db_fingerprint(live)
    allowed = ui.post("/backups/restore", params, form_page="/backups")
    assert allowed.status_code == 200 and "nothing has changed yet" in allowed.text
    assert db_fingerprint(live) == before
    fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', allowed.text).group(1)
    done = ui.post("/backups/restore", {"path": str(export.path), "allow_shrink": "1", "fingerprint": fingerprint,
                                        "confirm": "yes"}, form_page="/backups")
    assert done.status_code == 302
    assert rows_of(live, "ingredients") == []


# --------------------------------------------------------------------------- 7. integers beyond SQLite's range


def test_an_integer_beyond_64_bits_is_refused_next_to_its_field(ui: UI, live: Path) -> None:
    before = db_fingerprint(live)
    response = ui.post("/data/events/-/new", {"name": "Party", "event_date": "2026-12-24", "plan_state": "draft",
                                              "year": "99999999999999999999"})
    assert response.status_code == 400 and "Traceback" not in response.text
    assert "64-bit" in (field_error(response.text, "year") or "")
    for odd in ("1_000", "١٢٣"):  # int() would take these; a form field does not
        odd_response = ui.post("/data/events/-/new", {"name": "Party", "event_date": "2026-12-24", "year": odd,
                                                      "plan_state": "draft"})
        assert odd_response.status_code == 400 and field_error(odd_response.text, "year")
    assert db_fingerprint(live) == before


def test_cli_insert_of_an_integer_beyond_64_bits_is_one_line(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.ndjson"
    big.write_text('{"name": "P", "event_date": "2026-12-24", "year": 2026}\n'
                   '{"name": "Q", "event_date": "2026-12-24", "year": 99999999999999999999}\n', encoding="utf-8")
    before = db_fingerprint(live)
    result = runner.invoke(main, ["--db", str(live), "insert", "events", str(big)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: big.ndjson: line 2: events.year:")
    assert "64-bit" in lines[0]
    assert db_fingerprint(live) == before


# --------------------------------------------------------------------------- 8. keys that look like paths


def test_keys_with_a_slash_dots_or_nothing_open_their_own_row(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        made = {slug: store.insert("ingredients", {"display_name": f"Tricky {i}", "slug": slug, "category": "x"})["id"]
                for i, slug in enumerate(["x", "x/delete", "x/edit", "", "..", "a/b"])}
    listing = ui.get("/data/ingredients?page=1").text
    links = {html.unescape(label): href for href, label in re.findall(r'<a href="(/data/ingredients/[^"]*)">([^<]*)</a>',
                                                                      listing)}
    assert links["x/delete"] == "/data/ingredients/x%2Fdelete"
    assert links["(no value)"] == f"/data/ingredients/{made['']}"  # an empty key: the id
    assert links[".."] == f"/data/ingredients/{made['..']}"
    for slug, row_id in made.items():
        href = links[slug or "(no value)"]
        detail = ui.get(href)
        assert detail.status_code == 200 and row_id in detail.text, slug
        assert ui.get(href + "/edit").status_code == 200, slug
        delete = ui.get(href + "/delete")
        assert delete.status_code == 200 and f'<a href="{href}">' in delete.text, slug  # this row's page
        assert "<h1>Delete ?</h1>" not in delete.text  # an empty key still has a name
    saved = edit(ui, links["x/delete"] + "/edit", {"notes": "still x/delete"})
    assert saved.status_code == 302 and saved.headers["location"] == "/data/ingredients/x%2Fdelete"
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "x/delete")["notes"] == "still x/delete"
        assert store.get("ingredients", "x")["notes"] is None


# --------------------------------------------------------------------------- 9. a busy port


def test_ui_on_a_busy_port_is_one_line_and_opens_no_browser(runner: CliRunner, live: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["--db", str(live), "ui", "--port", str(port)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port} is already in use" in lines[0]
    assert opened == []


def test_the_browser_opens_only_once_the_server_has_started() -> None:
    from types import SimpleNamespace

    from bakestore.web.server import open_browser_when_started

    opened: list[str] = []
    failed = SimpleNamespace(started=False, should_exit=True)
    assert open_browser_when_started(failed, "http://x/", opener=opened.append) is False and opened == []
    never = SimpleNamespace(started=False, should_exit=False)
    assert open_browser_when_started(never, "http://x/", timeout=0.2, opener=opened.append) is False and opened == []
    running = SimpleNamespace(started=True, should_exit=False)
    assert open_browser_when_started(running, "http://x/", opener=opened.append) is True and opened == ["http://x/"]


# --------------------------------------------------------------------------- 10. automatic exports


def test_automatic_exports_are_listed_marked_and_restorable(ui: UI, live: Path) -> None:
    from bakestore.watch import default_watch_dir

    with Store(live, device_id=DEVICE_A) as store:
        auto = store.export(default_watch_dir(live))
    backups = ui.get("/backups").text
    row = re.search(rf"<tr><td><code>{auto.path.name}</code>.*?</tr>", backups, re.S).group(0)
    assert ">automatic</span>" in row and f"/backups/restore?auto={auto.path.name}" in row
    dashboard = ui.get("/").text
    assert auto.path.name in dashboard and ">automatic</span>" in dashboard
    preview = ui.get(f"/backups/restore?auto={auto.path.name}")
    assert preview.status_code == 200 and "nothing has changed yet" in preview.text
    assert f"automatic export {auto.path.name}" in preview.text


# --------------------------------------------------------------------------- CLI nits


def test_cli_delete_shows_asks_and_is_audited(runner: CliRunner, live: Path) -> None:
    def run(*args: str, input: str | None = None) -> Any:  # noqa: A002
        return runner.invoke(main, ["--db", str(live), "delete", "ingredients", "bread_flour", *args], input=input)

    before = db_fingerprint(live)
    dry = run("--dry-run")
    assert dry.exit_code == 0 and "dry run: nothing was changed" in dry.output
    assert "rows removed: 6 (ingredients 1, products 2, product_packaging 2, inventory_items 1)" in dry.output
    assert "references cleared: snapshot_ingredients.ingredient_id 1" in dry.output
    assert list(audit.read(live)) == []  # a dry run is a question
    no = run(input="n\n")
    assert no.exit_code == 1 and "rows removed: 6" in no.output and "cancelled" in no.output
    eof = run(input="")  # end of input (or Ctrl+C) at the prompt is a no
    assert eof.exit_code == 1 and "cancelled" in eof.output
    assert db_fingerprint(live) == before
    assert [r["outcome"] for r in audit.read(live)] == ["cancelled", "cancelled"]
    assert run("--json").exit_code == 2  # a prompt is not machine-readable
    done = run("--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["removed"] == {"ingredients": 1, "products": 2, "product_packaging": 2,
                                                  "inventory_items": 1}
    record = next(audit.read(live))
    assert (record["operation"], record["outcome"], record["source"]) == ("delete", "done", "ingredients bread_flour")
    assert record["counts_before"]["products"] == 2 and record["counts_after"]["products"] == 0


def test_eof_at_a_restore_prompt_is_audited_as_cancelled(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        export = store.export(tmp_path / "exports")
        store.insert("ingredients", {"display_name": "Late", "slug": "late", "category": "x"})
    before = db_fingerprint(live)
    result = runner.invoke(main, ["--db", str(live), "restore", str(export.path)], input="")
    assert result.exit_code == 1 and "cancelled" in result.output and "Abort" not in result.output
    assert db_fingerprint(live) == before
    record = next(audit.read(live))
    assert record["outcome"] == "cancelled" and "Abort" not in (record["reason"] or "")


def test_json_with_a_byte_order_mark_is_accepted(runner: CliRunner, live: Path, tmp_path: Path) -> None:
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"name": "Ann"}, {"name": "Bob"}]).encode())
    result = runner.invoke(main, ["--db", str(live), "insert", "recipients", str(bom)])
    assert result.exit_code == 0, result.output
    assert sorted(r["name"] for r in rows_of(live, "recipients")) == ["Ann", "Bob"]
    ndjson = tmp_path / "bom.ndjson"
    ndjson.write_bytes(b"\xef\xbb\xbf" + b'{"name": "Cy"}\n{"name": "Di"}\n')
    assert runner.invoke(main, ["--db", str(live), "insert", "recipients", str(ndjson)]).exit_code == 0


# --------------------------------------------------------------------------- second review: edits and conflicts


def test_an_edit_is_never_saved_onto_another_row_that_took_the_key(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    with Store(live, device_id=DEVICE_B) as other:  # renamed meanwhile, and a new row takes the old key
        mine = other.get("ingredients", "cane_sugar")
        other.update("ingredients", mine["id"], {"slug": "cane_sugar_old", "display_name": "Cane Sugar (old)"})
        other.insert("ingredients", {"display_name": "Other", "slug": "cane_sugar", "category": "Other",
                                     "notes": "B's own notes"})
    assert f'name="_row_id" value="{mine["id"]}"' in opened
    before = db_fingerprint(live)
    for extra in ({}, {"_overwrite": "yes"}):
        response = edit(ui, url, {"notes": "my note for A", **extra}, page=opened)
        assert response.status_code == 409 and "Traceback" not in response.text
        message = " ".join(alerts(response.text))
        assert "this page was for another row" in message and "renamed or removed" in message
        assert f'<a href="/data/ingredients/{mine["id"]}" id="error-link">' in response.text
        assert 'class="rowform"' not in response.text  # no form filled with the other row's values
        assert db_fingerprint(live) == before
    with Store(live, device_id=DEVICE_B) as other:  # renamed and nothing took the key; then removed
        other.delete("ingredients", "cane_sugar")
    form = {**browser_form(opened), "notes": "my note for A"}
    gone_key = ui.post(url, form, form_page="/data/ingredients/bread_flour/edit")  # (any page, for the token)
    assert gone_key.status_code == 409 and f'href="/data/ingredients/{mine["id"]}"' in gone_key.text
    with Store(live, device_id=DEVICE_B) as other:
        other.delete("ingredients", mine["id"])
    removed = ui.post(url, form, form_page="/data/ingredients/bread_flour/edit")
    assert removed.status_code == 409 and "no longer exists" in " ".join(alerts(removed.text))
    assert rows_of(live, "ingredients") and all(r["notes"] != "my note for A" for r in rows_of(live, "ingredients"))


def test_a_contested_field_keeps_its_tick_after_another_conflict(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    with Store(live, device_id=DEVICE_B) as other:
        other.update("ingredients", "cane_sugar", {"notes": "theirs"})
    first = edit(ui, url, {"notes": "mine"}, page=opened)
    assert first.status_code == 400 and 'id="current-notes"' in first.text
    with Store(live, device_id=DEVICE_B) as other:  # an unrelated change while the first conflict page is read
        other.update("ingredients", "cane_sugar", {"description": "unrelated"})
    second = ui.post(url, browser_form(first.text), form_page=url)  # Save, no tick
    assert second.status_code == 400 and "changed by someone else" in second.text
    assert 'name="_overwrite"' in second.text
    assert "theirs" in re.search(r'id="current-notes">(.*?)</p>', second.text, re.S).group(1)
    form = browser_form(second.text)
    assert form["notes"] == "mine" and form["description"] == "unrelated"
    third = ui.post(url, form, form_page=url)  # Save again, still no tick
    assert third.status_code == 400 and "replace them with mine" in third.text
    with Store(live, device_id=DEVICE_A) as store:
        assert store.get("ingredients", "cane_sugar")["notes"] == "theirs"
    ticked = ui.post(url, {**browser_form(third.text), "_overwrite": "yes"}, form_page=url)
    assert ticked.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert (row["notes"], row["description"]) == ("mine", "unrelated")


def test_a_mistake_on_a_conflict_page_keeps_the_tick_and_the_notes(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    opened = ui.get(url).text
    with Store(live, device_id=DEVICE_B) as other:
        other.update("ingredients", "cane_sugar", {"notes": "theirs"})
    conflict = edit(ui, url, {"notes": "mine"}, page=opened)
    typo = ui.post(url, {**browser_form(conflict.text), "moisture_pct": "twelve", "_overwrite": "yes"}, form_page=url)
    assert typo.status_code == 400 and "valid number" in (field_error(typo.text, "moisture_pct") or "")
    assert re.search(r'<input type="checkbox" name="_overwrite" value="yes" checked>', typo.text)
    assert "theirs" in re.search(r'id="current-notes">(.*?)</p>', typo.text, re.S).group(1)
    fixed = ui.post(url, {**browser_form(typo.text), "moisture_pct": "12"}, form_page=url)
    assert fixed.status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert (row["notes"], row["moisture_pct"]) == ("mine", 12.0)


def test_an_edit_post_that_does_not_say_what_it_was_based_on_is_refused(ui: UI, live: Path) -> None:
    url = "/data/ingredients/cane_sugar/edit"
    page = ui.get(url).text
    before = db_fingerprint(live)
    for missing in ("_row_version", "_row_id"):
        form = {k: v for k, v in browser_form(page).items() if k != missing}
        response = ui.post(url, {**form, "notes": "mine"}, form_page=url)
        assert response.status_code == 400 and "did not say which row and which version" in response.text, missing
        assert f'<a href="{url}" id="error-link">' in response.text
    assert db_fingerprint(live) == before


def test_inputs_missing_from_a_post_are_left_alone(ui: UI, live: Path) -> None:
    with Store(live, device_id=DEVICE_A) as store:
        store.update("ingredients", "cane_sugar", {"notes": "kept", "description": "also kept"})
        store.update("products", "mill_5", {"is_hidden": True, "notes": "kept"})
    page = ui.get("/data/ingredients/cane_sugar/edit").text
    hidden = {k: v for k, v in browser_form(page).items() if k.startswith("_")}
    # Only the box that was changed is posted: no "Field required" for category, no NULL for notes.
    saved = ui.post("/data/ingredients/cane_sugar/edit", {**hidden, "display_name": "Raw Sugar"},
                    form_page="/data/ingredients/cane_sugar/edit")
    assert saved.status_code == 302, alerts(saved.text)
    with Store(live, device_id=DEVICE_A) as store:
        row = store.get("ingredients", "cane_sugar")
    assert (row["display_name"], row["category"], row["notes"], row["description"]) == \
        ("Raw Sugar", "Sugar", "kept", "also kept")
    # A checkbox missing from the post: left alone unless the page declared it (_shown), where
    # nothing posted means "not ticked".
    url = "/data/products/mill_5/edit"
    page = ui.get(url).text
    based = {k: v for k, v in browser_form(page).items() if k in ("_row_id", "_row_version")}
    undeclared = ui.post(url, {**based, "brand": "Other mill"}, form_page=url)
    assert undeclared.status_code == 302, alerts(undeclared.text)
    with Store(live, device_id=DEVICE_A) as store:
        product = store.get("products", "mill_5")
    assert (product["brand"], product["is_hidden"], product["notes"]) == ("Other mill", True, "kept")
    page = ui.get(url).text
    declared = {k: v for k, v in browser_form(page).items() if k != "is_hidden"}  # the box unticked
    assert ui.post(url, declared, form_page=url).status_code == 302
    with Store(live, device_id=DEVICE_A) as store:
        assert not store.get("products", "mill_5")["is_hidden"]
    # A post with a mistake that lacks a box shows that box with its stored value, not blank.
    url = "/data/ingredients/cane_sugar/edit"
    form = {k: v for k, v in browser_form(ui.get(url).text).items() if k != "notes"}
    typo = ui.post(url, {**form, "moisture_pct": "twelve"}, form_page=url)
    assert typo.status_code == 400 and browser_form(typo.text)["notes"] == "kept"


def test_field_errors_name_no_table_or_record_and_whole_numbers_are_explained(ui: UI, live: Path) -> None:
    huge = edit(ui, "/data/products/mill_5/edit", {"package_unit_quantity": "1e400"})
    assert huge.status_code == 400
    assert field_error(huge.text, "package_unit_quantity") == \
        "NaN and infinity cannot be stored (SQLite turns NaN into NULL)"
    taken = edit(ui, "/data/ingredients/cane_sugar/edit", {"slug": "bread_flour"})
    assert taken.status_code == 400
    message = field_error(taken.text, "slug") or ""
    assert message.startswith("another row already has the same") and "(record" not in message
    before = db_fingerprint(live)
    for text in ("1e3", "5.0"):
        response = ui.post("/data/events/-/new", {"name": "Party", "event_date": "2026-12-24", "plan_state": "draft",
                                                  "year": text})
        assert response.status_code == 400
        assert "decimals and exponents" in (field_error(response.text, "year") or ""), text
    assert db_fingerprint(live) == before


def test_cli_insert_of_a_huge_integer_into_a_real_column_is_one_line(runner: CliRunner, live: Path,
                                                                     tmp_path: Path) -> None:
    from bakestore.errors import ValidationError

    with Store(live, device_id=DEVICE_A) as store:
        flour = store.resolve("ingredients", "bread_flour")
    big = tmp_path / "big.ndjson"
    big.write_text('{"ingredient_id": "%s", "package_unit": "bag", "package_unit_quantity": 1%s, "slug": "huge"}\n'
                   % (flour, "0" * 400), encoding="utf-8")
    before = db_fingerprint(live)
    result = runner.invoke(main, ["--db", str(live), "insert", "products", str(big)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: big.ndjson:")
    assert "products.package_unit_quantity" in lines[0] and "beyond the range of a REAL" in lines[0]
    assert db_fingerprint(live) == before
    with Store(live, device_id=DEVICE_A) as store, pytest.raises(ValidationError, match="beyond the range"):
        store.insert("products", {"ingredient_id": flour, "package_unit": "bag", "package_unit_quantity": 10 ** 400})


def test_a_second_server_on_a_port_being_started_is_one_line(runner: CliRunner, live: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    from bakestore.web import server

    served: list[int] = []
    monkeypatch.setattr(server, "serve", lambda datasette, *, sock, **kw: served.append(sock.getsockname()[1]))
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: pytest.fail("a browser was opened"))
    first = server.bind(0)  # the first `bakestore ui`, still starting up
    try:
        port = first.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens already
        for command in (["ui", "--no-browser"], ["inspect"]):
            result = runner.invoke(main, ["--db", str(live), *command, "--port", str(port)])
            assert result.exit_code == 1 and "Traceback" not in result.output, command
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert len(lines) == 1 and f"127.0.0.1:{port} is already in use" in lines[0], command
    finally:
        first.close()
    assert served == []
