"""Robustness: truncated and deliberately corrupted files never crash the analysis.

Every damaged page must surface as an error entry that names the page, and the rest of the file
is still analysed (live rows on undamaged pages are still read).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakestore.forensics import analyze
from bakestore.forensics.analysis import carve_all, parse_database
from bakestore.forensics.carve import deduplicate
from bakestore.forensics.fileformat import MAGIC, SQLITE_MASTER
from tests.forensics_corpus import build_rollback, build_wal


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    return {"rollback": build_rollback(root / "r", secure_delete=False, n_recipes=150, n_big=4).path,
            "wal": build_wal(root / "w", secure_delete=False, n_recipes=120, n_big=2).path}


def _mutate(data: bytes, rng: random.Random, page_size: int = 4096) -> bytes:
    buf = bytearray(data)
    kind = rng.choice(["flip", "flip", "zero_page", "junk_page", "header", "truncate", "swap"])
    if len(buf) < 2 * page_size:
        kind = "flip" if buf else "none"
    if kind == "none":
        pass
    elif kind == "flip":
        for _ in range(rng.randint(1, 40)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "zero_page":
        pg = rng.randrange(len(buf) // page_size)
        buf[pg * page_size:(pg + 1) * page_size] = bytes(page_size)
    elif kind == "junk_page":
        pg = rng.randrange(len(buf) // page_size)
        buf[pg * page_size:(pg + 1) * page_size] = rng.randbytes(page_size)
    elif kind == "header":
        for _ in range(rng.randint(1, 6)):
            buf[rng.randrange(100)] = rng.randrange(256)
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)):]
    else:
        n = len(buf) // page_size
        a, b = rng.randrange(n), rng.randrange(n)
        pa, pb = bytes(buf[a * page_size:(a + 1) * page_size]), bytes(buf[b * page_size:(b + 1) * page_size])
        buf[a * page_size:(a + 1) * page_size], buf[b * page_size:(b + 1) * page_size] = pb, pa
    return bytes(buf)


@pytest.mark.parametrize("seed", range(24))
def test_corrupted_files_never_crash(samples: dict[str, Path], tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    name = "wal" if seed % 3 == 0 else "rollback"
    src = samples[name]
    work = tmp_path / "in"
    work.mkdir()
    for suffix in ("", "-wal", "-shm"):
        p = src.with_name(src.name + suffix)
        if p.exists():
            shutil.copyfile(p, work / p.name)
    target = work / src.name
    if name == "wal" and seed % 2:
        wal = target.with_name(target.name + "-wal")
        wal.write_bytes(_mutate(wal.read_bytes(), rng))
    else:
        target.write_bytes(_mutate(target.read_bytes(), rng))
    report = analyze(target, tmp_path / "case", integrity="quick")
    doc = report.to_dict()
    assert (tmp_path / "case" / "report.json").exists() and (tmp_path / "case" / "case.db").exists()
    for err in doc["errors"]:
        assert err["error"] and isinstance(err["error"], str)
        if err.get("page"):
            assert str(err["page"]) in err["error"] or err.get("owner")
    for item in doc["recovered"]:
        assert 0 < item["confidence"] <= 1


def test_damaged_page_is_reported_and_the_rest_still_read(samples: dict[str, Path], tmp_path: Path) -> None:
    src = samples["rollback"]
    data = bytearray(src.read_bytes())
    clean = parse_database(bytes(data))
    leaf = next(pg for pg, kind in sorted(clean.page_kind.items())
                if kind == "table_leaf" and clean.page_owner[pg] == "recipes")
    data[(leaf - 1) * 4096] = 0x42  # not a page type
    broken = parse_database(bytes(data))
    errs = [e for e in broken.errors if e["page"] == leaf]
    assert errs and "0x42 is not a b-tree page type" in errs[0]["error"]
    lost = len(clean.tables["recipes"].rows) - len(broken.tables["recipes"].rows)
    assert 0 < lost < len(clean.tables["recipes"].rows) // 2
    path = tmp_path / "damaged.db"
    path.write_bytes(bytes(data))
    report = analyze(path, tmp_path / "case", integrity="full")
    assert report.integrity["ok"] is False
    kinds = {f["kind"] for f in report.findings}
    assert {"integrity", "page_errors"} <= kinds


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    for i, content in enumerate([b"", b"x", MAGIC, MAGIC + bytes(84), MAGIC + b"\x10\x00" + bytes(5000)]):
        p = tmp_path / f"tiny{i}.db"
        p.write_bytes(content)
        report = analyze(p, tmp_path / f"case{i}", integrity="quick")
        assert report.header["problems"] or report.pages["page_count"] >= 0


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=9000), st.sampled_from([512, 1024, 4096]))
def test_parser_on_random_bytes(blob: bytes, page_size: int) -> None:
    head = bytearray(MAGIC + bytes(84))
    head[16:18] = (page_size).to_bytes(2, "big")
    head[21:24] = b"\x40\x20\x20"
    head[56:60] = (1).to_bytes(4, "big")
    data = bytes(head) + blob
    db = parse_database(data, blob[:3000], b"", b"")
    items, _ = carve_all(db, [SQLITE_MASTER, *[t.schema for t in db.tables.values()]])
    deduplicate(items)
