"""Definition snapshots: immutable copies of recipes, finished units/goods and material units."""

from __future__ import annotations

from typing import Annotated

from .base import Bool, FK, Real, Row, TableMeta, Timestamp, UUID


class RecipeSnapshot(Row):
    """An immutable copy of a recipe and its ingredients, per production run or plan-time."""

    table_meta = TableMeta(
        name="recipe_snapshots", group="snapshots",
        description="Immutable copies of a recipe and its ingredients, taken at plan or production time.",
        uniques=(("production_run_id",),),
    )

    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    production_run_id: Annotated[UUID, FK("production_runs", "CASCADE")] | None = None
    scale_factor: Real = 1.0
    snapshot_date: Timestamp
    recipe_data: str
    ingredients_data: str
    is_backfilled: Bool = False


class FinishedUnitSnapshot(Row):
    """An immutable copy of a finished unit definition."""

    table_meta = TableMeta(
        name="finished_unit_snapshots", group="snapshots",
        description="Immutable copies of finished unit definitions, taken at plan or assembly time.",
    )

    finished_unit_id: Annotated[UUID, FK("finished_units", "RESTRICT")]
    planning_snapshot_id: Annotated[UUID, FK("planning_snapshots", "CASCADE")] | None = None
    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")] | None = None
    snapshot_date: Timestamp
    is_backfilled: Bool = False
    definition_data: str


class FinishedGoodSnapshot(Row):
    """An immutable copy of a finished good definition."""

    table_meta = TableMeta(
        name="finished_good_snapshots", group="snapshots",
        description="Immutable copies of finished good definitions, taken at plan or assembly time.",
    )

    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    planning_snapshot_id: Annotated[UUID, FK("planning_snapshots", "CASCADE")] | None = None
    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")] | None = None
    snapshot_date: Timestamp
    is_backfilled: Bool = False
    definition_data: str


class MaterialUnitSnapshot(Row):
    """An immutable copy of a material unit definition."""

    table_meta = TableMeta(
        name="material_unit_snapshots", group="snapshots",
        description="Immutable copies of material unit definitions, taken at plan or assembly time.",
    )

    material_unit_id: Annotated[UUID, FK("material_units", "RESTRICT")]
    planning_snapshot_id: Annotated[UUID, FK("planning_snapshots", "CASCADE")] | None = None
    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")] | None = None
    snapshot_date: Timestamp
    is_backfilled: Bool = False
    definition_data: str
