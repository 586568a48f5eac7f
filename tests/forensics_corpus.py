"""A corpus of SQLite files with known answers, for the forensics accuracy tests and benchmark.

Every row carries a unique marker ``MK<7 digits>Z`` in a text column; the builder records which
markers are live and which were deleted (or replaced by an UPDATE). Ground truth for recall is the
set of deleted markers whose bytes still exist in the evidence files (main file, WAL, journal):
only those can be recovered by anyone. Scenarios follow issue 5: secure_delete OFF and ON,
rollback and WAL, in-page deletes, whole tables emptied and re-seeded, dropped tables,
overflow-sized records, un-checkpointed WAL commits that deleted rows, a PERSIST journal.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from bakestore.sqlite import sqlite3

MARKER = re.compile(r"MK\d{7}Z")
BASE_TIME = datetime(2026, 2, 7, 22, 37, 25, tzinfo=timezone.utc)
WORDS = ("flour sugar butter eggs vanilla cocoa almond hazelnut yeast salt cream milk lemon orange "
         "cinnamon ginger nutmeg raisin pecan walnut honey maple rye spelt oat buttermilk").split()


@dataclass
class CorpusDB:
    """One generated database and its answer key."""

    name: str
    path: Path
    encoding: str = "utf-8"
    live: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def evidence_bytes(self) -> bytes:
        out = b""
        for suffix in ("", "-wal", "-journal"):
            p = self.path.with_name(self.path.name + suffix)
            if p.exists():
                out += p.read_bytes()
        return out

    def present_deleted(self) -> set[str]:
        """Deleted markers whose bytes still exist somewhere in the evidence files."""
        raw = self.evidence_bytes()
        enc = "utf-16-le" if self.encoding == "UTF-16le" else "utf-8"
        return {m for m in self.deleted if m.encode(enc) in raw}


class _Markers:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"MK{self.n:07d}Z"


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _ts(offset_s: float) -> str:
    return (BASE_TIME + timedelta(seconds=offset_s)).strftime("%Y-%m-%d %H:%M:%S")


def _connect(path: Path, *, secure_delete: bool, journal: str = "delete", encoding: str | None = None) -> Any:
    conn = sqlite3.connect(str(path), isolation_level=None)
    if encoding:
        conn.execute(f"PRAGMA encoding = '{encoding}'")
    # pysqlite3 defaults to OFF and Debian's stdlib build to ON: always say it explicitly.
    conn.execute(f"PRAGMA secure_delete = {'ON' if secure_delete else 'OFF'}")
    conn.execute(f"PRAGMA journal_mode = {journal}")
    return conn


def snapshot(src: Path, dst_dir: Path) -> Path:
    """Copy a database and its siblings byte for byte (the connection that wrote them stays open)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = src.with_name(src.name + suffix)
        if p.exists():
            shutil.copyfile(p, dst_dir / p.name)
    return dst_dir / src.name


SCHEMA = """
CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, notes TEXT, servings INTEGER,
                      category_id INTEGER REFERENCES recipe_categories(id), created_at TEXT NOT NULL);
CREATE TABLE recipe_categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE ingredients (id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT, density REAL, created_at TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, at INTEGER);
CREATE INDEX recipes_created ON recipes(created_at);
"""


