"""Property tests: the merge is a join-semilattice, and devices converge whatever the sync engine does.

* ``merge_states`` is commutative, associative and idempotent, and an older state of a device
  (one that "went backwards") is absorbed by a newer one.
* Three simulated devices (three Stores) apply random inserts, updates, deletes (through the API
  and behind its back) and exchange their folders in random orders, with partially arrived,
  torn and duplicated (conflict-copy) files; after a final complete exchange every device's
  export is byte-identical and foreign keys hold everywhere.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakestore.errors import DeleteRestrictedError, ValidationError
from bakestore.store import Store
from bakestore.sync import MANIFEST, State, merge_states, sync
from tests.conftest import DEVICE_A, DEVICE_B
from tests.test_sync import DEVICE_C, device_dir, export_tables

DEVICES = (DEVICE_A, DEVICE_B, DEVICE_C)

# --------------------------------------------------------------------------- the laws, on arbitrary states

_versions = st.builds(lambda ms, counter, device: f"{ms:013d}-{counter:05d}-{device}",
                      st.integers(1, 4), st.integers(0, 1), st.sampled_from(DEVICES))
_entries = st.tuples(_versions, st.sampled_from(["x", "y"])).map(
    lambda vt: (vt[0], f'{{"row_version":"{vt[0]}","t":"{vt[1]}"}}'))
_ids = st.sampled_from(["0" * 8 + f"-0000-7000-8000-{i:012d}" for i in range(3)])
_tables = st.sampled_from(["suppliers", "products"])


@st.composite
def states(draw: Any) -> State:
    state = State()
    for table, row_id, entry in draw(st.lists(st.tuples(_tables, _ids, _entries), max_size=8)):
        state.put_row(table, row_id, entry)
    for table, row_id, entry in draw(st.lists(st.tuples(_tables, _ids, _entries), max_size=4)):
        state.put_tomb((table, row_id), entry)
    return state


@settings(max_examples=300, deadline=None)
@given(states(), states(), states())
def test_merge_is_commutative_associative_idempotent(a: State, b: State, c: State) -> None:
    snapshot = (a.canonical(), b.canonical(), c.canonical())
    assert merge_states(a, b) == merge_states(b, a)
    assert merge_states(merge_states(a, b), c) == merge_states(a, merge_states(b, c))
    assert merge_states(a, a) == a
    # an older copy of a device ("went backwards") or a re-delivery cannot undo newer state
    newer = merge_states(a, b)
    assert merge_states(newer, a) == newer
    assert (a.canonical(), b.canonical(), c.canonical()) == snapshot  # inputs untouched


# --------------------------------------------------------------------------- three devices


class Simulation:
    """Three devices, each with its own copy of the shared folder, and a fake sync engine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.step = 0
        base = 1_767_225_600_000
        # Writes in the same step share a millisecond: the HLC counter and the device id order them.
        self.stores = [Store(root / f"dev{i}" / "live.db", device_id=d, wall_clock=lambda: base + self.step * 7)
                       for i, d in enumerate(DEVICES)]
        self.folders = [root / f"folder{i}" for i in range(3)]
        for folder in self.folders:
            folder.mkdir()
        self.serial = itertools.count()

    def close(self) -> None:
        for store in self.stores:
            store.close()

    # -- edits

    def _pick(self, store: Store, table: str, n: int) -> dict[str, Any] | None:
        rows = list(store.rows(table))
        return rows[n % len(rows)] if rows else None

    def insert(self, i: int, kind: str, n: int) -> None:
        store = self.stores[i]
        k = next(self.serial)
        try:
            if kind == "supplier":
                slug = f"s{n % 4}" if n % 3 == 0 else f"supplier-{i}-{k}"  # sometimes a clashing slug
                store.insert("suppliers", {"name": slug, "slug": slug})
            elif kind == "ingredient":
                store.insert("ingredients", {"display_name": f"Ingredient {i}-{k}", "slug": f"ing-{i}-{k}",
                                             "category": "Flour"})
            elif kind == "product":
                ingredient = self._pick(store, "ingredients", n)
                supplier = self._pick(store, "suppliers", n)
                if ingredient is not None:
                    store.insert("products", {"ingredient_id": ingredient["id"], "package_unit": "lb",
                                              "package_unit_quantity": 1.0 + n % 5,
                                              "preferred_supplier_id": supplier["id"] if supplier and n % 2 else None})
            elif kind == "purchase":
                product = self._pick(store, "products", n)
                supplier = self._pick(store, "suppliers", n // 3)
                if product is not None and supplier is not None:
                    store.insert("purchases", {"product_id": product["id"], "supplier_id": supplier["id"],
                                               "purchase_date": "2026-01-02", "unit_price": 2.5,
                                               "quantity_purchased": 1 + n % 3})
        except ValidationError:
            pass  # e.g. a slug already taken on this device: the API refused, nothing changed

    def update(self, i: int, table: str, n: int) -> None:
        row = self._pick(self.stores[i], table, n)
        if row is not None:
            self.stores[i].update(table, row["id"], {"notes": f"edit {self.step} on {i}"})

    def delete(self, i: int, table: str, n: int) -> None:
        row = self._pick(self.stores[i], table, n)
        if row is not None:
            try:
                self.stores[i].delete(table, row["id"])
            except DeleteRestrictedError:
                pass

    def raw_edit(self, i: int, table: str, n: int) -> None:
        """A write behind the API's back (Datasette, the sqlite3 shell): no version bump, no tombstone."""
        store = self.stores[i]
        row = self._pick(store, table, n)
        if row is None:
            return
        with store.write():
            if table == "purchases" and n % 2:
                store.db.execute("DELETE FROM purchases WHERE id = ?", [row["id"]])
            else:
                store.db.execute(f'UPDATE "{table}" SET notes = ? WHERE id = ?', [f"raw {self.step}", row["id"]])

    # -- the engine

    def sync(self, i: int) -> None:
        sync(self.stores[i], self.folders[i], allow_shrink=True)

    def transfer(self, src: int, dst: int, mode: str, n: int) -> None:
        if src == dst:
            return
        source = device_dir(self.folders[src], DEVICES[src])
        if not (source / MANIFEST).exists():
            return
        target = device_dir(self.folders[dst], DEVICES[src])
        if mode == "full" or not target.exists():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            return
        tables = sorted((source / "tables").glob("*.ndjson"))
        changed = [p for p in tables if not (target / "tables" / p.name).exists()
                   or (target / "tables" / p.name).read_bytes() != p.read_bytes()]
        if mode == "manifest-first":  # the new manifest arrived, the table files not yet
            shutil.copyfile(source / MANIFEST, target / MANIFEST)
        elif mode == "tables-first":  # new table files, old manifest
            for p in changed:
                shutil.copyfile(p, target / "tables" / p.name)
        elif mode == "torn":  # everything, but one changed file only half-written
            shutil.rmtree(target)
            shutil.copytree(source, target)
            if changed:
                victim = target / "tables" / changed[n % len(changed)].name
                data = victim.read_bytes()
                victim.write_bytes(data[: len(data) // 2])
        elif mode == "duplicate":  # the engine kept the old file as a conflict copy, and an iCloud duplicate
            for p in changed:
                old = target / "tables" / p.name
                if old.exists():
                    old.rename(old.with_name(f"{p.stem}.sync-conflict-20260101-000000-XYZ1234.ndjson"))
            shutil.copytree(source, target, dirs_exist_ok=True)
            if tables:
                pick = tables[n % len(tables)]
                shutil.copyfile(pick, target / "tables" / f"{pick.stem} 2.ndjson")

    def settle(self) -> None:
        """The engine finally delivers everything; two full rounds make every device see everything."""
        for _ in range(2):
            for i in range(3):
                self.sync(i)
            for src, dst in itertools.permutations(range(3), 2):
                self.transfer(src, dst, "full", 0)
        for i in range(3):
            self.sync(i)


_device = st.integers(0, 2)
_table = st.sampled_from(["suppliers", "ingredients", "products", "purchases"])
_transfer = st.tuples(st.just("transfer"), _device, _device,
                      st.sampled_from(["full", "manifest-first", "tables-first", "torn", "duplicate"]),
                      st.integers(0, 99))
_step = st.one_of(
    st.tuples(st.just("insert"), _device, st.sampled_from(["supplier", "ingredient", "product", "purchase"]),
              st.integers(0, 99)),
    st.tuples(st.just("update"), _device, _table, st.integers(0, 99)),
    st.tuples(st.just("delete"), _device, _table, st.integers(0, 99)),
    st.tuples(st.just("raw_edit"), _device, _table, st.integers(0, 99)),
    st.tuples(st.just("sync"), _device),
    st.tuples(st.just("sync"), _device),
    _transfer,
    _transfer,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, min_size=4, max_size=24))
def test_three_devices_converge_to_byte_identical_exports(steps: list[tuple[Any, ...]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="bakestore-sim-"))
    sim = Simulation(root)
    try:
        # A common start: shared rows on every device (so later edits collide), every folder delivered.
        sim.insert(0, "ingredient", 0)
        sim.insert(0, "supplier", 1)
        sim.insert(1, "supplier", 2)
        sim.insert(0, "product", 1)
        sim.insert(0, "purchase", 0)
        sim.insert(2, "purchase", 1)
        sim.settle()
        for step in steps:
            sim.step += 1
            getattr(sim, step[0])(*step[1:])
        sim.settle()
        exports = [export_tables(s, root / f"export{i}") for i, s in enumerate(sim.stores)]
        assert exports[0] == exports[1] == exports[2]
        for store in sim.stores:
            assert not list(store.db.execute("PRAGMA foreign_key_check"))
        # quiescent: another round changes nothing anywhere
        for i in range(3):
            report = sync(sim.stores[i], sim.folders[i])
            assert report.changed_rows == 0 and report.exported_sequence is None
    finally:
        sim.close()
        shutil.rmtree(root, ignore_errors=True)
