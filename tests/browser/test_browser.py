"""A person using the UI in a real Chromium: create an ingredient with a product, meet a validation
error, export, restore with the confirmation, undo, read the forensics timeline. Screenshots go to
``tests/artifacts/`` (look at them: they are the quickest review of how the pages look)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bakestore --db <tmp>/demo.db ui --demo` (what `make demo` runs) on a free port."""
    root = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKESTORE_") and k != "PYTEST_CURRENT_TEST"}
    env["BAKESTORE_HOME"] = str(root / "home")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bakestore", "--db", str(root / "demo" / "demo.db"), "ui",
                             "--demo", "--port", str(port), "--no-browser"], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"bakestore ui exited ({proc.returncode}):\n{proc.stdout.read()}")
        try:
            urllib.request.urlopen(base + "/-/versions.json", timeout=1).close()
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("bakestore ui did not answer within 60 s") from None
            time.sleep(0.1)
    yield base
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (run `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(20_000)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not errors, errors


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def message(page: Any) -> str:
    return page.locator(".message").first.inner_text()


def test_dashboard_and_tables(page: Any) -> None:
    page.goto("/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator(".badge.ok").first.is_visible()
    assert "demo data" in page.locator(".dbname").inner_text()
    shot(page, "01-dashboard")
    page.click("text=Data")
    page.wait_for_url("**/data")
    page.click("a[href='/data/recipes']")
    page.wait_for_url("**/data/recipes")
    assert page.locator("table.rows tbody tr").count() == 50  # paginated
    shot(page, "01b-data-recipes")
    page.goto("/bakestore/ingredients")  # the same data, read-only, in Datasette
    assert "Generic ingredients" in page.content()
    shot(page, "12-datasette-ingredients", full_page=False)


def test_create_an_ingredient_with_a_product_and_see_a_validation_error(page: Any) -> None:
    page.goto("/data/ingredients")
    page.click("text=New row")
    page.fill("#input-display_name", "Browser Rye Flour")
    page.fill("#input-slug", "browser_rye_flour")
    page.fill("#input-category", "Flour")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/data/ingredients/browser_rye_flour")
    assert page.locator("h1").inner_text() == "browser_rye_flour"
    assert "Saved ingredients browser_rye_flour." in message(page)
    shot(page, "02-ingredient-created")

    page.goto("/data/products/-/new")
    page.select_option("#input-ingredient_id", label="browser_rye_flour")
    page.fill("#input-package_unit", "bag")
    page.fill("#input-slug", "browser_rye_2kg")
    page.click("button:has-text('Create')")  # no package quantity: the model refuses
    error = page.locator("#error-package_unit_quantity")
    assert error.inner_text() == "Field required"
    assert page.locator("#field-package_unit_quantity.has-error").is_visible()
    assert page.locator("#input-slug").input_value() == "browser_rye_2kg"  # input kept
    error.scroll_into_view_if_needed()
    shot(page, "03-validation-error", full_page=False)

    page.fill("#input-package_unit_quantity", "2")
    page.check("input[name=preferred]")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/data/products/browser_rye_2kg")
    link = page.locator("a[href='/data/ingredients/browser_rye_flour']")
    assert link.first.inner_text() == "browser_rye_flour"
    shot(page, "04-product-created")


def test_export_restore_with_confirmation_and_undo(page: Any) -> None:
    page.goto("/backups")
    page.click("button:has-text('Export now')")
    page.wait_for_url("**/backups")
    assert message(page).startswith("Exported")
    shot(page, "05-exported")

    # A change after the export, which the restore will take away again.
    page.goto("/data/ingredients/-/new")
    page.fill("#input-display_name", "Browser Later")
    page.fill("#input-slug", "browser_later")
    page.fill("#input-category", "Flour")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/data/ingredients/browser_later")

    page.goto("/backups")
    page.locator("a:has-text('Restore…')").first.click()
    page.wait_for_url(re.compile(r".*/backups/restore\?export=.*"))
    assert "nothing has changed yet" in page.content()
    row = page.locator("table.diff tbody tr", has_text="ingredients")
    assert row.locator("td.minus").inner_text() == "1"
    shot(page, "06-restore-preview")

    page.click("button:has-text('Restore now')")  # without ticking the box
    assert "tick the confirmation box" in message(page)
    page.goto("/data/ingredients/browser_later")
    assert page.locator("h1").inner_text() == "browser_later"  # nothing was changed

    page.goto("/backups")
    page.locator("a:has-text('Restore…')").first.click()
    page.check("input[name=confirm]")
    page.click("button:has-text('Restore now')")
    page.wait_for_url("**/backups")
    assert "Restored from export" in message(page) and "restore point" in message(page)
    shot(page, "07-restored")
    response = page.goto("/data/ingredients/browser_later")
    assert response.status == 404 and "Not found" in page.locator("h1").inner_text()

    page.goto("/backups")
    page.click("text=Undo last restore…")
    page.wait_for_url("**/backups/undo")
    assert page.locator("table.diff tbody tr", has_text="ingredients").locator("td.plus").inner_text() == "1"
    page.check("input[name=confirm]")
    page.click("button:has-text('Undo the last restore')")
    page.wait_for_url("**/backups")
    assert message(page).startswith("Undid the last restore")
    shot(page, "08-undone")
    assert page.goto("/data/ingredients/browser_later").status == 200

    page.goto("/audit")
    operations = page.locator("details.auditrec summary strong").all_inner_texts()
    assert operations[:2] == ["undo", "restore"]
    page.locator("details.auditrec").first.locator("summary").click()
    shot(page, "09-audit")


def test_forensics_report_and_timeline(page: Any) -> None:
    page.goto("/forensics")
    page.check("input[name=source][value=live]")
    shot(page, "10a-forensics-form", full_page=False)
    with page.expect_navigation(timeout=120_000):
        page.click("button:has-text('Run the report')")
    assert "/forensics/cases/" in page.url
    assert page.locator("h1").inner_text().startswith("Report:")
    figure = page.locator("figure.timeline svg")
    assert figure.is_visible()
    assert page.locator("figure.timeline svg circle.live").count() > 0
    assert page.locator("figure.timeline svg g.cluster").count() >= 1
    shot(page, "10-forensics-report")
    page.click("a[href='#timeline']")
    page.locator("figure.timeline").screenshot(path=str(ARTIFACTS / "11-forensics-timeline.png"))
