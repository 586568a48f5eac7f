"""``bakestore demo``: build the deterministic demo database at the group's ``--db`` path."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..demo import build_demo, estimate_rows, scale_for_rows
from .common import json_option


@click.command()
@click.option("--scale", type=click.IntRange(min=1), default=None,
              help="Size multiplier: 1 (default) is ~5,300 rows; each step adds ~5,260.")
@click.option("--rows", type=click.IntRange(min=1), default=None,
              help="Aim for about this many rows in total instead of giving --scale.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed and scale, same data.")
@json_option
@click.pass_obj
def demo(obj: Any, scale: int | None, rows: int | None, seed: int, as_json: bool) -> None:
    """Build a realistic demo database (every table filled) at --db; never overwrites a file."""
    if scale is not None and rows is not None:
        raise click.UsageError("give --scale or --rows, not both")
    if scale is None:
        scale = scale_for_rows(rows) if rows is not None else 1
    path = obj.db_path
    started = time.perf_counter()
    counts = build_demo(path, scale=scale, seed=seed)
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    filled = sum(1 for n in counts.values() if n)
    if as_json:
        click.echo(json.dumps({"path": str(path), "scale": scale, "seed": seed, "total_rows": total,
                               "counts": counts, "seconds": round(seconds, 3)}, indent=2))
        return
    click.echo(f"{path}: demo built (scale {scale}, seed {seed}): {total:,} rows in {filled} tables "
               f"in {seconds:.1f} s (estimate was {estimate_rows(scale):,})")


commands = [demo]
