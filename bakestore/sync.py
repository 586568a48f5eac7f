"""Sync between one user's devices through a folder moved by an existing engine (git, Syncthing,
Dropbox, iCloud). Nothing runs a server of ours; nothing live ever goes into the folder.

Layout (one writer per path, so bakestore's own writes never produce conflict copies)::

    FOLDER/bakestore-v1/devices/<device_id>/tables/<table>.ndjson   canonical, sorted by primary key
    FOLDER/bakestore-v1/devices/<device_id>/manifest.json           written last (temp + fsync + rename)

What a device folder holds is the device's **sync state**, not a copy of its database: every row
it knows with the row's newest version (including rows that are deleted or hidden, see below)
plus every tombstone. Merging states is a *pure* function (:func:`merge_states`): per key, the
greatest ``(row_version, line)`` wins. Versions are hybrid-logical-clock text whose order is the
merge order and which ends with the writer's device id, so ties between devices are broken by
device id. Rows and tombstones are two independent max-registers per key, which makes the merge
a join-semilattice: commutative, associative and idempotent, and an old or partial view of a
device ("went backwards", duplicated files, re-delivery) can never undo newer state.

The live database is a deterministic **view** of the merged state (:func:`materialize`):

1. a row is visible iff its version is greater than its tombstone's (so a delete wins against
   every older update, and an update made after the delete was seen revives the row; on an exact
   tie the delete wins);
2. UNIQUE rules: when two visible rows share a unique value (two devices created "flour"), the
   one with the greater version keeps it and the other stays visible under a disambiguated value
   (``flour-3f2a1b``; its own value comes back when the clash goes), so nothing that points at
   it is hidden; rows that clash on foreign keys only are the same relationship recorded twice:
   the older is merged into the newer (hidden, its children re-pointed), and a record of such a
   relationship older than another record's tombstone is deleted with it. UNIQUE and foreign-key
   hiding run to a joint fixpoint (a winner hidden by a cascade gives its value back);
3. foreign keys, when a visible child's parent is not visible (deleted on another device while
   this child was edited): a RESTRICT / NO ACTION child **revives its parent** from the parent's
   last known content (the child's edit shows the parent is still needed), reviving the parent's
   own parents too; CASCADE children (and children whose parent cannot be revived) are
   **hidden**, transitively; SET NULL children stay visible with the column **nulled**.
   Hidden rows stay in the state, so the outcome is the same on every device whatever order the
   snapshots arrived in, and nothing is destroyed by the rule.

Because the view is a function of the merged state only, devices that have seen the same
snapshots hold byte-identical databases. Every resolution is reported.

Change capture needs no triggers: the private state DB ``<db>.sync-state.db`` (next to the live
DB, never in the folder) keeps per-row hashes and versions of what sync last wrote. A row that
changed without a newer version (written by Datasette or a restore) gets a fresh version; a
row that vanished without a tombstone gets one. The values the view shows instead of the state's
are remembered there too, so an edit to another column of such a row does not make them its own.
Applying a sync is one ``BEGIN IMMEDIATE`` transaction on the live DB, with ``foreign_key_check``
and the shrink guard before COMMIT, a restore point published only after the COMMIT, and an
audit record; a crash between the live commit and the state DB update
is detected by a generation number stored in both and handled without guessing deletes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import stat
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import audit
from ._version import __version__
from .files import fsync_dir, write_atomic
from .paths import own_files, sync_state_path
from .clock import DEVICE_ID_RE
from .errors import BakestoreError, ShrinkRefusedError, SyncError, ValidationError
from .exports import decode_row, encode_row
from .models.base import format_timestamp
from .registry import REGISTRY, Registry, TableSpec
from .restore import (
    DEFAULT_MAX_LOSS,
    _explain_row,
    SYNC_GENERATION_KEY,
    RestoreError,
    TableDiff,
    _check_restore_point,
    _fault,
    _next_point_name,
    _read_sidecar,
    _remove_db_files,
    _sidecar,
    _write_sidecar,
    prune_restore_points,
    restore_point_dir,
    shrink_problems,
    store_lock,
)
from .schema import SCHEMA_VERSION, format_checks
from .sqlite import sqlite3

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

FORMAT_NAME = "bakestore-sync"
FORMAT_VERSION = 1
ROOT_NAME = "bakestore-v1"
DEVICES_DIR = "devices"
TABLES_DIR = "tables"
MANIFEST = "manifest.json"
TOMBSTONES = "_tombstones"
#: Key in the live database's ``_bakestore_meta`` that commits atomically with a sync (restore and
#: undo remove it from the file they make live: "restored or replaced").
GENERATION_KEY = SYNC_GENERATION_KEY

#: A device whose newest version is this far ahead of our wall clock is reported: until real time
#: catches up, its edits win every merge (a hybrid logical clock cannot tell a wrong clock).
MAX_SKEW_MS = 24 * 3600 * 1000
#: The shrink guard ignores a round that removes fewer rows than this in total: deleting the last
#: row of a small table is an ordinary edit, wiping a device's data is not.
SHRINK_MIN_ROWS = 10

_VERSION_RE = re.compile(r"^\d{13}-\d{5}-[0-9a-f]{32}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024

Entry = tuple[str, str]  # (row_version, canonical NDJSON line)
TombKey = tuple[str, str]  # (table_name, row_id)


# --------------------------------------------------------------------------- sync-engine debris


@dataclass(frozen=True)
class Name:
    """What a file or folder name in the sync folder is.

    ``kind``: ``plain`` (ours), ``conflict`` (a sync engine's conflict copy of ``base``: state,
    merged and reported), ``in-progress`` (a download not finished: ignored), ``stub`` (iCloud
    evicted ``base``: treated as not arrived), ``own-tmp`` (our own temp file).
    """

    kind: str
    base: str
    engine: str | None = None


_OWN_TMP = re.compile(r"^\.(?P<base>.+)\.bakestore-tmp-\d+$")
_SYNCTHING_TMP = re.compile(r"^(?:\.syncthing\.|~syncthing~)(?P<base>.+)\.tmp$")
_ICLOUD_STUB = re.compile(r"^\.(?P<base>.+)\.icloud$")
_SYNCTHING_CONFLICT = re.compile(r"^(?P<stem>.+?)\.sync-conflict-\d{8}-\d{6}(?:-[A-Za-z0-9]+)?(?P<ext>\.[^.]*)?$")
_DROPBOX_CONFLICT = re.compile(r"^(?P<stem>.+?) \([^()]*conflicted copy[^()]*\)(?P<ext>\.[^.]*)?$", re.IGNORECASE)
_DUPLICATE = re.compile(r"^(?P<stem>.+?) (?:[2-9]|[1-9]\d+)(?P<ext>\.[^. ]*)?$")


def classify(name: str) -> Name:
    """Recognise Syncthing, Dropbox and iCloud debris by name (sqlite-facts D5)."""
    if m := _OWN_TMP.match(name):
        return Name("own-tmp", m["base"], "bakestore")
    if m := _SYNCTHING_TMP.match(name):
        return Name("in-progress", m["base"], "syncthing")
    if m := _ICLOUD_STUB.match(name):
        return Name("stub", m["base"], "icloud")
    for pattern, engine in ((_SYNCTHING_CONFLICT, "syncthing"), (_DROPBOX_CONFLICT, "dropbox"),
                            (_DUPLICATE, "icloud")):
        if m := pattern.match(name):
            return Name("conflict", m["stem"] + (m["ext"] or ""), engine)
    return Name("plain", name)


# --------------------------------------------------------------------------- the state (pure)


@dataclass
class State:
    """A device's sync state: per table and id the newest row, per (table, id) the newest tombstone.

    Two independent max-registers per key; a row is *visible* iff newer than its tombstone.
    """

    rows: dict[str, dict[str, Entry]] = field(default_factory=dict)
    tombs: dict[TombKey, Entry] = field(default_factory=dict)

    def put_row(self, table: str, row_id: str, entry: Entry) -> bool:
        """Join one row in; True if it changed the state."""
        bucket = self.rows.get(table)
        if bucket is None:
            bucket = self.rows[table] = {}
        current = bucket.get(row_id)
        if current is None or entry > current:
            bucket[row_id] = entry
            return True
        return False

    def put_tomb(self, key: TombKey, entry: Entry) -> bool:
        current = self.tombs.get(key)
        if current is None or entry > current:
            self.tombs[key] = entry
            return True
        return False

    def join(self, other: "State") -> int:
        """Join ``other`` into this state in place; returns how many entries changed."""
        changed = 0
        for table, rows in other.rows.items():
            if not rows:
                continue
            bucket = self.rows.get(table)
            if bucket is None:
                self.rows[table] = dict(rows)
                changed += len(rows)
                continue
            for row_id, entry in rows.items():
                current = bucket.get(row_id)
                if current is None or entry > current:
                    bucket[row_id] = entry
                    changed += 1
        for key, entry in other.tombs.items():
            current = self.tombs.get(key)
            if current is None or entry > current:
                self.tombs[key] = entry
                changed += 1
        return changed

    def copy(self) -> "State":
        return State({t: dict(r) for t, r in self.rows.items()}, dict(self.tombs))

    def canonical(self) -> tuple[tuple[tuple[str, str, Entry], ...], tuple[tuple[TombKey, Entry], ...]]:
        rows = tuple(sorted((t, i, e) for t, r in self.rows.items() for i, e in r.items()))
        return rows, tuple(sorted(self.tombs.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.canonical() == other.canonical()

    __hash__ = None  # type: ignore[assignment]

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def versions(self) -> Iterator[str]:
        for rows in self.rows.values():
            for version, _ in rows.values():
                yield version
        for version, _ in self.tombs.values():
            yield version

    def max_version(self) -> str | None:
        return max(self.versions(), default=None)


def merge_states(*states: State) -> State:
    """The merge: per key the greatest ``(version, line)``; a join-semilattice.

    Commutative, associative and idempotent by construction (max per key), which the property
    tests check; ties on the version (the same write) are broken by the line so the result never
    depends on argument order.
    """
    merged = State()
    for state in states:
        merged.join(state)
    return merged


@dataclass(frozen=True, order=True)
class Resolution:
    """One application of a written rule while building the view: reported to the user."""

    # "fk-revive-parent" | "fk-hide-child" | "fk-set-null" | "fk-repoint" | "unique-rename" | "unique-merge"
    # | "unique-delete" | "unique-hide"
    rule: str
    table: str
    row_id: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "table": self.table, "row_id": self.row_id, "detail": self.detail}


#: Per visible row whose shown line differs from its line in the state (a disambiguated value, a
#: re-pointed or nulled foreign key): column → (value in the state, value shown).
Overrides = dict[TombKey, dict[str, tuple[Any, Any]]]


@dataclass
class View:
    """What the live database must contain: visible rows (table → id → line) and all tombstones,
    and which values of them are the view's rather than the state's (``overrides``)."""

    rows: dict[str, dict[str, str]]
    tombs: dict[TombKey, str]
    resolutions: list[Resolution]
    overrides: Overrides = field(default_factory=dict)


def _unique_sets(spec: TableSpec) -> list[tuple[str, ...]]:
    sets = [tuple(u) for u in spec.meta.uniques]
    sets += [(c.name,) for c in spec.columns if c.unique and c.name not in spec.pk]
    return sets


def _renamable(spec: TableSpec, cols: tuple[str, ...]) -> list[str]:
    """The columns of a UNIQUE set whose value can carry a disambiguating suffix: text that is not
    a foreign key, names and slugs first. A set without one (only foreign keys and numbers) is a
    relationship recorded twice: its rows are the same thing."""
    fk_columns = {fk.column for fk in spec.foreign_keys}
    found = [c for c in cols if c not in fk_columns and spec.column(c).kind == "text"]
    return sorted(found, key=lambda c: (0 if ("name" in c or c in ("slug", "code")) else 1, cols.index(c)))


def _disambiguated(spec: TableSpec, column: str, value: str, row_id: str, attempt: int) -> str:
    """``value`` with a short suffix taken from the row's id (longer on a later attempt): the same
    on every device. Slug-like values get ``-3f2a1b``, names `` (3f2a1b)``."""
    hexid = row_id.replace("-", "")
    suffix = hexid[-(6, 12, 32)[attempt]:]
    slug_like = column == "slug" or column.endswith(("_slug", "code")) or column in ("gtin",)
    tail = f"-{suffix}" if slug_like else f" ({suffix})"
    limit = spec.column(column).max_length
    if limit is not None and len(value) + len(tail) > limit:
        value = value[:max(0, limit - len(tail))]
    return value + tail


class _ViewBuilder:
    """One pass of :func:`materialize` with the rows in ``excluded`` kept out of the UNIQUE
    contests (they were hidden by a foreign key while holding a claim in an earlier pass)."""

    def __init__(self, specs: list[TableSpec], registry: Registry, alive: dict[str, dict[str, str]],
                 dead: dict[TombKey, str], versions: dict[TombKey, str], excluded: set[TombKey],
                 decoded: dict[str, dict[str, Any]], rules: list["RowRules"],
                 deleted: dict[str, dict[str, str]] | None = None) -> None:
        self.specs, self.registry, self.versions, self.excluded = specs, registry, versions, excluded
        self.visible = {table: dict(rows) for table, rows in alive.items()}
        self.dead = dict(dead)
        self.deleted = deleted or {}  # table → id → tombstone version, of the rows deleted in the state
        self.decoded = decoded
        self.rules = rules
        self.resolutions: list[Resolution] = []
        self.claims: dict[str, dict[tuple[str, ...], dict[tuple[Any, ...], str]]] = {
            s.name: {cols: {} for cols in _unique_sets(s)} for s in specs if _unique_sets(s)}
        self.beat: set[TombKey] = set()  # claim holders that kept another row out or renamed it
        self.redirect: dict[TombKey, str] = {}  # a merged duplicate → the row it is the same as
        self.hidden_by_fk: set[TombKey] = set()

    # -- rows

    def row(self, table: str, row_id: str) -> dict[str, Any]:
        line = self.visible[table].get(row_id) or self.dead[(table, row_id)]
        return self.parsed(line)

    def parsed(self, line: str) -> dict[str, Any]:
        # Keyed by the line itself: a rewritten row is a new line (str hashes are cached).
        value = self.decoded.get(line)
        if value is None:
            value = self.decoded[line] = json.loads(line)
        return value

    def rewrite(self, table: str, row_id: str, changes: dict[str, Any]) -> None:
        full = decode_row(self.visible[table][row_id])
        full.update(changes)
        columns = tuple(sorted(full))
        self.visible[table][row_id] = encode_row(columns, tuple(full[c] for c in columns))

    # -- UNIQUE

    def _keys(self, table: str, row: dict[str, Any]) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        keys = [(cols, tuple(row.get(c) for c in cols)) for cols in self.claims.get(table, {})]
        return [(cols, value) for cols, value in keys if None not in value]

    def _clashes(self, table: str, row: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        claims = self.claims.get(table, {})
        return [(cols, claims[cols][value]) for cols, value in self._keys(table, row) if value in claims[cols]]

    def _claim(self, table: str, row_id: str, row: dict[str, Any]) -> None:
        for cols, value in self._keys(table, row):
            self.claims[table][cols][value] = row_id

    def _valid(self, spec: TableSpec, row: dict[str, Any]) -> bool:
        if not self.rules:
            self.rules.append(RowRules("view", lambda spec, key, version: f"{spec.name} {key[1]}"))
        rules = self.rules[0]
        try:
            rules.add(spec, (spec.name, str(row.get("id"))), str(row.get("row_version")), row)
            rules.flush()
        except ValidationError:
            return False
        return True

    def admit(self, spec: TableSpec, row_id: str, *, reviving: bool = False) -> bool:
        """Give a visible row its UNIQUE values, in version order (newest first). A row whose value
        is taken stays visible under a disambiguated value (``unique-rename``); where the clashing
        values are all foreign keys it is the same relationship recorded twice: it is merged into
        the holder (``unique-merge``: hidden, its children re-pointed). Only if neither is possible
        is it hidden (``unique-hide``). Returns False when the row did not stay visible (a revival
        only looks: it changes nothing then)."""
        table = spec.name
        row = self.row(table, row_id)
        clashes = self._clashes(table, row)
        if not clashes:
            self._claim(table, row_id, row)
            return True
        if any(not _renamable(spec, cols) for cols, _ in clashes):
            if reviving:
                self.beat.update((table, holder) for _, holder in clashes)
                return False
            cols, holder = next((c, h) for c, h in clashes if not _renamable(spec, c))
            del self.visible[table][row_id]
            self.redirect[(table, row_id)] = holder
            self.beat.add((table, holder))
            self.resolutions.append(Resolution(
                "unique-merge", table, row_id, f"same {', '.join(cols)} as newer row {holder}: the same thing "
                "recorded twice, shown once (its rows point to that one; it comes back if that row goes)"))
            return False
        renamed = dict(row)
        changes: dict[str, Any] = {}
        for attempt in range(3):
            for cols, _ in self._clashes(table, renamed):
                column = _renamable(spec, cols)[0]
                original = row[column]
                changes[column] = renamed[column] = _disambiguated(spec, column, original, row_id, attempt)
            if not self._clashes(table, renamed):
                break
        holders = sorted({holder for _, holder in clashes})
        self.beat.update((table, holder) for holder in holders)
        if self._clashes(table, renamed) or not self._valid(spec, renamed):
            if reviving:
                return False
            del self.visible[table][row_id]
            self.resolutions.append(Resolution("unique-hide", table, row_id,
                                               f"same {', '.join(clashes[0][0])} as newer row {clashes[0][1]}"))
            return False
        self.rewrite(table, row_id, changes)
        self._claim(table, row_id, self.row(table, row_id))
        shown = "; ".join(f"{c} {row[c]!r} is shown as {v!r}" for c, v in sorted(changes.items()))
        clashing = ", ".join(dict.fromkeys(c for cols, _ in clashes for c in cols))
        self.resolutions.append(Resolution(
            "unique-rename", table, row_id, f"same {clashing} as newer row {', '.join(holders)}: {shown} until "
            "one of them is renamed, merged or deleted"))
        return True

    def contest(self, spec: TableSpec) -> None:
        table = spec.name
        if self.redirect:
            self.repoint(spec)
        if table not in self.claims:
            return
        self.delete_with_relationship(spec)
        rows = self.visible[table]
        for row_id in sorted((i for i in rows if (table, i) not in self.excluded),
                             key=lambda i: (self.versions[(table, i)], i), reverse=True):
            self.admit(spec, row_id)

    def delete_with_relationship(self, spec: TableSpec) -> None:
        """A record of a relationship (rows that clash on foreign keys only are the same thing) is
        deleted with it when another record of it was deleted after this one was last written
        (``unique-delete``): deleting the one row a ``unique-merge`` showed must not bring back
        the older duplicate it hid. The same rule as a delete against an older update of one row."""
        table = spec.name
        deleted = self.deleted.get(table)
        sets = [cols for cols in _unique_sets(spec) if not _renamable(spec, cols)]
        if not deleted or not sets:
            return
        fk_tables = {fk.column: fk.other_table for fk in spec.foreign_keys}

        def key(row: dict[str, Any], cols: tuple[str, ...]) -> tuple[Any, ...] | None:
            value = tuple(self.redirect.get((fk_tables[c], str(row.get(c))), row.get(c)) if c in fk_tables
                          else row.get(c) for c in cols)
            return None if None in value else value

        newest: dict[tuple[tuple[str, ...], tuple[Any, ...]], tuple[str, str]] = {}
        for row_id, tomb_version in deleted.items():
            line = self.dead.get((table, row_id))
            if line is None:
                continue
            row = self.parsed(line)
            for cols in sets:
                value = key(row, cols)
                if value is not None and (tomb_version, row_id) > newest.get((cols, value), ("", "")):
                    newest[(cols, value)] = (tomb_version, row_id)
        if not newest:
            return
        rows = self.visible[table]
        for row_id in sorted(rows):
            row = self.parsed(rows[row_id])
            for cols in sets:
                value = key(row, cols)
                found = newest.get((cols, value)) if value is not None else None
                if found is None or found[0] < self.versions[(table, row_id)]:
                    continue
                self.dead[(table, row_id)] = rows.pop(row_id)
                self.resolutions.append(Resolution(
                    "unique-delete", table, row_id, f"same {', '.join(cols)} as row {found[1]}, which was deleted "
                    "after this row was last written: the same thing recorded twice, deleted with it (an edit "
                    "made after the delete brings it back)"))
                break

    def repoint(self, spec: TableSpec, *, keep_unique: bool = False) -> None:
        """Children of a merged duplicate point to the row it is the same as (``fk-repoint``)."""
        unique_columns = {c for cols in _unique_sets(spec) for c in cols} if keep_unique else set()
        rows = self.visible[spec.name]
        for row_id in sorted(rows):
            row = self.row(spec.name, row_id)
            changes = {}
            for fk in spec.foreign_keys:
                target = self.redirect.get((fk.other_table, str(row.get(fk.column))))
                if target is not None and fk.column not in unique_columns:
                    changes[fk.column] = target
                    self.resolutions.append(Resolution(
                        "fk-repoint", spec.name, row_id, f"{fk.column} → {fk.other_table} {row[fk.column]} was "
                        f"merged into {target}: points there"))
            if changes:
                self.rewrite(spec.name, row_id, changes)

    # -- foreign keys

    def revive(self) -> None:
        """Parents of RESTRICT / NO ACTION children; for a revived row, every parent it needs to
        stay visible (all rules but SET NULL, which nulls instead)."""
        queue: deque[tuple[str, str, bool]] = deque()
        for spec in self.specs:
            if any(fk.on_delete in ("RESTRICT", "NO ACTION") for fk in spec.foreign_keys):
                for row_id in sorted(self.visible[spec.name]):
                    queue.append((spec.name, row_id, False))
        while queue:
            table, row_id, revived = queue.popleft()
            line = self.visible[table].get(row_id)
            if line is None:
                continue
            row = self.parsed(line)
            for fk in self.registry[table].foreign_keys:
                if fk.on_delete == "SET NULL" or (not revived and fk.on_delete not in ("RESTRICT", "NO ACTION")):
                    continue
                parent_id = row.get(fk.column)
                if parent_id is None or parent_id in self.visible.get(fk.other_table, {}):
                    continue
                parent_line = self.dead.get((fk.other_table, parent_id))
                if parent_line is None:
                    continue
                self.visible[fk.other_table][parent_id] = parent_line
                if not self.admit(self.registry[fk.other_table], parent_id, reviving=True):
                    del self.visible[fk.other_table][parent_id]
                    continue
                del self.dead[(fk.other_table, parent_id)]
                self.resolutions.append(Resolution("fk-revive-parent", fk.other_table, parent_id,
                                                   f"deleted, but {table} {row_id} still references it via "
                                                   f"{fk.column} ({fk.on_delete})"))
                queue.append((fk.other_table, parent_id, True))

    def hide_orphans(self) -> None:
        """Hide children whose parent is not visible (all rules but SET NULL), to a fixpoint."""
        changed = True
        while changed:
            changed = False
            for spec in self.specs:
                fks = [fk for fk in spec.foreign_keys if fk.on_delete != "SET NULL"]
                if not fks:
                    continue
                table_rows = self.visible[spec.name]
                parents = [(fk, self.visible.get(fk.other_table, {})) for fk in fks]
                for row_id in sorted(table_rows):
                    row = self.parsed(table_rows[row_id])
                    for fk, parent_rows in parents:
                        parent_id = row.get(fk.column)
                        if parent_id is None or parent_id in parent_rows:
                            continue
                        del table_rows[row_id]
                        self.hidden_by_fk.add((spec.name, row_id))
                        self.resolutions.append(Resolution("fk-hide-child", spec.name, row_id,
                                                           f"{fk.column} → {fk.other_table} {parent_id} is deleted "
                                                           f"or hidden ({fk.on_delete})"))
                        changed = True
                        break

    def set_null(self) -> None:
        for spec in self.specs:
            fks = [fk for fk in spec.foreign_keys if fk.on_delete == "SET NULL"]
            if not fks:
                continue
            table_rows = self.visible[spec.name]
            for row_id in sorted(table_rows):
                row = self.parsed(table_rows[row_id])
                nulled = [fk for fk in fks if row.get(fk.column) is not None
                          and row[fk.column] not in self.visible.get(fk.other_table, {})]
                if not nulled:
                    continue
                for fk in nulled:
                    self.resolutions.append(Resolution("fk-set-null", spec.name, row_id,
                                                       f"{fk.column} → {fk.other_table} {row[fk.column]} is "
                                                       "deleted; column set to null"))
                self.rewrite(spec.name, row_id, {fk.column: None for fk in nulled})

    def build(self) -> None:
        # 2. UNIQUE, table by table parents first, children re-pointed before their own contest
        for spec in self.specs:
            self.contest(spec)
        if self.redirect:  # children through a cycle edge, whose table came first
            for spec in self.specs:
                self.repoint(spec, keep_unique=True)
        # 3. revivals, then hiding to a fixpoint
        self.revive()
        self.hide_orphans()
        # rows kept out of the contests that are visible after all (their parent came back):
        # they take part now, last
        late = sorted((key for key in self.excluded if key[1] in self.visible.get(key[0], {})),
                      key=lambda key: (self.versions[key], key), reverse=True)
        for table, row_id in late:
            if table in self.claims:
                self.admit(self.registry[table], row_id)
        if late:
            self.hide_orphans()
        # 4. SET NULL
        self.set_null()


def materialize(state: State, registry: Registry = REGISTRY) -> View:
    """The deterministic view of a state: visibility, UNIQUE and foreign-key rules (module doc).

    UNIQUE resolution and foreign-key hiding depend on each other (a row that won a UNIQUE value
    can be hidden because its parent went; the row it beat must then get that value back), so
    they run to a joint fixpoint: a pass that hides a row holding a claim that kept another row
    out (or renamed it) is repeated without that row in the contests. Such rows only accumulate,
    so this ends; usually after one pass.
    """
    specs = [s for s in registry.exported_tables if s.has_row_identity]
    order = {s.name: i for i, s in enumerate(specs)}
    alive: dict[str, dict[str, str]] = {s.name: {} for s in specs}
    dead: dict[TombKey, str] = {}
    deleted: dict[str, dict[str, str]] = {}
    versions: dict[TombKey, str] = {}
    for table, rows in state.rows.items():
        if table not in alive:
            continue
        target = alive[table]
        for row_id, (version, line) in rows.items():
            tomb = state.tombs.get((table, row_id))
            versions[(table, row_id)] = version
            if tomb is not None and tomb[0] >= version:
                dead[(table, row_id)] = line
                deleted.setdefault(table, {})[row_id] = tomb[0]
            else:
                target[row_id] = line
    decoded: dict[str, dict[str, Any]] = {}
    rules: list[RowRules] = []
    excluded: set[TombKey] = set()
    try:
        while True:
            builder = _ViewBuilder(specs, registry, alive, dead, versions, excluded, decoded, rules, deleted)
            builder.build()
            newly = (builder.hidden_by_fk & builder.beat) - excluded
            if not newly:
                break
            excluded |= newly
    finally:
        for checker in rules:
            checker.close()
    tombs = {key: line for key, (_, line) in state.tombs.items()}
    resolutions = sorted(builder.resolutions, key=lambda r: (order.get(r.table, 0), r.row_id, r.rule, r.detail))
    overrides: Overrides = {}
    for table, lines in builder.visible.items():
        rows = state.rows.get(table, {})
        for row_id, line in lines.items():
            own = rows[row_id][1]
            if line != own:  # rewritten by a rule (most rows are the state's own str object)
                shown, kept = decode_row(line), decode_row(own)
                overrides[(table, row_id)] = {c: (kept[c], v) for c, v in shown.items() if kept.get(c) != v}
    return View(builder.visible, tombs, resolutions, overrides)


# --------------------------------------------------------------------------- rows ⇄ lines


def _sorted_columns(spec: TableSpec) -> tuple[str, ...]:
    return tuple(sorted(spec.column_names))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,), "boolean": (int,), "real": (float, int), "uuid": (str,), "text": (str,),
    "date": (str,), "datetime": (str,), "json": (str,),
}
_type_signatures: dict[tuple[str, tuple[type, ...]], bool] = {}


def _check_types(spec: TableSpec, row: dict[str, Any], where: str, label: str) -> None:
    """Exact columns and JSON types per column kind (a string where a number belongs is damage).

    The tuple of value types is cached per table once found valid, so a large snapshot costs one
    column-by-column check per distinct shape, not per row.
    """
    if row.keys() != set(spec.column_names):
        unknown = sorted(set(row) - set(spec.column_names))
        missing = [c for c in spec.column_names if c not in row]
        what = f"unknown column {unknown[0]!r}" if unknown else f"missing column {missing[0]!r}"
        raise ValidationError(f"{label}: {where}: {spec.name}: {what}", table=spec.name, record=where)
    signature = tuple(type(row[c]) for c in spec.column_names)
    if (spec.name, signature) in _type_signatures:
        return
    for column, kind in zip(spec.columns, signature):
        if kind is type(None):
            if not column.nullable:
                raise ValidationError(f"{label}: {where}: {spec.name}.{column.name}: missing value (null)",
                                      table=spec.name, field=column.name, record=where)
        elif kind not in _JSON_TYPES[column.kind] or kind is bool:
            raise ValidationError(f"{label}: {where}: {spec.name}.{column.name}: expected {column.kind}, got "
                                  f"{kind.__name__}", table=spec.name, field=column.name, record=where)
    _type_signatures[(spec.name, signature)] = True


def parse_line(spec: TableSpec, raw: bytes | str, where: str, label: str) -> tuple[str, str, Entry]:
    """Validate one NDJSON line of a snapshot; returns (key1, key2, (version, canonical line)).

    ``key1`` is the table (rows) or tombstoned table (tombstones), ``key2`` the id. Versions and
    ids are checked strictly: a malformed version could otherwise win every merge. The table's
    CHECK rules are checked by :func:`check_new_entries` for the entries that would enter our state.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        row = decode_row(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{label}: {where}: invalid row: {exc}") from None
    _check_types(spec, row, where, label)
    for value in row.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{label}: {where}: {spec.name}: NaN or infinity cannot be stored")
    version = row.get("row_version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise ValidationError(f"{label}: {where}: row_version {version!r} is not '<ms>-<counter>-<device>'")
    if spec.name == TOMBSTONES:
        table, row_id = row.get("table_name"), row.get("row_id")
        if not isinstance(table, str) or table not in REGISTRY or not REGISTRY[table].has_row_identity:
            raise ValidationError(f"{label}: {where}: tombstone for unknown table {table!r}")
    else:
        table, row_id = spec.name, row.get("id")
    if not isinstance(row_id, str) or not _UUID_RE.match(row_id):
        raise ValidationError(f"{label}: {where}: id {row_id!r} is not a lowercase UUID")
    ordered = _sorted_columns(spec)
    return str(table), row_id, (version, encode_row(ordered, tuple(row[c] for c in ordered)))


def _rules_table_sql(spec: TableSpec) -> str:
    """The table's column types, NOT NULL and CHECK rules, without keys, UNIQUE or foreign keys."""
    parts = []
    for column in spec.columns:
        bits = ['"' + column.name.replace('"', '""') + '"', column.sql_type]
        if not column.nullable:
            bits.append("NOT NULL")
        bits += [f"CHECK ({check})" for check in (*format_checks(column), *column.checks)]
        parts.append(" ".join(bits))
    parts += [f"CHECK ({check})" for check in spec.meta.checks]
    return f'CREATE TABLE "{spec.name}" ({", ".join(parts)}) STRICT'


Locate = Callable[[TableSpec, TombKey, str], str]


class RowRules:
    """Every per-row rule of the database (STRICT types, NOT NULL, every CHECK of the registry),
    evaluated by SQLite on an in-memory table per registry table, in batches.

    Without keys, UNIQUE or foreign keys: a device's state legitimately holds rows that those
    rules hide or rewrite in the view. ``locate(spec, key, version)`` names the file and line of
    a failing row (only called on failure).
    """

    BATCH = 5000

    def __init__(self, label: str, locate: Locate) -> None:
        self.label = label
        self.locate = locate
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.created: set[str] = set()
        self.spec: TableSpec | None = None
        self.batch: list[tuple[TombKey, str, dict[str, Any]]] = []

    def add(self, spec: TableSpec, key: TombKey, version: str, row: dict[str, Any]) -> None:
        if spec is not self.spec:
            self.flush()
            self.spec = spec
        self.batch.append((key, version, row))
        if len(self.batch) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        spec, batch = self.spec, self.batch
        self.batch = []
        if spec is None or not batch:
            return
        if spec.name not in self.created:
            self.conn.execute(_rules_table_sql(spec))
            self.created.add(spec.name)
        columns = spec.column_names
        sql = (f'INSERT INTO "{spec.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
               f'VALUES ({", ".join("?" for _ in columns)})')
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany(sql, [[row[c] for c in columns] for _, _, row in batch])
        except (sqlite3.IntegrityError, OverflowError, UnicodeError) as exc:
            # executemany stops at the failing row; the ones before it are in the table.
            done = self.conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]
            key, version, row = batch[min(done, len(batch) - 1)]
            raise _explain_row(spec, row, self.locate(spec, key, version), self.label, exc) from None
        finally:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


def check_new_entries(state: State, known: State, *, label: str, locate: Locate,
                      registry: Registry = REGISTRY, also_known: State | None = None) -> None:
    """Check every entry of ``state`` that would change ``known`` (absent there, or newer) against
    the database's per-row rules; ValidationError names the file and line of the first that fails.
    Entries not newer than ``also_known``'s (what this round already accepted from another device)
    are not checked again.

    Without it a line that breaks a CHECK rule (a hand-edited file, another bakestore build) was
    merged and then refused every sync at the apply step, naming neither the device nor the file
    and line. Entries already known passed this check when they entered the state, so a round
    checks only what is new to it: a device's whole state arrives once, its edits afterwards.
    """
    rules = RowRules(label, locate)
    other = also_known if also_known is not None else State()
    try:
        for spec in registry.exported_tables:
            if spec.name == TOMBSTONES:
                known_tombs, other_tombs = known.tombs, other.tombs
                new = [(key, entry) for key, entry in state.tombs.items()
                       if ((current := known_tombs.get(key)) is None or entry > current)
                       and ((also := other_tombs.get(key)) is None or entry > also)]
            else:
                known_rows, other_rows = known.rows.get(spec.name, {}), other.rows.get(spec.name, {})
                new = [((spec.name, row_id), entry) for row_id, entry in state.rows.get(spec.name, {}).items()
                       if ((current := known_rows.get(row_id)) is None or entry > current)
                       and ((also := other_rows.get(row_id)) is None or entry > also)]
            for key, (version, line) in sorted(new):  # in key order: the first failure is the same everywhere
                rules.add(spec, key, version, decode_row(line))
        rules.flush()
    finally:
        rules.close()


def _line_of(path: Path, spec: TableSpec, key: TombKey, version: str) -> int | None:
    """The line of ``path`` holding ``key`` at ``version`` (read again only for a message)."""
    try:
        lines = _split_lines(path.read_bytes()) or []
    except OSError:
        return None
    for number, raw in enumerate(lines, 1):
        try:
            row = decode_row(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        found = (row.get("table_name"), row.get("row_id")) if spec.name == TOMBSTONES else (spec.name, row.get("id"))
        if found == key and row.get("row_version") == version:
            return number
    return None


def _file_locate(path: Path, shown: str) -> Locate:
    """Locate rows of one table file, shown as ``shown`` (a path from the sync folder down)."""
    def locate(spec: TableSpec, key: TombKey, version: str) -> str:
        line = _line_of(path, spec, key, version)
        return f"{shown}:{line}" if line is not None else f"{shown}: {spec.name} {key[1]}"
    return locate


def snapshot_locate(snap: Snapshot) -> Locate:
    """Locate a snapshot's rows: device folder (from the sync folder down), file and line."""
    def locate(spec: TableSpec, key: TombKey, version: str) -> str:
        name = f"{spec.name}.ndjson"
        shown = f"{ROOT_NAME}/{DEVICES_DIR}/{snap.path.name}/{TABLES_DIR}/{name}"
        return _file_locate(snap.path / TABLES_DIR / name, shown)(spec, key, version)
    return locate


def _put(state: State, spec: TableSpec, key1: str, key2: str, entry: Entry) -> None:
    if spec.name == TOMBSTONES:
        state.put_tomb((key1, key2), entry)
    else:
        state.put_row(key1, key2, entry)


def render(state: State, registry: Registry = REGISTRY) -> dict[str, bytes]:
    """The canonical file content per exported table: lines sorted by primary key."""
    out: dict[str, bytes] = {}
    for spec in registry.exported_tables:
        if spec.name == TOMBSTONES:
            lines = [line for _, (_, line) in sorted(state.tombs.items())]
        else:
            rows = state.rows.get(spec.name, {})
            lines = [rows[i][1] for i in sorted(rows)]
        out[spec.name] = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    return out


# --------------------------------------------------------------------------- reading snapshots


class SnapshotUnusable(BakestoreError):
    """A device snapshot cannot be accepted this round (message says why); not fatal."""


@dataclass
class Snapshot:
    device_id: str
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    state: State

    @property
    def sequence(self) -> int | None:
        value = self.manifest.get("sequence")
        return value if isinstance(value, int) else None


def _sha256_file(path: Path) -> tuple[str, int, int]:
    digest = hashlib.sha256()
    size = lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return digest.hexdigest(), size, lines


def _split_lines(data: bytes) -> list[bytes] | None:
    """NDJSON lines; None when the data does not end with a newline (a torn write)."""
    if not data:
        return []
    if not data.endswith(b"\n"):
        return None
    return data[:-1].split(b"\n")


def read_manifest(device_dir: Path) -> tuple[dict[str, Any], str]:
    """A device's manifest and its sha256; SnapshotUnusable if missing, evicted or malformed."""
    path = device_dir / MANIFEST
    if path.is_symlink():
        raise SnapshotUnusable(f"{MANIFEST} is a symlink; refusing to follow it")
    if not path.is_file():
        if (device_dir / f".{MANIFEST}.icloud").exists():
            raise SnapshotUnusable(f"{MANIFEST} is not downloaded yet (iCloud placeholder)")
        raise SnapshotUnusable(f"no {MANIFEST} yet (still arriving, or the device never finished a sync)")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotUnusable(f"{MANIFEST} is not valid JSON ({exc}); partially arrived?") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SnapshotUnusable(f"{MANIFEST} is not a {FORMAT_NAME} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotUnusable(f"format_version {manifest.get('format_version')!r} is not supported "
                               f"(this bakestore reads {FORMAT_VERSION})")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotUnusable(f"schema_version {manifest.get('schema_version')!r} differs from ours "
                               f"({SCHEMA_VERSION}); sync waits until every device has migrated")
    if not isinstance(manifest.get("tables"), list):
        raise SnapshotUnusable(f"{MANIFEST}: 'tables' must be a list")
    return manifest, hashlib.sha256(raw).hexdigest()


def read_snapshot(device_dir: Path, *, expect_device: str | None = None,
                  registry: Registry = REGISTRY) -> Snapshot:
    """Verify a device folder against its manifest and read it; SnapshotUnusable says why not.

    Accepted only when every table the registry exports is listed and every listed file is
    present with the manifest's size, sha256 and row count: sync engines deliver files in any
    order, so anything else is a snapshot still arriving.
    """
    manifest, manifest_sha = read_manifest(device_dir)
    device = manifest.get("device_id")
    if not isinstance(device, str) or not DEVICE_ID_RE.match(device):
        raise SnapshotUnusable(f"{MANIFEST}: device_id {device!r} is not a device id")
    if expect_device is not None and device != expect_device:
        raise SnapshotUnusable(f"{MANIFEST} says device {device}, but the folder is {expect_device} "
                               "(a copied folder?)")
    entries = {e.get("name"): e for e in manifest["tables"] if isinstance(e, dict)}
    state = State()
    label = f"device {device[:8]}"
    for spec in registry.exported_tables:
        entry = entries.get(spec.name)
        if entry is None:
            raise SnapshotUnusable(f"{MANIFEST} does not list table {spec.name}")
        expected_file = f"{TABLES_DIR}/{spec.name}.ndjson"
        if entry.get("file") != expected_file:
            raise SnapshotUnusable(f"{MANIFEST}: {spec.name} file is {entry.get('file')!r}, expected {expected_file}")
        path = device_dir / TABLES_DIR / f"{spec.name}.ndjson"
        if path.is_symlink():
            raise SnapshotUnusable(f"{expected_file} is a symlink; refusing to follow it")
        if not path.is_file():
            stub = path.with_name(f".{path.name}.icloud")
            why = "not downloaded yet (iCloud placeholder)" if stub.exists() else "missing (still arriving?)"
            raise SnapshotUnusable(f"{expected_file} is {why}")
        size = path.stat().st_size
        if size != entry.get("bytes") or size > _MAX_FILE_BYTES:
            raise SnapshotUnusable(f"{expected_file}: {size} bytes, the manifest says {entry.get('bytes')} "
                                   "(partially arrived or replaced)")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise SnapshotUnusable(f"{expected_file}: sha256 does not match the manifest (partially arrived "
                                   "or replaced)")
        lines = _split_lines(data)
        if lines is None or len(lines) != entry.get("rows"):
            raise SnapshotUnusable(f"{expected_file}: {len(lines) if lines is not None else 'torn'} rows, "
                                   f"the manifest says {entry.get('rows')}")
        # Named from the sync folder down, so the message says which device folder and file.
        shown = f"{ROOT_NAME}/{DEVICES_DIR}/{device_dir.name}/{expected_file}"
        for lineno, raw in enumerate(lines, 1):
            try:
                key1, key2, parsed = parse_line(spec, raw, f"{shown}:{lineno}", label)
            except (ValidationError, UnicodeDecodeError) as exc:
                raise SnapshotUnusable(str(exc)) from None
            _put(state, spec, key1, key2, parsed)
    return Snapshot(device, device_dir, manifest, manifest_sha, state)


def read_loose_file(path: Path, spec: TableSpec, label: str) -> State:
    """A conflict copy of one table file: every line is self-describing state, so it is merged
    as long as every line is a valid row (a torn copy is ignored as a whole)."""
    if path.is_symlink():
        raise SnapshotUnusable(f"{path.name} is a symlink; refusing to follow it")
    state = State()
    lines = _split_lines(path.read_bytes())
    if lines is None:
        raise SnapshotUnusable(f"{path.name}: the last line is incomplete (torn copy)")
    for lineno, raw in enumerate(lines, 1):
        try:
            key1, key2, parsed = parse_line(spec, raw, f"{path.name}:{lineno}", label)
        except (ValidationError, UnicodeDecodeError) as exc:
            raise SnapshotUnusable(str(exc)) from None
        _put(state, spec, key1, key2, parsed)
    return state


# --------------------------------------------------------------------------- writing our snapshot



def _atomic_write(path: Path, data: bytes) -> None:
    # The temp name is one classify() recognises as our own leftover ("own-tmp").
    write_atomic(path, data, tmp_name=f".{path.name}.bakestore-tmp-{os.getpid()}")


def write_snapshot(device_dir: Path, state: State, *, device_id: str, sequence: int,
                   registry: Registry = REGISTRY) -> int | None:
    """Write ``state`` into our device folder: table files first, the manifest last.

    Only files whose bytes differ are rewritten, and the manifest only when a table changed, so
    an unchanged state causes no churn in the sync engine. Returns the new sequence number, or
    None when nothing had to be written.
    """
    tables_dir = device_dir / TABLES_DIR
    tables_dir.mkdir(parents=True, exist_ok=True)
    for leftover in list(device_dir.iterdir()) + list(tables_dir.iterdir()):
        if classify(leftover.name).kind == "own-tmp":
            leftover.unlink()  # a crash of ours left it; never anyone else's file
    contents = render(state, registry)
    entries: list[dict[str, Any]] = []
    for spec in registry.exported_tables:
        data = contents[spec.name]
        entries.append({"name": spec.name, "file": f"{TABLES_DIR}/{spec.name}.ndjson",
                        "rows": data.count(b"\n"), "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    try:
        old_manifest, _ = read_manifest(device_dir)
        old_entries = old_manifest.get("tables")
        found = old_manifest.get("sequence")
        old_sequence = found if isinstance(found, int) else 0
    except SnapshotUnusable:
        old_entries, old_sequence = None, 0
    wrote = False
    for spec, entry in zip(registry.exported_tables, entries):
        path = tables_dir / f"{spec.name}.ndjson"
        if path.is_file() and path.stat().st_size == entry["bytes"] and _sha256_file(path)[0] == entry["sha256"]:
            continue
        _atomic_write(path, contents[spec.name])
        wrote = True
    if not wrote and old_entries == entries:
        return None
    fsync_dir(tables_dir)
    new_sequence = max(sequence, old_sequence + 1)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "bakestore_version": __version__,
        "device_id": device_id,
        "sequence": new_sequence,
        "exported_at": format_timestamp(_dt.datetime.now(_dt.timezone.utc)),
        "max_version": state.max_version(),
        "tables": entries,
        "total_rows": sum(e["rows"] for e in entries),
    }
    _atomic_write(device_dir / MANIFEST,
                  (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    fsync_dir(device_dir)
    return new_sequence


# --------------------------------------------------------------------------- the live database


def _line_hash(line: str) -> bytes:
    return hashlib.blake2b(line.encode("utf-8"), digest_size=16).digest()


def read_live(conn: Any, registry: Registry = REGISTRY) -> State:
    """The live database's exported tables as a State (one row per id, its line and version)."""
    state = State()
    for spec in registry.exported_tables:
        columns = _sorted_columns(spec)
        select = ", ".join(f'"{c}"' for c in columns)
        version_at = columns.index("row_version")
        if spec.name == TOMBSTONES:
            t_at, id_at = columns.index("table_name"), columns.index("row_id")
            for values in conn.execute(f'SELECT {select} FROM "{spec.name}"'):
                state.tombs[(values[t_at], values[id_at])] = (values[version_at], encode_row(columns, values))
        elif spec.has_row_identity:
            id_at = columns.index("id")
            rows: dict[str, Entry] = {}
            for values in conn.execute(f'SELECT {select} FROM "{spec.name}"'):
                rows[values[id_at]] = (values[version_at], encode_row(columns, values))
            if rows:
                state.rows[spec.name] = rows
        else:
            raise SyncError(f"{spec.name}: exported table without row identity; sync cannot merge it")
    return state


Baseline = dict[str, dict[str, tuple[bytes, str]]]  # table → id → (line hash, version)


@dataclass
class Capture:
    """Local changes since the last sync, as state to merge, and what had to be stamped."""

    state: State
    rows: int = 0
    tombstones: int = 0
    minted_versions: list[TombKey] = field(default_factory=list)
    minted_tombstones: list[TombKey] = field(default_factory=list)
    adopted_seed_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "tombstones": self.tombstones, "minted_versions": len(self.minted_versions),
                "minted_tombstones": len(self.minted_tombstones), "adopted_seed_rows": self.adopted_seed_rows}


def _restamp(line: str, version: str) -> str:
    row = decode_row(line)
    row["row_version"] = version
    columns = tuple(sorted(row))
    return encode_row(columns, tuple(row[c] for c in columns))


_SEEDS: dict[TombKey, dict[str, Any]] | None = None
_SEED_STAMPS = ("created_at", "updated_at", "row_version")


def untouched_seed(table: str, row_id: str, line: str) -> bool:
    """Is ``line`` a seed row as seeding wrote it: every seeded value as seeded, and never updated
    (``updated_at == created_at``)? An edit through the API changes ``updated_at``; one outside it
    changes a value."""
    global _SEEDS
    if _SEEDS is None:
        from .seeds import seed_rows

        _SEEDS = {(t, row["id"]): row for t, rows in seed_rows().items() for row in rows}
    seed = _SEEDS.get((table, row_id))
    if seed is None:
        return False
    row = decode_row(line)
    return row.get("updated_at") == row.get("created_at") and all(
        row.get(column) == value for column, value in seed.items() if column not in _SEED_STAMPS)


def _unshow(line: str, shown: dict[str, tuple[Any, Any]]) -> str:
    """``line`` with the state's own value put back in every column that still holds the value the
    view showed instead (a disambiguated name, a re-pointed or nulled foreign key)."""
    row = decode_row(line)
    changed = False
    for column, (own, view_value) in shown.items():
        if column in row and row[column] == view_value and type(row[column]) is type(view_value):
            row[column] = own
            changed = True
    if not changed:
        return line
    columns = tuple(sorted(row))
    return encode_row(columns, tuple(row[c] for c in columns))


def capture(live: State, baseline: Baseline | None, known: State, *, mint: Callable[[], str], now: str,
            registry: Registry = REGISTRY, overrides: Overrides | None = None) -> Capture:
    """Turn the live database into state to merge (change capture without triggers).

    With a baseline (what the last sync wrote, per id: hash and version):

    * a row whose content differs from the baseline with a *newer* version was written through
      the API: taken as is; with the same or an older version it was written outside the API or
      restored: it gets a fresh version (``mint``) so it wins, as the user's latest act;
    * a row new to the baseline that is not newer than what is known of its id (a deleted or
      older row brought back by a restore) gets a fresh version;
    * a row in the baseline that vanished without a newer tombstone gets a fresh tombstone.

    Without a baseline (first sync, or the state DB lags the live DB after a crash) rows are taken
    only when newer than what the others know, because a view artefact (a nulled column, a revived
    parent) cannot be told from an edit. Seed rows (units, recipe categories: the same ids on every
    device) are the exception both ways: this device's *untouched* copy is never taken over the
    others' (so a new device never reverts edits made to them elsewhere), and this device's own
    edit to one (a write with a version of its own) wins over the others' untouched copy even when
    that copy was seeded later, by a fresh version; two edits compare by version as usual. A
    delete elsewhere is never lost to either: an untouched copy of a seed row the others hold a
    tombstone for is not taken (even when they never published the row itself), and an own edit
    against a deleted copy compares by version with the tombstone.

    ``overrides`` are the values the last view showed instead of the state's (:class:`View`): a
    row taken here gets the state's own value back in every column that still shows the view's
    (the user edited another column; the API writes the whole row), so a disambiguated name, a
    re-pointed or a nulled foreign key never becomes the row's own value by an unrelated edit.
    """
    out = Capture(State())
    overrides = overrides or {}

    def take(table: str, row_id: str, version: str, line: str, *, fresh_unless_newer_than: str) -> None:
        """Take a live row: as it is when its version is newer than ``fresh_unless_newer_than``,
        else with a fresh version, so that it wins as the user's latest act."""
        shown = overrides.get((table, row_id))
        if shown:
            line = _unshow(line, shown)
        if version > fresh_unless_newer_than:
            out.state.put_row(table, row_id, (version, line))
        else:
            fresh = mint()
            out.state.put_row(table, row_id, (fresh, _restamp(line, fresh)))
            out.minted_versions.append((table, row_id))
        out.rows += 1

    for spec in registry.exported_tables:
        if not spec.has_row_identity:
            continue
        table = spec.name
        live_rows = live.rows.get(table, {})
        base_rows = baseline.get(table, {}) if baseline is not None else {}
        known_rows = known.rows.get(table, {})
        for row_id, (version, line) in live_rows.items():
            base = base_rows.get(row_id)
            if baseline is not None and base is not None:
                if _line_hash(line) == base[0]:
                    continue
                take(table, row_id, version, line, fresh_unless_newer_than=base[1])
                continue
            seen = known_rows.get(row_id)
            tomb = known.tombs.get((table, row_id))
            if baseline is None:
                if spec.is_seed and ((seen is not None and seen[1] != line) or (seen is None and tomb is not None)):
                    if untouched_seed(table, row_id, line):
                        # Our fresh copy: theirs may carry an edit, or they deleted the row (a device
                        # that deleted a seed row before it ever synced publishes only the tombstone).
                        out.adopted_seed_rows += 1
                        continue
                    if seen is not None and version != seen[0] and untouched_seed(table, row_id, seen[1]) \
                            and (tomb is None or tomb[0] < seen[0]):
                        # Our own edit (a write of its own version) against their untouched copy:
                        # ours wins even where their copy was seeded later (a newer version). Not
                        # against a delete: that compares by version like any delete (below).
                        take(table, row_id, version, line, fresh_unless_newer_than=seen[0])
                        continue
                if seen is not None and seen[0] >= version:
                    continue
                take(table, row_id, version, line, fresh_unless_newer_than="")
                continue
            # a row new to the baseline: inserted here, or brought back by a restore
            if seen is not None and seen[1] == line:
                continue
            newest_known = max(seen[0] if seen is not None else "", tomb[0] if tomb is not None else "")
            take(table, row_id, version, line, fresh_unless_newer_than=newest_known)
        if baseline is None:
            continue
        for row_id, (_, base_version) in base_rows.items():
            if row_id in live_rows:
                continue
            tomb = live.tombs.get((table, row_id))
            if tomb is not None and tomb[0] > base_version:
                continue  # deleted through the API: its tombstone is captured below
            fresh = mint()
            tomb_line = encode_row(("deleted_at", "row_id", "row_version", "table_name"), (now, row_id, fresh, table))
            out.state.put_tomb((table, row_id), (fresh, tomb_line))
            out.minted_tombstones.append((table, row_id))
    for key, entry in live.tombs.items():
        if out.state.put_tomb(key, entry):
            out.tombstones += 1
    return out


def _diff(live: State, view: View, registry: Registry) -> dict[str, TableDiff]:
    diff: dict[str, TableDiff] = {}
    for spec in registry.exported_tables:
        if spec.name == TOMBSTONES:
            before_t = {k: e[1] for k, e in live.tombs.items()}
            after_t = view.tombs
            added = sum(1 for k in after_t if k not in before_t)
            removed = sum(1 for k in before_t if k not in after_t)
            changed = sum(1 for k, line in after_t.items() if k in before_t and before_t[k] != line)
            diff[spec.name] = TableDiff(len(before_t), len(after_t), added, removed, changed)
            continue
        before = live.rows.get(spec.name, {})
        after = view.rows.get(spec.name, {})
        added = sum(1 for i in after if i not in before)
        removed = sum(1 for i in before if i not in after)
        changed = sum(1 for i, line in after.items() if i in before and before[i][1] != line)
        diff[spec.name] = TableDiff(len(before), len(after), added, removed, changed)
    return diff


def _apply(conn: Any, live: State, view: View, registry: Registry) -> None:
    """Make the live tables equal the view: delete every row that goes or changes, then insert.

    Runs with ``foreign_keys=OFF`` on this connection so SQLite's own ON DELETE actions do not
    fire (the view already encodes the written FK rule); ``foreign_key_check`` runs afterwards,
    before COMMIT. Deleting all changed rows before inserting any means a UNIQUE value can move
    from one row to another without a transient clash.
    """
    inserts: list[tuple[TableSpec, list[str]]] = []
    for spec in registry.exported_tables:
        if spec.name == TOMBSTONES:
            before_t = {k: e[1] for k, e in live.tombs.items()}
            gone = [k for k, line in before_t.items() if view.tombs.get(k) != line]
            conn.executemany(f'DELETE FROM "{TOMBSTONES}" WHERE table_name = ? AND row_id = ?', gone)
            inserts.append((spec, [line for k, line in sorted(view.tombs.items()) if before_t.get(k) != line]))
            continue
        before = live.rows.get(spec.name, {})
        after = view.rows.get(spec.name, {})
        gone_ids = [(i,) for i, (_, line) in before.items() if after.get(i) != line]
        conn.executemany(f'DELETE FROM "{spec.name}" WHERE id = ?', gone_ids)
        inserts.append((spec, [after[i] for i in sorted(after) if i not in before or before[i][1] != after[i]]))
    for spec, lines in inserts:
        if not lines:
            continue
        columns = spec.column_names
        sql = (f'INSERT INTO "{spec.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
               f'VALUES ({", ".join("?" for _ in columns)})')
        values = [[row[c] for c in columns] for row in map(decode_row, lines)]
        try:
            conn.executemany(sql, values)
        except sqlite3.IntegrityError as exc:
            culprit = _find_bad_row(conn, sql, values, spec)
            raise SyncError(f"sync refused: {spec.name} row {culprit} breaks a rule of the database "
                            f"({exc}); the live database was not changed") from None


def _find_bad_row(conn: Any, sql: str, values: list[list[Any]], spec: TableSpec) -> str:
    id_at = spec.column_names.index("id") if "id" in spec.column_names else 0
    conn.execute("SAVEPOINT probe")
    try:
        for row in values:
            try:
                conn.execute(sql, row)
            except sqlite3.IntegrityError:
                return str(row[id_at])
        return "?"
    finally:
        conn.execute("ROLLBACK TO probe")
        conn.execute("RELEASE probe")


# --------------------------------------------------------------------------- the private state DB


def state_path_for(db_path: str | os.PathLike[str]) -> Path:
    return sync_state_path(Path(db_path))


_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rows (tbl TEXT, id TEXT, version TEXT NOT NULL, line TEXT NOT NULL,
                                 PRIMARY KEY (tbl, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombs (tbl TEXT, id TEXT, version TEXT NOT NULL, line TEXT NOT NULL,
                                  PRIMARY KEY (tbl, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS base (tbl TEXT, id TEXT, hash BLOB NOT NULL, version TEXT NOT NULL,
                                 PRIMARY KEY (tbl, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS overrides (tbl TEXT, id TEXT, col TEXT, own TEXT NOT NULL, shown TEXT NOT NULL,
                                      PRIMARY KEY (tbl, id, col)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (folder TEXT, device_id TEXT, manifest_sha256 TEXT, sequence INTEGER,
                                    exported_at TEXT, accepted_at TEXT, rows INTEGER, max_version TEXT,
                                    PRIMARY KEY (folder, device_id)) WITHOUT ROWID;
"""


class StateDB:
    """``<db>.sync-state.db``: the merged state, the baseline for change capture, accepted snapshots.

    A separate file next to the live database (never in the sync folder, never exported). Its
    ``generation`` must equal the live database's ``_bakestore_meta.sync_generation``; when it does
    not, the last round's state write was lost and capture runs without a baseline.
    """

    def __init__(self, db_path: Path, *, create: bool = True) -> None:
        self.path = state_path_for(db_path)
        # A dry run must not even create the file: an empty in-memory state stands in for it.
        target = str(self.path) if create or self.path.exists() else ":memory:"
        self.conn = sqlite3.connect(target, timeout=5.0, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 5000")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.executescript(_STATE_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    @property
    def generation(self) -> int:
        return int(self.meta("generation") or 0)

    def load_state(self) -> State:
        state = State()
        for table, row_id, version, line in self.conn.execute("SELECT tbl, id, version, line FROM rows"):
            state.rows.setdefault(table, {})[row_id] = (version, line)
        for table, row_id, version, line in self.conn.execute("SELECT tbl, id, version, line FROM tombs"):
            state.tombs[(table, row_id)] = (version, line)
        return state

    def load_baseline(self) -> Baseline:
        baseline: Baseline = {}
        for table, row_id, digest, version in self.conn.execute("SELECT tbl, id, hash, version FROM base"):
            baseline.setdefault(table, {})[row_id] = (bytes(digest), version)
        return baseline

    def load_overrides(self) -> Overrides:
        """The values the last view showed instead of the state's (see :func:`capture`)."""
        overrides: Overrides = {}
        for table, row_id, column, own, shown in self.conn.execute("SELECT tbl, id, col, own, shown FROM overrides"):
            overrides.setdefault((table, row_id), {})[column] = (json.loads(own), json.loads(shown))
        return overrides

    def accepted(self, folder: str) -> dict[str, dict[str, Any]]:
        cursor = self.conn.execute("SELECT device_id, manifest_sha256, sequence, exported_at, accepted_at, rows, "
                                   "max_version FROM devices WHERE folder = ?", [folder])
        keys = ("device_id", "manifest_sha256", "sequence", "exported_at", "accepted_at", "rows", "max_version")
        return {row[0]: dict(zip(keys, row)) for row in cursor}

    def save(self, *, old: State, new: State, baseline: Baseline | None, view: View | None,
             devices: list[tuple[str, Snapshot]], generation: int | None) -> None:
        """One transaction: the state delta, the new baseline (from the view), accepted devices."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, rows in new.rows.items():
                old_rows = old.rows.get(table, {})
                conn.executemany("INSERT OR REPLACE INTO rows (tbl, id, version, line) VALUES (?, ?, ?, ?)",
                                 [(table, i, v, line) for i, (v, line) in rows.items() if old_rows.get(i) != (v, line)])
            conn.executemany("INSERT OR REPLACE INTO tombs (tbl, id, version, line) VALUES (?, ?, ?, ?)",
                             [(k[0], k[1], v, line) for k, (v, line) in new.tombs.items()
                              if old.tombs.get(k) != (v, line)])
            if view is not None:
                new_base = {t: {i: _line_hash(line) for i, line in lines.items()} for t, lines in view.rows.items()}
                old_base = baseline or {}
                deletes: list[tuple[str, str]] = []
                upserts: list[tuple[str, str, bytes, str]] = []
                for table, digests in new_base.items():
                    previous = old_base.get(table, {})
                    for row_id, digest in digests.items():
                        if previous.get(row_id, (None,))[0] != digest:
                            upserts.append((table, row_id, digest, view_version(view.rows[table][row_id])))
                    deletes += [(table, i) for i in previous if i not in digests]
                for table, previous in old_base.items():
                    if table not in new_base:
                        deletes += [(table, i) for i in previous]
                if baseline is None:
                    conn.execute("DELETE FROM base")
                    deletes = []
                conn.executemany("DELETE FROM base WHERE tbl = ? AND id = ?", deletes)
                conn.executemany("INSERT OR REPLACE INTO base (tbl, id, hash, version) VALUES (?, ?, ?, ?)", upserts)
                # The view's own values, beside the baseline they belong to (usually a handful).
                def dump(value: Any) -> str:
                    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

                wanted = {(t, i, c): (dump(own), dump(shown)) for (t, i), cols in view.overrides.items()
                          for c, (own, shown) in cols.items()}
                stored = {(t, i, c): (own, shown) for t, i, c, own, shown
                          in conn.execute("SELECT tbl, id, col, own, shown FROM overrides")}
                conn.executemany("DELETE FROM overrides WHERE tbl = ? AND id = ? AND col = ?",
                                 [k for k in stored if k not in wanted])
                conn.executemany("INSERT OR REPLACE INTO overrides (tbl, id, col, own, shown) VALUES (?, ?, ?, ?, ?)",
                                 [(*k, *v) for k, v in wanted.items() if stored.get(k) != v])
            for folder, snap in devices:
                conn.execute("INSERT OR REPLACE INTO devices (folder, device_id, manifest_sha256, sequence, "
                             "exported_at, accepted_at, rows, max_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [folder, snap.device_id, snap.manifest_sha256, snap.sequence,
                              snap.manifest.get("exported_at"), _utc_now(), snap.manifest.get("total_rows"),
                              snap.manifest.get("max_version")])
            if generation is not None:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)", [str(generation)])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


def view_version(line: str) -> str:
    """The row_version inside a canonical line (keys are sorted; read it without a full decode)."""
    start = line.find('"row_version":"')
    if start < 0:
        raise SyncError(f"row without a row_version: {line[:80]}")
    start += len('"row_version":"')
    return line[start:line.index('"', start)]


def _utc_now() -> str:
    return format_timestamp(_dt.datetime.now(_dt.timezone.utc))


# --------------------------------------------------------------------------- the report


@dataclass
class DeviceReport:
    """What sync did with one device folder this round."""

    device_id: str
    folder: str
    status: str  # own | accepted | unchanged | skipped | conflict-copy
    message: str | None = None
    sequence: int | None = None
    exported_at: str | None = None
    rows: int | None = None
    went_backwards: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SyncReport:
    folder: str
    device_id: str
    dry_run: bool
    mode: str = "baseline"  # baseline | first-sync | recovery
    devices: list[DeviceReport] = field(default_factory=list)
    captured: dict[str, int] = field(default_factory=dict)
    diff: dict[str, TableDiff] = field(default_factory=dict)
    resolutions: list[Resolution] = field(default_factory=list)
    debris: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    shrink: list[str] = field(default_factory=list)
    restore_point: Path | None = None
    audit_id: str | None = None
    exported_sequence: int | None = None

    @property
    def changed_rows(self) -> int:
        return sum((d.added or 0) + (d.removed or 0) + (d.changed or 0) for d in self.diff.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder, "device_id": self.device_id, "dry_run": self.dry_run, "mode": self.mode,
            "devices": [d.as_dict() for d in self.devices], "captured": self.captured,
            "diff": {t: d.as_dict() for t, d in self.diff.items() if not d.unchanged},
            "changed_rows": self.changed_rows,
            "resolutions": [r.as_dict() for r in self.resolutions], "debris": self.debris,
            "messages": self.messages, "shrink": self.shrink,
            "restore_point": str(self.restore_point) if self.restore_point else None,
            "audit_id": self.audit_id, "exported_sequence": self.exported_sequence,
        }


# --------------------------------------------------------------------------- the folder


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_folder(db_path: Path, folder: Path) -> Path:
    """Refuse a sync folder that contains the live database or any SQLite file.

    The live ``.db``/``-wal``/``-shm`` must never travel through a sync engine (sqlite-facts D1):
    each file would arrive on its own, and two devices would share no lock. Under
    ``bakestore-v1/`` (the tree bakestore owns) every regular file is checked by its 16-byte
    header, whatever its name, plus ``-wal``/``-shm``/``-journal`` names (which have no header of
    their own); at the top level of the folder, the live database's own file names. A file that
    *is* one of the live database's own files (a hard link) is refused by identity, never opened:
    a plain read of it would drop this process's SQLite locks.
    """
    if not folder.is_dir():
        raise SyncError(f"{folder}: no such folder (create it, or point to the folder your sync engine shares)")
    root = folder.resolve()
    live = db_path.resolve()
    if root == live.parent or root in live.parents:
        raise SyncError(f"{folder} contains the live database {db_path}; a sync folder must never hold a live "
                        "database (pick a folder outside the database's directory)")
    live_names = {live.name, f"{live.name}-wal", f"{live.name}-shm", f"{live.name}-journal"}
    own_ids: dict[tuple[int, int], str] = {}
    for own in own_files(live):
        with contextlib.suppress(OSError):
            info = os.stat(own)
            own_ids[(info.st_dev, info.st_ino)] = own.name
    refuse = ("a SQLite file inside the sync folder; bakestore refuses to sync through a folder holding a "
              "database (move it out first)")
    for path in folder.iterdir():
        if path.name in live_names:
            raise SyncError(f"{path}: a live SQLite file (the name of this database's) inside the sync folder; "
                            "bakestore refuses to sync through a folder holding a database (move it out first)")
    tree = folder / ROOT_NAME
    if tree.is_dir() and not tree.is_symlink():
        for directory, dirs, files in os.walk(tree, followlinks=False):
            for name in sorted(files):
                path = Path(directory, name)
                if name.endswith(("-wal", "-shm", "-journal")) or name.endswith(".db"):
                    raise SyncError(f"{path}: {refuse}")
                try:
                    info = os.lstat(path)
                except OSError:
                    continue  # vanished meanwhile (a sync engine at work)
                if not stat.S_ISREG(info.st_mode):
                    continue  # symlinks are never followed, let alone read
                if (info.st_dev, info.st_ino) in own_ids:
                    raise SyncError(f"{path}: is the live database's own file {own_ids[(info.st_dev, info.st_ino)]} "
                                    f"(a hard link): {refuse}")
                if info.st_size < len(_SQLITE_HEADER):
                    continue
                try:
                    with open(path, "rb") as handle:
                        header = handle.read(len(_SQLITE_HEADER))
                except OSError:
                    continue
                if header == _SQLITE_HEADER:
                    raise SyncError(f"{path}: {refuse}")
    return tree / DEVICES_DIR


@dataclass
class _Scan:
    snapshots: list[tuple[str, Snapshot]] = field(default_factory=list)  # (folder key, snapshot) accepted now
    # conflict copies: (state, where its rows are, label, what it is for the debris list)
    loose: list[tuple[State, Locate, str, str]] = field(default_factory=list)
    reports: list[DeviceReport] = field(default_factory=list)
    debris: list[str] = field(default_factory=list)
    own: Path | None = None
    own_report: DeviceReport | None = None
    warnings: list[str] = field(default_factory=list)


def _scan_device_extras(device_dir: Path, device: str, scan: _Scan, prefix: str) -> None:
    """Conflict copies and other debris inside another device's folder (merged or reported)."""
    label = f"device {device[:8]}"
    for directory in (device_dir, device_dir / TABLES_DIR):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            name = classify(path.name)
            where = f"{prefix}/{path.relative_to(device_dir)}"
            if name.kind == "plain":
                if path.is_dir() and path.name == TABLES_DIR:
                    continue
                if directory == device_dir and path.name == MANIFEST:
                    continue
                if directory != device_dir and path.name.removesuffix(".ndjson") in REGISTRY:
                    continue
                scan.debris.append(f"{where}: unknown file, ignored")
            elif name.kind in ("in-progress", "stub", "own-tmp"):
                scan.debris.append(f"{where}: {name.engine} {name.kind} file, ignored")
            elif name.kind == "conflict":
                if path.is_dir() and name.base == TABLES_DIR:
                    files = [(f, f.name) for f in sorted(path.iterdir()) if f.is_file()]
                elif path.is_file() and name.base.endswith(".ndjson"):
                    files = [(path, name.base)]
                else:
                    scan.debris.append(f"{where}: {name.engine} conflict copy of {name.base}, reported only "
                                       "(a manifest copy describes files that were overwritten)")
                    continue
                for file, base in files:
                    table = classify(base).base.removesuffix(".ndjson")
                    if table not in REGISTRY or not REGISTRY[table].exported:
                        scan.debris.append(f"{where}: {file.name}: not a table file, ignored")
                        continue
                    try:
                        state = read_loose_file(file, REGISTRY[table], label)
                        shown = f"{ROOT_NAME}/{DEVICES_DIR}/{device_dir.name}/{file.relative_to(device_dir)}"
                        scan.loose.append((state, _file_locate(file, shown), label,
                                           f"{where}: {name.engine} conflict copy of {table}"))
                    except (SnapshotUnusable, OSError) as exc:
                        scan.debris.append(f"{where}: {name.engine} conflict copy unreadable ({exc}); ignored")


def _device_id_file() -> str:
    try:
        from .paths import config_dir

        return str(config_dir() / "device_id")
    except BakestoreError:
        return "the device_id file in bakestore's config directory"


def _duplicate_id_alarm(path: Path, what: str) -> SyncError:
    """The duplicate-device-id alarm: what happened, that nothing changed, and what to do."""
    return SyncError(
        f"{path}: {what}: another device uses the same device id "
        f"(a copied config directory?); nothing was changed. To fix it: on ONE of the two devices delete "
        f"{_device_id_file()} (it gets a new id on its next start) and sync there; then move {path.name!r} "
        "out of the sync folder (its rows are that other device's and come back under its new id; delete the "
        "copy once both devices have synced) and sync here again")


def _own_folder_alarm(device_dir: Path) -> None:
    for directory in (device_dir, device_dir / TABLES_DIR):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            name = classify(path.name)
            if name.kind == "conflict":
                raise _duplicate_id_alarm(path, f"a {name.engine} conflict copy of {name.base} inside this device's "
                                                "own folder")


def _skip(report: DeviceReport, why: str, previous: dict[str, Any] | None) -> None:
    report.status = "skipped"
    kept = (f"keeping its last accepted state (sequence {previous.get('sequence')}, exported "
            f"{previous.get('exported_at')})") if previous else "nothing accepted from it yet"
    report.message = f"{why}; skipped this round, {kept}"
    log.warning("sync: device %s skipped: %s", report.device_id[:8], report.message)


def _check_arrivals(scan: _Scan, known: State, accepted: dict[str, dict[str, Any]], *, check: bool = True) -> State:
    """The database's per-row rules on what this round's snapshots and conflict copies bring that
    is new (:func:`check_new_entries`): a snapshot with a row that breaks one is skipped this round
    with a message naming the device folder, file, line and field; the other devices still sync.

    Each is checked against ``known`` and what this round already accepted, in a fixed order
    (device folders by name, then conflict copies), so a row that several devices hold alike (a
    first sync) is checked once. Returns what was accepted, merged. ``check=False`` (``--status``,
    which applies nothing) accepts everything unchecked.
    """
    arrived = State()
    for item in list(scan.snapshots):
        snap = item[1]
        try:
            if check:
                check_new_entries(snap.state, known, label=f"device {snap.device_id[:8]}",
                                  locate=snapshot_locate(snap), also_known=arrived)
        except ValidationError as exc:
            scan.snapshots.remove(item)
            for report in scan.reports:
                if report.device_id == snap.device_id and report.status == "accepted":
                    _skip(report, str(exc), accepted.get(snap.device_id))
            continue
        arrived.join(snap.state)
    for state, locate, label, what in list(scan.loose):
        try:
            if check:
                check_new_entries(state, known, label=label, locate=locate, also_known=arrived)
            scan.debris.append(f"{what}: merged (it is state)")
        except ValidationError as exc:
            scan.loose.remove((state, locate, label, what))
            scan.debris.append(f"{what}: a row breaks a rule of the database ({exc}); ignored")
            continue
        arrived.join(state)
    return arrived


def _scan(devices_dir: Path, me: str, folder_key: str, accepted: dict[str, dict[str, Any]]) -> _Scan:
    scan = _Scan()
    if not devices_dir.is_dir():
        return scan
    for path in sorted(devices_dir.iterdir()):
        name = classify(path.name)
        where = f"devices/{path.name}"
        if name.kind in ("in-progress", "stub", "own-tmp"):
            scan.debris.append(f"{where}: {name.engine} {name.kind} entry, ignored")
            continue
        if not path.is_dir() or not DEVICE_ID_RE.match(name.base):
            scan.debris.append(f"{where}: not a device folder, ignored")
            continue
        device = name.base
        if device == me:
            if name.kind == "conflict":
                raise _duplicate_id_alarm(path, f"a {name.engine} conflict copy of this device's own folder")
            _own_folder_alarm(path)
            scan.own = path
            scan.own_report = own = DeviceReport(device, where, "own")
            try:
                manifest, _ = read_manifest(path)
                own.sequence, own.exported_at = manifest.get("sequence"), manifest.get("exported_at")
                own.rows = manifest.get("total_rows")
            except SnapshotUnusable as exc:
                own.message = f"not written yet or unreadable: {exc}"
            continue
        if name.kind == "conflict":
            try:
                snap = read_snapshot(path, registry=REGISTRY)
                scan.loose.append((snap.state, snapshot_locate(snap), f"device {device[:8]}",
                                   f"{where}: {name.engine} conflict copy of device {device[:8]}'s folder"))
            except (SnapshotUnusable, OSError) as exc:
                scan.debris.append(f"{where}: conflict copy of device {device[:8]}'s folder unusable ({exc}); ignored")
            continue
        report = DeviceReport(device, where, "skipped")
        previous = accepted.get(device)
        try:
            manifest, manifest_sha = read_manifest(path)
            report.sequence = manifest.get("sequence") if isinstance(manifest.get("sequence"), int) else None
            report.exported_at = manifest.get("exported_at")
            report.rows = manifest.get("total_rows")
            if previous is not None and previous.get("manifest_sha256") == manifest_sha:
                report.status = "unchanged"
            else:
                snap = read_snapshot(path, expect_device=device)
                if snap.manifest_sha256 != manifest_sha:
                    raise SnapshotUnusable(f"{MANIFEST} changed while it was read; retrying next round")
                scan.snapshots.append((folder_key, snap))
                report.status = "accepted"
                top = snap.state.max_version()
                ahead = int(top[:13]) - int(time.time() * 1000) if top else 0
                if ahead > MAX_SKEW_MS:
                    scan.warnings.append(f"device {device[:8]}'s newest version is {ahead / 3_600_000:.0f} h ahead "
                                         "of this device's clock: its edits win every merge until then "
                                         "(check that device's date and time)")
                if previous is not None and isinstance(previous.get("sequence"), int) and \
                        report.sequence is not None and report.sequence < previous["sequence"]:
                    report.went_backwards = True
                    report.message = (f"went backwards in time (sequence {report.sequence} < {previous['sequence']} "
                                      "accepted before); merged anyway: older state cannot undo newer state")
        except (SnapshotUnusable, OSError) as exc:
            _skip(report, str(exc), previous)
        scan.reports.append(report)
        _scan_device_extras(path, device, scan, where)
    return scan


# --------------------------------------------------------------------------- sync


def sync_shrink_problems(diff: dict[str, TableDiff], *, max_loss: float, registry: Registry) -> list[str]:
    """The restore pipeline's shrink guard, applied only when at least SHRINK_MIN_ROWS domain rows go."""
    domain = {s.name for s in registry.domain_tables}
    lost = sum(max(0, d.before - d.after) for t, d in diff.items() if t in domain)
    if lost < SHRINK_MIN_ROWS:
        return []
    return shrink_problems(diff, max_loss=max_loss, registry=registry)


def _connect_live(path: Path) -> Any:
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = OFF")  # the view encodes the FK rule; checked before COMMIT
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _live_generation(conn: Any) -> int | None:
    row = conn.execute('SELECT value FROM "_bakestore_meta" WHERE key = ?', [GENERATION_KEY]).fetchone()
    try:
        return int(row[0]) if row else None
    except ValueError:
        return None


def sync(store: "Store", folder: str | os.PathLike[str], *, dry_run: bool = False, allow_shrink: bool = False,
         max_loss: float = DEFAULT_MAX_LOSS, check_rules: bool = True) -> SyncReport:
    """One sync round with the devices in ``folder``; see the module docstring for the rules.

    Steps: refuse a folder holding a live database; read every other device's snapshot (verified
    against its manifest, else skipped this round); inside one ``BEGIN IMMEDIATE`` transaction on
    the live DB capture local changes, merge, build the view, run the shrink guard, take a restore
    point, apply, ``foreign_key_check``, COMMIT; audit; then write our own device folder.
    ``dry_run`` reports what would change and writes nothing anywhere; with it, ``check_rules=False``
    (what ``--status`` uses) skips checking arriving rows against the CHECK rules. A sync that
    applies always checks them.
    """
    folder = Path(folder)
    registry = store.registry
    me = store.device_id
    devices_dir = check_folder(store.path, folder)
    folder_key = str(folder.resolve())
    report = SyncReport(str(folder), me, dry_run)
    started = time.monotonic()
    record = audit.AuditRecord(operation="sync", db_path=str(store.path), source=f"sync folder {folder}")
    with store_lock(store.path):
        state_db = StateDB(store.path, create=not dry_run)
        conn: Any = None
        committed = False
        pending: Path | None = None
        try:
            accepted = state_db.accepted(folder_key)
            try:
                scan = _scan(devices_dir, me, folder_key, accepted)
            except SyncError as exc:
                record.outcome, record.reason = "refused", str(exc)
                if not dry_run:
                    _audit(store, record, started)
                raise
            # The state DB is ours alone while the operation lock is held: read before the live
            # transaction, so checking what arrived does not hold off the store's writers.
            raw = state_db.load_state()
            arrived = _check_arrivals(scan, raw, accepted, check=check_rules or not dry_run)
            if not (check_rules or not dry_run) and (scan.snapshots or scan.loose):
                report.messages.append("what arrived was not checked against the database's CHECK rules (a sync "
                                       "or --dry-run does, and skips a device with a row that breaks one)")
            report.devices = [scan.own_report or DeviceReport(me, f"devices/{me}", "own", "not written yet")]
            report.devices += scan.reports
            report.debris = scan.debris
            report.messages.extend(scan.warnings)
            conn = _connect_live(store.path)
            # A dry run (and --status) only reads: a read transaction gives the same consistent
            # snapshot without holding off the store's writers while it merges.
            conn.execute("BEGIN" if dry_run else "BEGIN IMMEDIATE")
            live_generation = _live_generation(conn)
            if not dry_run:
                _settle_pending_restore_points(store.path, live_generation)
            generation = state_db.generation
            inputs = [arrived]  # every snapshot and conflict copy accepted this round, merged
            if live_generation is not None and live_generation == generation:
                baseline: Baseline | None = state_db.load_baseline()
                report.mode = "baseline"
            elif live_generation is None and generation > 0:
                baseline = state_db.load_baseline()  # the live DB was restored or replaced: capture it
                report.mode = "baseline"
                report.messages.append("the live database was restored or replaced since the last sync; "
                                       "its differences are treated as local changes")
            else:
                baseline = None
                report.mode = "first-sync" if generation == 0 and live_generation is None else "recovery"
                if report.mode == "recovery":
                    report.messages.append(f"sync state generation {generation} ≠ live generation "
                                           f"{live_generation}: the last round's bookkeeping was lost; "
                                           "capturing without a baseline (nothing is deleted by guess)")
                if scan.own is not None:
                    try:
                        own = read_snapshot(scan.own, expect_device=me)
                        if check_rules or not dry_run:
                            check_new_entries(own.state, raw, label=f"device {me[:8]}", locate=snapshot_locate(own),
                                              also_known=arrived)
                        inputs.append(own.state)
                    except (SnapshotUnusable, ValidationError, OSError) as exc:
                        report.messages.append(f"own device folder not readable for recovery: {exc}")
            known = merge_states(raw, *inputs)
            live = read_live(conn, registry)
            for source in (known, live):
                top = source.max_version()
                if top:
                    store.clock.observe(top)
            now = store.now()
            local = capture(live, baseline, known, mint=store.clock.now, now=now, registry=registry,
                            overrides=state_db.load_overrides())
            report.captured = local.as_dict()
            if baseline is not None and local.minted_tombstones:
                lost: dict[str, int] = {}
                for table, _ in local.minted_tombstones:
                    lost[table] = lost.get(table, 0) + 1
                out_diff = {t: TableDiff(len(rows), len(rows) - lost.get(t, 0), removed=lost.get(t, 0))
                            for t, rows in baseline.items()}
                problems = sync_shrink_problems(out_diff, max_loss=max_loss, registry=registry)
                if problems:
                    text = ("rows vanished from the live database without tombstones: publishing that as deletes "
                            + "; and ".join(problems))
                    report.shrink.append(text)
                    if not allow_shrink:
                        raise ShrinkRefusedError(f"refusing to sync: {text} (was the database replaced or "
                                                 "emptied? pass --allow-shrink if the deletes are intended)")
            merged = merge_states(known, local.state)
            view = materialize(merged, registry)
            report.resolutions = view.resolutions
            report.diff = _diff(live, view, registry)
            problems = sync_shrink_problems(report.diff, max_loss=max_loss, registry=registry)
            if problems:
                text = "merging would " + "; and ".join(p.removeprefix("would ") for p in problems)
                report.shrink.append(text)
                if not allow_shrink:
                    raise ShrinkRefusedError(f"refusing to sync from {folder}: {text} (a device that lost its data "
                                             "must not wipe the others; pass --allow-shrink if this is intended)")
            top = merged.max_version()
            if top:
                store.clock.observe(top)
            record.counts_before = {t: d.before for t, d in report.diff.items()}
            record.counts_after = {t: d.after for t, d in report.diff.items()}
            record.details = {"mode": report.mode, "captured": report.captured,
                              "devices": {d.device_id: d.status for d in report.devices},
                              "resolutions": len(report.resolutions), "changed_rows": report.changed_rows}
            if dry_run:
                conn.execute("ROLLBACK")
                return report
            live_changes = report.changed_rows > 0
            new_generation = None
            if live_changes:
                # Audit first: if the log cannot be written, refuse before anything changes.
                try:
                    _audit(store, record, started)
                except (OSError, sqlite3.Error) as exc:
                    raise SyncError(f"{audit.audit_path_for(store.path)}: the audit log cannot be written "
                                    f"({exc}); sync refused, nothing was changed") from None
                _apply(conn, live, view, registry)
                violation = conn.execute("PRAGMA foreign_key_check").fetchone()
                if violation is not None:
                    raise SyncError(f"sync refused: after merging, {violation[0]} rowid {violation[1]} references a "
                                    f"missing {violation[2]} row (a bug in the FK rule); nothing was changed")
                new_generation = max(generation, live_generation or 0) + 1
                # Only once the apply has succeeded, so a refused sync leaves no restore point behind
                # (retries would crowd the real ones out of retention). Taken before COMMIT (our
                # write transaction holds off every writer, and the restore point's connection sees
                # the last committed content, not this transaction's rows: WAL), but under a hidden
                # name, published only after the COMMIT: a sync killed in between leaves none that
                # `undo` or retention could see, and the next sync removes it (or publishes it, if
                # the kill came after the COMMIT).
                pending = _take_pending_restore_point(store.path, new_generation)
                conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)',
                             [GENERATION_KEY, str(new_generation)])
                conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)',
                             ["hlc", store.clock.high_water])
                _fault("sync-before-live-commit")
                conn.execute("COMMIT")
                committed = True
                _fault("sync-after-live-commit")
                try:
                    report.restore_point = _publish_restore_point(store.path, pending)
                    record.restore_point = str(report.restore_point)
                    pending = None
                except OSError as exc:  # committed: the next sync publishes it
                    log.warning("%s: could not name the restore point of this sync (%s); the next sync "
                                "does", pending, exc)
            else:
                conn.execute("ROLLBACK")
                if live_generation != generation or baseline is None:
                    # Bring the live DB and the state DB to the same generation without a data change.
                    new_generation = max(generation, live_generation or 0) + 1
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute('INSERT OR REPLACE INTO "_bakestore_meta"(key, value) VALUES (?, ?)',
                                 [GENERATION_KEY, str(new_generation)])
                    conn.execute("COMMIT")
            # The live DB now equals the view (changed or not), so the view is the new baseline.
            state_db.save(old=raw, new=merged, baseline=baseline, view=view, devices=scan.snapshots,
                          generation=new_generation)
            if live_changes:
                record.outcome = "done"
                report.audit_id = _audit(store, record, started)
                prune_restore_points(store.path)
            own_dir = devices_dir / me
            sequence = int(state_db.meta("sequence") or 0) + 1
            try:
                written = write_snapshot(own_dir, merged, device_id=me, sequence=sequence, registry=registry)
            except OSError as exc:
                raise SyncError(f"{own_dir}: could not write this device's folder ({exc.strerror or exc}); the "
                                "live database is merged and consistent, the next sync writes the folder") from None
            if written is not None:
                state_db.set_meta("sequence", str(written))
                report.exported_sequence = written
            log.info("sync %s: %d row change(s) applied, %d device(s) accepted, %d skipped, %d resolution(s)%s",
                     folder, report.changed_rows, sum(d.status == "accepted" for d in report.devices),
                     sum(d.status == "skipped" for d in report.devices), len(report.resolutions),
                     f", own folder sequence {written}" if written is not None else "")
            return report
        except BaseException as exc:
            if conn is not None and conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # the original error is the one to raise; closing rolls back anyway
                    log.exception("ROLLBACK after a failed sync failed")
            if pending is not None and not committed:
                # Nothing changed: a restore point of this round would only mislead `undo`.
                _discard_restore_point(pending)
            if not dry_run and record.outcome == "started":
                refused = isinstance(exc, (ShrinkRefusedError, SyncError))
                record.outcome = "refused" if refused else "failed"
                record.reason = str(exc) if refused else f"{type(exc).__name__}: {exc}"
                try:
                    _audit(store, record, started)
                except Exception:  # noqa: BLE001 - the original error matters more; this one is logged
                    log.exception("could not write the audit record for a %s sync", record.outcome)
            raise
        finally:
            if conn is not None:
                conn.close()
            state_db.close()


# --------------------------------------------------------------------------- the sync's restore point

#: A restore point taken by a sync that has not committed yet: hidden (a dot name, which
#: ``list_restore_points`` never lists, so neither ``undo`` nor retention sees it), named with the
#: generation the sync will commit.
_PENDING_POINT = re.compile(r"^\.sync-pending-g(\d+)-[0-9a-f]{8}\.db$")


def _take_pending_restore_point(db_path: Path, generation: int) -> Path:
    """A verified copy of the live database's last committed content under a hidden name
    (VACUUM INTO from another connection, fsync, quick_check and sidecar, as
    ``make_restore_point``): published by :func:`_publish_restore_point` only once the sync has
    committed, so a sync killed before its COMMIT leaves no restore point anyone can see."""
    folder = restore_point_dir(db_path)
    folder.mkdir(exist_ok=True)
    pending = folder / f".sync-pending-g{generation}-{uuid.uuid4().hex[:8]}.db"
    conn = sqlite3.connect(str(db_path), timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("VACUUM INTO ?", [str(pending)])
        with open(pending, "rb+") as handle:
            os.fsync(handle.fileno())
        fsync_dir(folder)
    except (sqlite3.DatabaseError, OSError) as exc:
        _remove_db_files(pending)
        raise RestoreError(f"{db_path}: could not take a restore point: {exc}; nothing was changed") from None
    finally:
        conn.close()
    problem = _check_restore_point(pending)
    if problem is not None:
        _discard_restore_point(pending)
        raise RestoreError(f"{pending}: the new restore point failed its check: {problem}; nothing was changed")
    return pending


def _publish_restore_point(db_path: Path, pending: Path) -> Path:
    """After the sync's COMMIT: give the pending restore point its listed, time-sorted name."""
    checked = _read_sidecar(pending)  # the rename changes the ctime its identity records
    final = pending.with_name(_next_point_name(db_path, "sync"))
    os.rename(pending, final)
    fsync_dir(final.parent)
    if checked is not None:
        _write_sidecar(final, checked.get("sha256"), checked.get("checked"), checked.get("chunk_crc32"))
    with contextlib.suppress(FileNotFoundError):
        _sidecar(pending).unlink()
    return final


def _settle_pending_restore_points(db_path: Path, live_generation: int | None) -> Path | None:
    """Restore points a killed sync left pending: published if that sync committed (the live
    database holds its generation), removed otherwise. Returns the one published, if any."""
    folder = restore_point_dir(db_path)
    published = None
    if not folder.is_dir():
        return None
    for path in sorted(folder.iterdir()):
        match = _PENDING_POINT.match(path.name)
        if match is None or not path.is_file() or path.is_symlink():
            continue
        try:
            if live_generation is not None and int(match[1]) == live_generation:
                published = _publish_restore_point(db_path, path)
                log.warning("published %s: the restore point of a sync that committed but was interrupted "
                            "before naming it", published.name)
            else:
                _discard_restore_point(path)
                log.warning("removed %s: the restore point of a sync that was interrupted before it "
                            "committed", path.name)
        except OSError as exc:
            log.warning("%s: could not settle a pending restore point: %s", path, exc)
    return published


def _discard_restore_point(point: Path) -> None:
    for path in (point, point.with_name(point.name + ".json")):  # the file and its check record
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: could not remove the restore point of a sync that changed nothing: %s", path, exc)


def _audit(store: "Store", record: audit.AuditRecord, started: float) -> str:
    record.duration_ms = int((time.monotonic() - started) * 1000)
    return audit.write(store.path, record)


def sync_status(store: "Store", folder: str | os.PathLike[str]) -> SyncReport:
    """Devices seen, their last export, and what a sync would change (a dry run that also reports,
    instead of raising, what the shrink guard would refuse)."""
    report = sync(store, folder, dry_run=True, allow_shrink=True, check_rules=False)
    if report.shrink:
        report.messages.append("a real sync would be refused by the shrink guard without --allow-shrink")
    return report


def iter_device_dirs(folder: str | os.PathLike[str]) -> Iterable[Path]:
    """Device folders under ``folder`` (for tools and tests)."""
    devices_dir = Path(folder) / ROOT_NAME / DEVICES_DIR
    if devices_dir.is_dir():
        yield from sorted(p for p in devices_dir.iterdir() if p.is_dir() and DEVICE_ID_RE.match(p.name))


__all__ = [
    "Capture", "DeviceReport", "Resolution", "Snapshot", "State", "StateDB", "SyncReport", "View", "capture",
    "check_folder", "classify", "materialize", "merge_states", "read_snapshot", "render", "state_path_for",
    "sync", "sync_status", "write_snapshot",
]