class Builder:
    """Writes rows with markers and keeps the answer key in step with every statement."""

    def __init__(self, db: CorpusDB, conn: Any, rng: random.Random, marker: _Markers) -> None:
        self.db, self.conn, self.rng, self.marker = db, conn, rng, marker
        self.rows: dict[tuple[str, Any], str] = {}  # (table, id) -> marker

    def add(self, table: str, key: Any, marker: str) -> None:
        self.rows[(table, key)] = marker
        self.db.live.add(marker)

    def kill(self, table: str, key: Any) -> None:
        m = self.rows.pop((table, key))
        self.db.live.discard(m)
        self.db.deleted.add(m)

    def recipe(self, i: int, t: float, big: bool = False) -> None:
        m = self.marker()
        # Only big rows repeat the marker in notes (at the start, before the overflow boundary);
        # an UPDATE of the name must leave no copy of the old marker in the live row.
        notes = m + " " + _text(self.rng, 1200) if big else _text(self.rng, self.rng.randint(3, 40))
        self.conn.execute("INSERT INTO recipes VALUES (?, ?, ?, ?, ?, ?)",
                          (i, f"{m} {_text(self.rng, 3)}", notes, self.rng.randint(1, 24),
                           self.rng.randint(1, 7), _ts(t)))
        self.add("recipes", i, m)

    def category(self, i: int, t: float) -> None:
        m = self.marker()
        self.conn.execute("INSERT INTO recipe_categories VALUES (?, ?, ?)", (i, f"{m} {_text(self.rng, 1)}", _ts(t)))
        self.add("recipe_categories", i, m)

    def ingredient(self, i: int, t: float) -> None:
        m = self.marker()
        key = f"{i:08x}-7c1e-4d2a-9b3f-{self.rng.getrandbits(48):012x}"
        self.conn.execute("INSERT INTO ingredients VALUES (?, ?, ?, ?, ?)",
                          (key, f"{m} {_text(self.rng, 2)}", self.rng.choice(["g", "ml", "each"]),
                           round(self.rng.uniform(0.2, 1.8), 3), _ts(t)))
        self.add("ingredients", key, m)

    def event(self, t: float) -> None:
        m = self.marker()
        cur = self.conn.execute("INSERT INTO events(title, at) VALUES (?, ?)",
                                (f"{m} {_text(self.rng, 4)}", int((BASE_TIME.timestamp() + t))))
        self.add("events", cur.lastrowid, m)

    def keys(self, table: str) -> list[Any]:
        return [k for (t, k) in self.rows if t == table]

    def delete(self, table: str, keys: list[Any]) -> None:
        for k in keys:
            self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (k,))
            self.kill(table, k)

    def update_names(self, table: str, keys: list[Any]) -> None:
        """An UPDATE leaves the old version behind: its marker counts as deleted content."""
        for k in keys:
            m = self.marker()
            self.conn.execute(f"UPDATE {table} SET name = ? WHERE id = ?", (f"{m} renamed", k))
            self.kill(table, k)
            self.add(table, k, m)

    def wipe(self, table: str) -> None:
        self.conn.execute(f"DELETE FROM {table}")
        for k in self.keys(table):
            self.kill(table, k)

    def drop(self, table: str) -> None:
        self.conn.execute(f"DROP TABLE {table}")
        for k in self.keys(table):
            self.kill(table, k)


