"""Food purchasing and FIFO inventory: purchases, lots, depletions and the older count snapshots."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Date, FK, Money, Real, Row, TableMeta, Timestamp, UUID

DepletionReason = Literal["production", "assembly", "spoilage", "gift", "correction", "ad_hoc_usage", "other"]


class Purchase(Row):
    """One purchase: ``quantity_purchased`` packages of a product at ``unit_price`` each. Immutable."""

    table_meta = TableMeta(
        name="purchases", group="inventory",
        description="Food purchases: packages of one product bought from one supplier on one date (immutable).",
        indexes=(("product_id", "purchase_date"),),
    )

    product_id: Annotated[UUID, FK("products", "RESTRICT")]
    supplier_id: Annotated[UUID, FK("suppliers", "RESTRICT")]
    purchase_date: Date
    unit_price: Money = Field(ge=0)
    quantity_purchased: int = Field(gt=0)
    notes: str | None = None


class InventoryItem(Row):
    """A FIFO lot of a product, counted in the product's package units; consumed oldest first."""

    table_meta = TableMeta(
        name="inventory_items", group="inventory",
        description="FIFO food inventory lots: quantity on hand in package units and cost per unit.",
    )

    product_id: Annotated[UUID, FK("products", "CASCADE")]
    purchase_id: Annotated[UUID, FK("purchases", "RESTRICT")] | None = None
    quantity: Real = 0.0
    unit_cost: Money | None = None
    purchase_date: Date | None = None
    expiration_date: Date | None = None
    opened_date: Date | None = None
    location: Annotated[str, MaxLen(100)] | None = None
    lot_or_batch: Annotated[str, MaxLen(100)] | None = None
    notes: str | None = None
    last_updated: Timestamp


class InventoryDepletion(Row):
    """An audit record of one decrement of a food lot, with reason, quantity and cost."""

    table_meta = TableMeta(
        name="inventory_depletions", group="inventory",
        description="Audit trail of food lot decrements with reason, quantity and cost.",
    )

    inventory_item_id: Annotated[UUID, FK("inventory_items", "CASCADE")]
    quantity_depleted: Real = Field(gt=0)
    depletion_reason: DepletionReason
    depletion_date: Timestamp
    notes: str | None = None
    cost: Money
    created_by: Annotated[str, MaxLen(100)] | None = None


class InventorySnapshot(Row):
    """A named point-in-time count of ingredients (older feature)."""

    table_meta = TableMeta(
        name="inventory_snapshots", group="inventory",
        description="Named point-in-time ingredient counts (older feature).",
    )

    name: Annotated[str, MaxLen(200)]
    snapshot_date: Timestamp
    description: str | None = None


class SnapshotIngredient(Row):
    """One ingredient count in an inventory snapshot, with name copies of it and its parents."""

    table_meta = TableMeta(
        name="snapshot_ingredients", group="inventory",
        description="Ingredient counts of an inventory snapshot, with copies of the ingredient and parent names.",
    )

    snapshot_id: Annotated[UUID, FK("inventory_snapshots", "CASCADE")]
    ingredient_id: Annotated[UUID, FK("ingredients", "SET NULL")] | None = None
    quantity: Real = 0.0
    ingredient_name_snapshot: Annotated[str, MaxLen(200)] | None = None
    parent_l1_name_snapshot: Annotated[str, MaxLen(200)] | None = None
    parent_l0_name_snapshot: Annotated[str, MaxLen(200)] | None = None
