"""bakestore's Datasette plugin, in-process through ``datasette.client``: registration, metadata in
sync with the registry, the live database strictly read-only, canned queries that run."""

from __future__ import annotations

import asyncio
import re
import sqlite3 as stdlib_sqlite3
import types
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

import bakestore.datasette_plugin as plugin
from bakestore.errors import SQLiteVersionError
from bakestore.inspect import (AUDIT_DB, LIVE_DB, METADATA_FILE, SETTINGS, audit_queries, build_metadata,
                               case_db_name, case_queries, metadata_is_current, metadata_yaml)
from bakestore.registry import REGISTRY
from bakestore.store import Store
from bakestore.web.server import build_datasette

from .conftest import DEVICE_A, db_fingerprint

REPO = Path(__file__).resolve().parents[1]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class Client:
    """``datasette.client`` on one event loop, keeping cookies (for CSRF tokens)."""

    def __init__(self, datasette: Any) -> None:
        self.ds = datasette
        self.loop = asyncio.new_event_loop()
        self.cookies: dict[str, str] = {}
        self.run(datasette.invoke_startup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.run(self.ds.client.get(path, cookies=dict(self.cookies), **kwargs))
        self.cookies.update({k: v for k, v in response.cookies.items() if v})
        return response

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> Any:
        return self.run(self.ds.client.post(path, data=data, cookies=dict(self.cookies), **kwargs))

    def close(self) -> None:
        for db in self.ds.databases.values():
            db.close()
        if self.ds.executor is not None:
            self.ds.executor.shutdown(wait=True)
        self.loop.close()


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    with Store(path, device_id=DEVICE_A) as store:
        store.insert_many("ingredients", [{"display_name": f"Flour {i}", "slug": f"flour_{i}", "category": "Flour"}
                                          for i in range(20)])
    return path


@pytest.fixture
def with_audit(live: Path) -> Path:
    """The live database after one restore (done) and one refused restore: the audit DB exists."""
    with Store(live, device_id=DEVICE_A) as store:
        export = store.export(live.parent / "exports")
        store.restore(export.path)
        with pytest.raises(Exception):
            store.restore(live.parent / "missing-export")
    return live


@pytest.fixture
def client(with_audit: Path) -> Iterator[Client]:
    c = Client(build_datasette(with_audit))
    yield c
    c.close()


# --------------------------------------------------------------------------- plugin and metadata


def test_plugin_is_registered_through_the_datasette_entry_point() -> None:
    from datasette.plugins import get_plugins

    found = [p for p in get_plugins() if "bakestore" in p["name"]]
    assert found, "bakestore's datasette entry point is not installed"
    hooks = set(found[0]["hooks"])
    assert {"startup", "register_routes", "extra_template_vars", "prepare_jinja2_environment", "menu_links",
            "permission_allowed", "prepare_connection", "handle_exception"} <= hooks
    assert "skip_csrf" not in hooks  # CSRF protection is never switched off


def test_metadata_file_is_in_sync_with_the_registry() -> None:
    path = REPO / METADATA_FILE
    assert metadata_is_current(path), "datasette-metadata.yml drifted from the registry: run `bakestore metadata`"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == build_metadata()


def test_metadata_describes_every_table_and_column_and_holds_only_metadata() -> None:
    meta = yaml.safe_load(metadata_yaml())
    assert {"title", "description", "license", "source"} <= set(meta)
    tables = meta["databases"][LIVE_DB]["tables"]
    assert set(tables) == set(REGISTRY.names)
    for spec in REGISTRY:
        assert tables[spec.name]["description"] == spec.description
        assert set(tables[spec.name]["columns"]) == set(spec.column_names)
        assert all(tables[spec.name]["columns"].values())
    assert tables["ingredients"]["units"] == {"moisture_pct": "percent"}
    assert tables["recipes"]["units"] == {"estimated_time_minutes": "minute"}
    assert "references ingredients (ON DELETE CASCADE)" in tables["products"]["columns"]["ingredient_id"]
    from bakestore.audit import _COLUMNS

    assert set(meta["databases"][AUDIT_DB]["tables"]["audit_log"]["columns"]) == set(_COLUMNS)

    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)

    found = set(keys(meta))
    assert not found & {"queries", "settings", "plugins", "sql_time_limit_ms"}


def test_served_tables_show_descriptions_and_settings(client: Client) -> None:
    page = client.get(f"/{LIVE_DB}/ingredients")
    assert page.status_code == 200
    assert REGISTRY["ingredients"].description in page.text
    data = client.get(f"/{LIVE_DB}/ingredients.json?_shape=objects&_size=5").json()
    assert len(data["rows"]) == 5
    settings = client.get("/-/settings.json").json()
    assert settings["sql_time_limit_ms"] == SETTINGS["sql_time_limit_ms"]
    databases = {d["name"]: d for d in client.get("/-/databases.json").json()}
    assert set(databases) == {LIVE_DB, AUDIT_DB}
    assert databases[LIVE_DB]["is_mutable"] is True  # mode=ro, never immutable: the file changes under us


def test_every_table_is_browsable(client: Client) -> None:
    for spec in REGISTRY:
        assert client.get(f"/{LIVE_DB}/{spec.name}.json?_size=1").status_code == 200, spec.name


# --------------------------------------------------------------------------- read-only


