"""Every table round-trips through the Store API with hypothesis data derived from the models.

For each domain table we take a valid row of the demo dataset (so its foreign keys resolve), let
hypothesis choose values for every column the models leave free (no FK, no value set, no range
or table rule, not part of a unique key), write them through the API and read them back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakestore.demo import build_demo
from bakestore.models.base import SYSTEM_COLUMNS, format_timestamp
from bakestore.registry import REGISTRY, Column, TableSpec
from bakestore.store import Store

from .conftest import DEVICE_A

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _constrained_by_table(spec: TableSpec, column: str) -> bool:
    text = " ".join(spec.meta.checks)
    in_unique = any(column in u for u in spec.meta.uniques) or column in (spec.natural_key or ())
    return in_unique or re.search(rf"\b{re.escape(column)}\b", text) is not None


def free_columns(spec: TableSpec) -> list[Column]:
    own_checks = lambda c: [x for x in c.checks if not x.endswith("IN (0, 1)")]  # noqa: E731
    return [c for c in spec.columns
            if c.name not in SYSTEM_COLUMNS and c.fk is None and not c.choices and not own_checks(c)
            and not c.unique and not _constrained_by_table(spec, c.name)]


def strategy_for(column: Column) -> st.SearchStrategy[Any]:
    limit = min(column.max_length or 300, 300)
    base: st.SearchStrategy[Any] = {
        "text": st.text(max_size=limit),
        "integer": st.integers(-(2**63), 2**63 - 1),
        "real": st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
        "date": st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat),
        "datetime": st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31),
                                 timezones=st.just(dt.timezone.utc)).map(format_timestamp),
        "json": json_values.map(lambda v: json.dumps(v)),
        "uuid": st.uuids().map(str),
    }[column.kind]
    return (st.none() | base) if column.nullable else base


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = Path(tmp_path_factory.mktemp("roundtrip")) / "demo.db"
    import os

    os.environ.setdefault("BAKESTORE_HOME", str(path.parent / "home"))
    build_demo(path, scale=1)
    store = Store(path, device_id=DEVICE_A)
    yield store
    store.close()


def _expected(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "json":
        return json.loads(value)
    if column.kind == "real":
        return float(value)
    return value


@pytest.mark.parametrize("table", [s.name for s in REGISTRY.domain_tables])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_table_round_trips_through_the_api(demo_store: Store, table: str, data: st.DataObject) -> None:
    spec = REGISTRY[table]
    row = next(demo_store.rows(table, limit=1))
    columns = free_columns(spec)
    changes = {c.name: data.draw(strategy_for(c), label=c.name) for c in columns}
    stored = demo_store.update(table, row["id"], changes)
    got = demo_store.get(table, row["id"])
    assert got == {k: (int(v) if isinstance(v, bool) else v) for k, v in stored.items()}
    for column in columns:
        actual = got[column.name]
        actual = json.loads(actual) if column.kind == "json" and actual is not None else actual
        assert actual == _expected(column, changes[column.name]), column.name
    assert got["created_at"] == row["created_at"]
    assert got["row_version"] > row["row_version"]


@pytest.mark.parametrize("table", [s.name for s in REGISTRY.domain_tables if not s.meta.uniques])
def test_copy_insert_get_delete_round_trip(demo_store: Store, table: str) -> None:
    spec = REGISTRY[table]
    row = next(demo_store.rows(table, limit=1))
    copy = {k: v for k, v in row.items() if k not in SYSTEM_COLUMNS}
    stored = demo_store.insert(table, copy)
    assert stored["id"] != row["id"]
    got = demo_store.get(table, stored["id"])
    assert {k: got[k] for k in copy} == {k: (int(v) if isinstance(v, bool) else v) for k, v in copy.items()}
    result = demo_store.delete(table, stored["id"])
    assert (result.table, result.id) == (spec.name, stored["id"])
    assert demo_store.db.execute("SELECT 1 FROM _tombstones WHERE table_name = ? AND row_id = ?",
                                 [table, stored["id"]]).fetchone()