def _populate(b: Builder, n_recipes: int, n_big: int) -> None:
    b.conn.execute("BEGIN")
    for i in range(1, 8):
        b.category(i, 0)
    for i in range(1, n_recipes + 1):
        b.recipe(i, 180 + i, big=i <= n_big)
    for i in range(1, n_recipes // 2 + 1):
        b.ingredient(i, 180)
    for i in range(n_recipes // 3):
        b.event(200 + i * 60)
    b.conn.execute("COMMIT")


def _mutate(b: Builder, n_recipes: int, n_big: int) -> None:
    """The incident and friends: in-page deletes, updates, a wipe + re-seed a day later, a DROP."""
    rng = b.rng
    keys = [k for k in b.keys("recipes") if k > n_big]
    b.conn.execute("BEGIN")
    b.delete("recipes", rng.sample(keys, len(keys) // 3))
    b.delete("recipes", list(range(1, n_big // 2 + 1)))  # overflow-sized rows deleted inside pages
    b.conn.execute("COMMIT")
    b.conn.execute("BEGIN")
    b.update_names("recipes", rng.sample([k for k in b.keys("recipes") if k > n_big], 10))
    b.conn.execute("COMMIT")
    b.conn.execute("BEGIN")
    b.wipe("ingredients")
    b.wipe("recipe_categories")
    b.conn.execute("COMMIT")
    b.conn.execute("BEGIN")
    for i in range(1, 6):
        b.category(i, 86400 + 79000)  # re-seeded the next day
    b.conn.execute("COMMIT")
    b.drop("events")


def build_rollback(dest: Path, *, secure_delete: bool, seed: int = 1, n_recipes: int = 600,
                   n_big: int = 12, encoding: str | None = None, page_size: int | None = None,
                   auto_vacuum: str | None = None) -> CorpusDB:
    """Rollback-journal database with every kind of deletion, closed cleanly."""
    dest.mkdir(parents=True, exist_ok=True)
    db = CorpusDB(f"rollback_{'on' if secure_delete else 'off'}{'_' + encoding if encoding else ''}"
                  f"{'_' + str(page_size) if page_size else ''}{'_' + auto_vacuum if auto_vacuum else ''}",
                  dest / "corpus.db", encoding=encoding or "utf-8")
    conn = _connect(db.path, secure_delete=secure_delete, encoding=encoding)
    if page_size:
        conn.execute(f"PRAGMA page_size = {page_size}")
    if auto_vacuum:
        conn.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
    conn.executescript(SCHEMA)
    b = Builder(db, conn, random.Random(seed), _Markers())
    _populate(b, n_recipes, n_big)
    _mutate(b, n_recipes, n_big)
    conn.close()
    return db


def build_wal(dest: Path, *, secure_delete: bool, seed: int = 2, n_recipes: int = 500, n_big: int = 8) -> CorpusDB:
    """WAL database copied while its writer is still connected.

    Rows are checkpointed into the main file, then deleted by commits that stay in the WAL
    (un-checkpointed): the main file still holds them in pages the WAL has superseded.
    """
    work = dest / "live"
    work.mkdir(parents=True, exist_ok=True)
    db = CorpusDB(f"wal_{'on' if secure_delete else 'off'}", work / "corpus.db")
    conn = _connect(db.path, secure_delete=secure_delete, journal="wal")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.executescript(SCHEMA)
    b = Builder(db, conn, random.Random(seed), _Markers())
    _populate(b, n_recipes, n_big)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _mutate(b, n_recipes, n_big)
    # More commits after the mutation: rows inserted and deleted entirely inside the WAL.
    conn.execute("BEGIN")
    for i in range(n_recipes + 1, n_recipes + 41):
        b.recipe(i, 90000 + i)
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    b.delete("recipes", list(range(n_recipes + 1, n_recipes + 21)))
    conn.execute("COMMIT")
    path = snapshot(db.path, dest / "evidence")
    conn.close()
    db.path = path
    return db


def build_persist(dest: Path, *, secure_delete: bool = True, seed: int = 3, n_recipes: int = 300) -> CorpusDB:
    """PERSIST journal: the last transaction's pre-images stay in ``-journal`` after commit."""
    dest.mkdir(parents=True, exist_ok=True)
    db = CorpusDB("persist_on" if secure_delete else "persist_off", dest / "corpus.db")
    conn = _connect(db.path, secure_delete=secure_delete, journal="persist")
    conn.executescript(SCHEMA)
    b = Builder(db, conn, random.Random(seed), _Markers())
    _populate(b, n_recipes, 0)
    conn.execute("BEGIN")
    b.delete("recipes", b.rng.sample(b.keys("recipes"), 60))
    conn.execute("COMMIT")
    conn.close()
    return db


def build_churn(dest: Path, *, seed: int = 5, rounds: int = 40) -> CorpusDB:
    """Interleaved inserts, deletes and updates: freed space is reused, residue is fragmented.

    The hardest case for precision: pages are rebalanced (freed pages keep copies of live rows)
    and new cells overwrite parts of old ones.
    """
    dest.mkdir(parents=True, exist_ok=True)
    db = CorpusDB("churn", dest / "corpus.db")
    conn = _connect(db.path, secure_delete=False)
    conn.executescript(SCHEMA)
    b = Builder(db, conn, random.Random(seed), _Markers())
    rng = b.rng
    next_id = 1
    for r in range(rounds):
        conn.execute("BEGIN")
        for _ in range(rng.randint(10, 60)):
            b.recipe(next_id, 3600 * r + next_id, big=rng.random() < 0.03)
            next_id += 1
        keys = b.keys("recipes")
        if keys:
            b.delete("recipes", rng.sample(keys, min(len(keys), rng.randint(0, 25))))
        small = [k for k in b.keys("recipes") if k % 7]
        if small:
            b.update_names("recipes", rng.sample(small, min(len(small), rng.randint(0, 5))))
        for _ in range(rng.randint(0, 8)):
            b.ingredient(next_id, 3600 * r)
            next_id += 1
        ing = b.keys("ingredients")
        if ing and rng.random() < 0.5:
            b.delete("ingredients", rng.sample(ing, min(len(ing), rng.randint(1, 6))))
        conn.execute("COMMIT")
    conn.close()
    return db


INCIDENT_SCHEMA = """
CREATE TABLE units (id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE material_categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE materials (id INTEGER PRIMARY KEY, category_id INTEGER REFERENCES material_categories(id),
                        name TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE recipe_categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE ingredients (id INTEGER PRIMARY KEY, display_name TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, ingredient_id INTEGER NOT NULL REFERENCES ingredients(id),
                       brand TEXT, created_at DATETIME NOT NULL);
CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                      category_id INTEGER REFERENCES recipe_categories(id), created_at DATETIME NOT NULL);
CREATE TABLE recipe_ingredients (id INTEGER PRIMARY KEY, recipe_id INTEGER NOT NULL REFERENCES recipes(id),
                                 ingredient_id INTEGER NOT NULL REFERENCES ingredients(id), quantity REAL,
                                 note TEXT);
"""


def build_incident(dest: Path, *, seed: int = 4) -> CorpusDB:
    """The seed incident in miniature: a partial wipe, then recipe categories re-seeded a day later."""
    dest.mkdir(parents=True, exist_ok=True)
    db = CorpusDB("incident", dest / "bake_tracker.db")
    rng = random.Random(seed)
    mk = _Markers()
    conn = _connect(db.path, secure_delete=False)
    conn.executescript(INCIDENT_SCHEMA)
    conn.execute("BEGIN")
    t_units, t_restore = _ts(0), _ts(180)
    for i in range(1, 36):
        m = mk()
        conn.execute("INSERT INTO units VALUES (?, ?, ?, ?)", (i, f"u{i}", f"{m} unit", t_units))
        db.live.add(m)
    for i in range(1, 5):
        m = mk()
        conn.execute("INSERT INTO material_categories VALUES (?, ?, ?)", (i, f"{m} cat", t_restore))
        db.live.add(m)
    for i in range(1, 22):
        m = mk()
        conn.execute("INSERT INTO materials VALUES (?, ?, ?, ?)", (i, rng.randint(1, 4), f"{m} ribbon", t_restore))
        db.live.add(m)
    wiped: list[str] = []
    for i in range(1, 8):
        m = mk()
        conn.execute("INSERT INTO recipe_categories VALUES (?, ?, ?)", (i, f"{m} {_text(rng, 1)}", t_restore))
        wiped.append(m)
    for i in range(1, 414):
        m = mk()
        conn.execute("INSERT INTO ingredients VALUES (?, ?, ?)", (i, f"{m} {_text(rng, 2)}", t_restore))
        wiped.append(m)
    for i in range(1, 157):
        m = mk()
        conn.execute("INSERT INTO products VALUES (?, ?, ?, ?)", (i, rng.randint(1, 413), f"{m} brand", t_restore))
        wiped.append(m)
    for i in range(1, 22):
        m = mk()
        conn.execute("INSERT INTO recipes VALUES (?, ?, ?, ?)", (i, f"{m} {_text(rng, 3)}", rng.randint(1, 7), t_restore))
        wiped.append(m)
    for i in range(1, 120):
        m = mk()
        conn.execute("INSERT INTO recipe_ingredients VALUES (?, ?, ?, ?, ?)",
                     (i, rng.randint(1, 21), rng.randint(1, 413), round(rng.uniform(1, 500), 1), m))
        wiped.append(m)
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    for table in ("recipe_ingredients", "recipes", "recipe_categories", "products", "ingredients"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("COMMIT")
    db.deleted.update(wiped)
    conn.execute("BEGIN")
    for i, name in enumerate(["Cakes", "Cookies", "Breads", "Pies", "Candies", "Bars", "Other"], 1):
        m = mk()
        conn.execute("INSERT INTO recipe_categories VALUES (?, ?, ?)", (i, f"{m} {name}", _ts(78247)))
        db.live.add(m)
    conn.execute("COMMIT")
    conn.close()
    return db


SCENARIOS: dict[str, Callable[[Path], CorpusDB]] = {
    "rollback_off": lambda d: build_rollback(d, secure_delete=False),
    "rollback_on": lambda d: build_rollback(d, secure_delete=True),
    "rollback_off_utf16": lambda d: build_rollback(d, secure_delete=False, encoding="UTF-16le", n_recipes=200),
    "rollback_off_seed7_1k": lambda d: build_rollback(d, secure_delete=False, seed=7, page_size=1024),
    "rollback_off_64k_incremental": lambda d: build_rollback(d, secure_delete=False, seed=8, page_size=65536,
                                                             auto_vacuum="incremental"),
    "wal_off": lambda d: build_wal(d, secure_delete=False),
    "wal_on": lambda d: build_wal(d, secure_delete=True),
    "persist_on": lambda d: build_persist(d, secure_delete=True),
    "incident": build_incident,
    "churn": build_churn,
}


KNOWN_TABLES = {"recipes", "recipe_categories", "ingredients", "events", "units", "material_categories",
                "materials", "products", "recipe_ingredients"}


def score(db: CorpusDB, recovered: list[dict[str, Any]]) -> dict[str, Any]:
    """Recall, precision and live rows reported, from report.json's ``recovered`` items."""
    enc_present = db.present_deleted()
    found: set[str] = set()
    tp = fp = live_hits = 0
    for item in recovered:
        if item["table"] == "sqlite_sequence":
            if item["values"][0] not in KNOWN_TABLES or not isinstance(item["values"][1], int):
                fp += 1  # a sequence row must name a table of the corpus
            continue
        if item["table"] == "sqlite_master":
            if item["values"][0] not in ("table", "index", "view", "trigger"):
                fp += 1
            continue
        markers = {m for v in item["values"] if isinstance(v, str) for m in MARKER.findall(v)}
        if markers & db.deleted:
            tp += 1
            found |= markers & db.deleted
        else:
            fp += 1
        if markers & db.live and not markers & db.deleted:
            live_hits += 1
    recall = len(found & enc_present) / len(enc_present) if enc_present else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    return {"name": db.name, "deleted": len(db.deleted), "present": len(enc_present), "found": len(found & enc_present),
            "recovered_items": tp + fp, "tp": tp, "fp": fp, "live_reported": live_hits,
            "recall": round(recall, 4), "precision": round(precision, 4)}
