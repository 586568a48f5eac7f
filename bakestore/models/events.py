"""Events and planning: events, recipients, targets, selections, amendments and plan snapshots."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Bool, Date, FK, JSON, Row, TableMeta, Timestamp, UUID

PlanState = Literal["draft", "locked", "in_production", "completed"]
OutputMode = Literal["bulk_count", "bundled"]
PackageStatus = Literal["pending", "assembled", "delivered"]
FulfillmentStatus = Literal["pending", "ready", "delivered"]
AmendmentType = Literal["drop_fg", "add_fg", "modify_batch"]
SnapshotType = Literal["original", "current"]


class Event(Row):
    """A baking occasion such as "Christmas 2025"; ``name`` is not unique."""

    table_meta = TableMeta(
        name="events", group="events",
        description="Baking occasions (e.g. Christmas 2025) with their output mode and plan state.",
    )

    name: Annotated[str, MaxLen(200)]
    event_date: Date
    year: int
    notes: str | None = None
    output_mode: OutputMode | None = None
    expected_attendees: int | None = None
    plan_state: PlanState = "draft"


class Recipient(Row):
    """A person or household who receives packages; ``name`` is not unique."""

    table_meta = TableMeta(
        name="recipients", group="events",
        description="People or households who receive gift packages (names are not unique).",
    )

    name: Annotated[str, MaxLen(200)]
    household_name: Annotated[str, MaxLen(200)] | None = None
    address: str | None = None
    notes: str | None = None


class EventRecipientPackage(Row):
    """Who receives which package at which event, with assembly and fulfillment status."""

    table_meta = TableMeta(
        name="event_recipient_packages", group="events",
        description="Which recipient receives which package at which event, with status and fulfillment status.",
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    recipient_id: Annotated[UUID, FK("recipients", "RESTRICT")]
    package_id: Annotated[UUID, FK("packages", "RESTRICT")]
    quantity: int = 1
    notes: str | None = None
    status: PackageStatus = "pending"
    delivered_to: Annotated[str, MaxLen(500)] | None = None
    fulfillment_status: FulfillmentStatus = "pending"


class EventProductionTarget(Row):
    """The number of batches of a recipe planned for an event."""

    table_meta = TableMeta(
        name="event_production_targets", group="events",
        description="Batches of each recipe planned for an event, optionally pinned to a recipe snapshot.",
        uniques=(("event_id", "recipe_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    target_batches: int = Field(gt=0)
    notes: str | None = None
    recipe_snapshot_id: Annotated[UUID, FK("recipe_snapshots", "RESTRICT")] | None = None


class EventAssemblyTarget(Row):
    """The quantity of a finished good to assemble for an event."""

    table_meta = TableMeta(
        name="event_assembly_targets", group="events",
        description="Quantity of each finished good to assemble for an event, optionally pinned to a snapshot.",
        uniques=(("event_id", "finished_good_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    target_quantity: int = Field(gt=0)
    notes: str | None = None
    finished_good_snapshot_id: Annotated[UUID, FK("finished_good_snapshots", "RESTRICT")] | None = None


class EventRecipe(Row):
    """A recipe selected for an event's plan."""

    table_meta = TableMeta(
        name="event_recipes", group="events",
        description="Recipes selected for an event's plan.",
        uniques=(("event_id", "recipe_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]


class EventFinishedGood(Row):
    """A finished good selected for an event's plan, with how many."""

    table_meta = TableMeta(
        name="event_finished_goods", group="events",
        description="Finished goods selected for an event's plan and how many of each.",
        uniques=(("event_id", "finished_good_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    quantity: int = Field(gt=0)


class BatchDecision(Row):
    """The number of batches decided per finished unit for an event."""

    table_meta = TableMeta(
        name="batch_decisions", group="events",
        description="Number of batches decided per finished unit for an event.",
        uniques=(("event_id", "finished_unit_id"),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    finished_unit_id: Annotated[UUID, FK("finished_units", "CASCADE")]
    batches: int = Field(gt=0)


class PlanAmendment(Row):
    """A change made to an event plan after it was locked, recorded as JSON."""

    table_meta = TableMeta(
        name="plan_amendments", group="events",
        description="Changes made to an event plan after locking (drop/add finished good, modify batches), as JSON.",
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    amendment_type: AmendmentType
    amendment_data: JSON
    reason: str | None = None


class PlanSnapshot(Row):
    """The JSON snapshot of an event's plan taken when production starts (one per event)."""

    table_meta = TableMeta(
        name="plan_snapshots", group="events",
        description="One JSON snapshot of each event's plan, taken when production starts.",
        uniques=(("event_id",),),
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    snapshot_data: JSON


class PlanningSnapshot(Row):
    """A container of definition snapshots (original or current); survives event deletion."""

    table_meta = TableMeta(
        name="planning_snapshots", group="events",
        description="Containers of definition snapshots (original/current); kept with no event when the event is deleted.",
    )

    event_id: Annotated[UUID, FK("events", "SET NULL")] | None = None
    notes: str | None = None
    snapshot_type: SnapshotType | None = None
    snapshot_data: JSON | None = None


class ProductionPlanSnapshot(Row):
    """A calculated production plan: when, from which inputs, and whether shopping is done."""

    table_meta = TableMeta(
        name="production_plan_snapshots", group="events",
        description="Calculated production plans: calculation time, input hash and shopping-done flags.",
    )

    event_id: Annotated[UUID, FK("events", "CASCADE")]
    calculated_at: Timestamp
    input_hash: Annotated[str, MaxLen(64)] | None = None
    shopping_complete: Bool = False
    shopping_completed_at: Timestamp | None = None
