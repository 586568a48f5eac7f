"""Production and assembly ledger: runs, consumptions, losses and finished-goods adjustments."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Bool, FK, Money, Real, Row, TableMeta, Timestamp, UUID

ProductionStatus = Literal["complete", "partial_loss", "total_loss"]
LossCategory = Literal["burnt", "broken", "contaminated", "dropped", "wrong_ingredients", "other"]
AdjustmentReason = Literal["production", "assembly", "consumption", "spoilage", "gift", "adjustment"]


class ProductionRun(Row):
    """One bake of a recipe: batches, expected vs actual yield, status, losses and costs."""

    table_meta = TableMeta(
        name="production_runs", group="production",
        description="Bakes of a recipe: batches, expected and actual yield, status, losses and ingredient cost.",
    )

    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    finished_unit_id: Annotated[UUID, FK("finished_units", "RESTRICT")]
    event_id: Annotated[UUID, FK("events", "RESTRICT")] | None = None
    recipe_snapshot_id: Annotated[UUID, FK("recipe_snapshots", "RESTRICT", cycle=True)] | None = None
    num_batches: int = Field(gt=0)
    expected_yield: int = Field(ge=0)
    actual_yield: int = Field(ge=0)
    produced_at: Timestamp
    notes: str | None = None
    production_status: ProductionStatus = "complete"
    loss_quantity: int = Field(default=0, ge=0)
    total_ingredient_cost: Money = Field(default=0.0, ge=0)
    per_unit_cost: Money = Field(default=0.0, ge=0)


class ProductionConsumption(Row):
    """An ingredient consumed by a production run; the ingredient is kept as slug text."""

    table_meta = TableMeta(
        name="production_consumptions", group="production",
        description="Ingredients consumed by production runs (ingredient kept as slug text), with cost.",
    )

    production_run_id: Annotated[UUID, FK("production_runs", "CASCADE")]
    ingredient_slug: Annotated[str, MaxLen(100)]
    quantity_consumed: Real = Field(gt=0)
    unit: Annotated[str, MaxLen(50)]
    total_cost: Money = Field(ge=0)


class ProductionLoss(Row):
    """A loss of finished units in production; kept with no run link when the run is deleted."""

    table_meta = TableMeta(
        name="production_losses", group="production",
        description="Production losses of finished units with category, quantity and cost.",
    )

    production_run_id: Annotated[UUID, FK("production_runs", "SET NULL")] | None = None
    finished_unit_id: Annotated[UUID, FK("finished_units", "RESTRICT")]
    loss_category: LossCategory = "other"
    loss_quantity: int = Field(gt=0)
    notes: str | None = None
    per_unit_cost: Money = Field(default=0.0, ge=0)
    total_loss_cost: Money = Field(default=0.0, ge=0)


class ProductionRecord(Row):
    """A legacy per-event production log entry."""

    table_meta = TableMeta(
        name="production_records", group="production",
        description="Legacy per-event production log: batches of a recipe and their actual cost.",
        indexes=(("event_id", "recipe_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    batches: int = Field(gt=0)
    actual_cost: Money = Field(default=0.0, ge=0)
    produced_at: Timestamp
    notes: str | None = None


class AssemblyRun(Row):
    """One assembly of a finished good, with cost totals."""

    table_meta = TableMeta(
        name="assembly_runs", group="production",
        description="Assemblies of finished goods with quantity and component cost totals.",
    )

    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    event_id: Annotated[UUID, FK("events", "RESTRICT")] | None = None
    finished_good_snapshot_id: Annotated[UUID, FK("finished_good_snapshots", "RESTRICT", cycle=True)] | None = None
    quantity_assembled: int = Field(gt=0)
    assembled_at: Timestamp
    notes: str | None = None
    total_component_cost: Money = Field(default=0.0, ge=0)
    per_unit_cost: Money = Field(default=0.0, ge=0)
    packaging_bypassed: Bool = False
    packaging_bypass_notes: str | None = None


class AssemblyFinishedUnitConsumption(Row):
    """Finished units consumed by an assembly run."""

    table_meta = TableMeta(
        name="assembly_finished_unit_consumptions", group="production",
        description="Finished units consumed by assembly runs, with cost at consumption.",
    )

    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")]
    finished_unit_id: Annotated[UUID, FK("finished_units", "RESTRICT")]
    quantity_consumed: int = Field(gt=0)
    unit_cost_at_consumption: Money = Field(ge=0)
    total_cost: Money = Field(ge=0)


class AssemblyFinishedGoodConsumption(Row):
    """Finished goods (nested bundles) consumed by an assembly run."""

    table_meta = TableMeta(
        name="assembly_finished_good_consumptions", group="production",
        description="Finished goods (nested bundles) consumed by assembly runs, with cost at consumption.",
    )

    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")]
    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    quantity_consumed: int = Field(gt=0)
    unit_cost_at_consumption: Money = Field(ge=0)
    total_cost: Money = Field(ge=0)


class AssemblyPackagingConsumption(Row):
    """Packaging products consumed by an assembly run."""

    table_meta = TableMeta(
        name="assembly_packaging_consumptions", group="production",
        description="Packaging products consumed by assembly runs, with quantity, unit and cost.",
    )

    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")]
    product_id: Annotated[UUID, FK("products", "RESTRICT")]
    quantity_consumed: Real = Field(gt=0)
    unit: Annotated[str, MaxLen(50)]
    total_cost: Money = Field(ge=0)


class FinishedGoodsAdjustment(Row):
    """A change to the stock count of exactly one finished unit or finished good."""

    table_meta = TableMeta(
        name="finished_goods_adjustments", group="production",
        description="Changes to the stock count of one finished unit or finished good, with counts before and after.",
        checks=(
            "new_count = previous_count + quantity_change",
            "(finished_unit_id IS NOT NULL) + (finished_good_id IS NOT NULL) = 1",
        ),
    )

    finished_unit_id: Annotated[UUID, FK("finished_units", "CASCADE")] | None = None
    finished_good_id: Annotated[UUID, FK("finished_goods", "CASCADE")] | None = None
    quantity_change: int
    previous_count: int
    new_count: int = Field(ge=0)
    reason: AdjustmentReason
    notes: str | None = None
    adjusted_at: Timestamp