def test_write_sql_is_refused_and_the_database_is_unchanged(client: Client, with_audit: Path) -> None:
    main_file = db_fingerprint(with_audit)["db"]
    # A first read opens the file; reading a WAL database may create an empty -wal beside it.
    assert client.get(f"/{LIVE_DB}/units.json").status_code == 200
    before = db_fingerprint(with_audit)
    assert before["db"] == main_file and before["-wal"] in (None, EMPTY_SHA256)
    insert = "insert into units (id, code) values ('x', 'x')"
    # The SQL page only runs SELECT ...
    for path in (f"/{LIVE_DB}", f"/{LIVE_DB}.json"):
        response = client.get(path, params={"sql": insert})
        assert response.status_code == 400, path
        assert "Statement must be a SELECT" in response.text
    # ... a CTE in front of an INSERT passes Datasette's check but hits a mode=ro, query_only connection,
    sneaky = f"with t as (select 1) {insert}"
    response = client.get(f"/{LIVE_DB}.json", params={"sql": sneaky})
    assert response.status_code == 400
    assert re.search(r"readonly|read-only|query_only|attempt to write", response.text, re.I)
    # ... a POST (with a valid CSRF token) has nothing to run,
    client.get("/-/messages")  # a Datasette page with a form: sets the CSRF cookie
    token = client.cookies["ds_csrftoken"]
    posted = client.post(f"/{LIVE_DB}", {"sql": insert, "csrftoken": token})
    assert posted.status_code in (400, 403, 404, 405)
    # ... and even Datasette's own write API refuses.
    db = client.ds.get_database(LIVE_DB)
    with pytest.raises(PermissionError):
        client.run(db.execute_write(insert))
    assert db_fingerprint(with_audit) == before
    with Store(with_audit, device_id=DEVICE_A) as store:
        assert store.count("units") == 35


def test_every_connection_is_read_only(client: Client) -> None:
    for name in (LIVE_DB, AUDIT_DB):
        db = client.ds.get_database(name)
        conn = db.connect(write=True)
        try:
            with pytest.raises(Exception, match="readonly|read-only"):
                conn.execute("create table evil (x)")
        finally:
            conn.close()
        assert client.run(db.execute("pragma query_only")).first()[0] == 1


def test_write_actions_are_denied(client: Client) -> None:
    for action in sorted(plugin.WRITE_ACTIONS):
        assert client.run(client.ds.permission_allowed(None, action, (LIVE_DB, "units"), default=True)) is False
    assert client.run(client.ds.permission_allowed(None, "view-table", (LIVE_DB, "units"), default=True)) is True


def test_sql_has_a_time_limit(with_audit: Path) -> None:
    c = Client(build_datasette(with_audit, settings={"sql_time_limit_ms": 50}))
    try:
        endless = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"
        response = c.get(f"/{LIVE_DB}.json", params={"sql": endless})
        assert response.status_code == 400 and "too long" in response.text
    finally:
        c.close()


def test_startup_refuses_two_sqlite_libraries(with_audit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasette.utils.sqlite as datasette_sqlite

    from bakestore.sqlite import sqlite3 as ours

    other = stdlib_sqlite3 if stdlib_sqlite3 is not ours else types.SimpleNamespace(__name__="other_sqlite3")
    monkeypatch.setattr(datasette_sqlite, "sqlite3", other)
    with pytest.raises(SQLiteVersionError, match="two SQLite libraries"):
        plugin.check_sqlite_library()
    ds = build_datasette(with_audit)
    with pytest.raises(SQLiteVersionError):
        asyncio.run(ds.invoke_startup())


def test_inspect_serves_no_ui_routes(client: Client) -> None:
    assert client.get("/data").status_code == 404  # no database or page named "data"
    assert "Datasette" in client.get("/").text


# --------------------------------------------------------------------------- canned queries


def test_audit_canned_queries_run(client: Client) -> None:
    for name in audit_queries():
        response = client.get(f"/{AUDIT_DB}/{name}.json?_shape=objects")
        assert response.status_code == 200, (name, response.text[:300])
        assert response.json()["ok"] is True
    recent = client.get(f"/{AUDIT_DB}/recent_operations.json?_shape=objects").json()["rows"]
    assert [r["outcome"] for r in recent][:2] == ["refused", "done"]  # newest first
    refusals = client.get(f"/{AUDIT_DB}/refusals_and_failures.json?_shape=objects").json()["rows"]
    assert len(refusals) == 1 and refusals[0]["operation"] == "restore"


def test_case_canned_queries_run(with_audit: Path, tmp_path: Path) -> None:
    from bakestore.forensics import analyze

    with Store(with_audit, device_id=DEVICE_A) as store:
        for i in range(5):
            store.delete("ingredients", f"flour_{i}")
    case_dir = tmp_path / "case one"
    analyze(with_audit, case_dir)
    name = case_db_name(case_dir)
    assert name == "case_case_one"
    c = Client(build_datasette(with_audit, cases=[case_dir]))
    try:
        databases = {d["name"]: d for d in c.get("/-/databases.json").json()}
        assert databases[name]["is_mutable"] is False  # case databases never change: immutable
        for query in case_queries():
            response = c.get(f"/{name}/{query}.json?_shape=objects")
            assert response.status_code == 200, (query, response.text[:300])
        free = c.get(f"/{name}/free_page_ratio.json?_shape=objects").json()["rows"][0]
        assert free["pages"] > 0 and 0 <= free["free_ratio"] <= 1
        recovered = c.get(f"/{name}/recovered_rows_per_table.json?_shape=objects").json()["rows"]
        assert any(r["table_name"] == "ingredients" and r["rows"] >= 1 for r in recovered)
        timeline = c.get(f"/{name}/timeline.json?_shape=objects").json()["rows"]
        assert any(r["table_name"] == "ingredients" for r in timeline)
    finally:
        c.close()
