"""Non-food materials (ribbons, boxes, bags): hierarchy, products, units, purchases, lots, consumption."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Bool, Date, FK, Money, Real, Row, TableMeta, UUID

BaseUnitType = Literal["each", "linear_cm", "square_cm"]


class MaterialCategory(Row):
    """The top level of the material hierarchy."""

    table_meta = TableMeta(
        name="material_categories", group="materials", natural_key=("slug",),
        description="Top level of the material hierarchy (category > subcategory > material > product).",
        uniques=(("name",), ("slug",)),
    )

    name: Annotated[str, MaxLen(100)]
    slug: Annotated[str, MaxLen(100)]
    description: str | None = None
    sort_order: int = 0


class MaterialSubcategory(Row):
    """The second level of the material hierarchy; names are unique within a category."""

    table_meta = TableMeta(
        name="material_subcategories", group="materials", natural_key=("slug",),
        description="Material subcategories; names are unique within their category.",
        uniques=(("slug",), ("category_id", "name")),
    )

    category_id: Annotated[UUID, FK("material_categories", "CASCADE")]
    name: Annotated[str, MaxLen(100)]
    slug: Annotated[str, MaxLen(100)]
    description: str | None = None
    sort_order: int = 0


class Material(Row):
    """A generic material, counted in one base unit type (each, linear cm or square cm)."""

    table_meta = TableMeta(
        name="materials", group="materials", natural_key=("slug",),
        description="Generic materials, each counted in one base unit type (each, linear_cm or square_cm).",
        uniques=(("slug",),),
    )

    subcategory_id: Annotated[UUID, FK("material_subcategories", "CASCADE")]
    name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(200)]
    description: str | None = None
    base_unit_type: BaseUnitType
    notes: str | None = None


class MaterialProduct(Row):
    """A purchasable package of a material; ``quantity_in_base_units`` base units per package."""

    table_meta = TableMeta(
        name="material_products", group="materials", natural_key=("slug",),
        description="Purchasable packages of materials, with the number of base units per package.",
        uniques=(("slug",),),
    )

    material_id: Annotated[UUID, FK("materials", "CASCADE")]
    supplier_id: Annotated[UUID, FK("suppliers", "SET NULL")] | None = None
    name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(200)] | None = None
    brand: Annotated[str, MaxLen(100)] | None = None
    sku: Annotated[str, MaxLen(100)] | None = None
    package_quantity: Real = Field(gt=0)
    package_unit: Annotated[str, MaxLen(20)]
    quantity_in_base_units: Real = Field(gt=0)
    is_hidden: Bool = False
    is_provisional: Bool = False
    notes: str | None = None


class MaterialUnit(Row):
    """A consumable portion of a material product, e.g. "30 cm bow" = 30 base units."""

    table_meta = TableMeta(
        name="material_units", group="materials", natural_key=("material_product_id", "slug"),
        description="Consumable portions of material products (e.g. a 30 cm bow = 30 base units); slugs are unique per product.",
        uniques=(("material_product_id", "slug"), ("material_product_id", "name")),
    )

    material_product_id: Annotated[UUID, FK("material_products", "CASCADE")]
    name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(200)]
    quantity_per_unit: Real = Field(gt=0)
    description: str | None = None


class MaterialPurchase(Row):
    """One purchase of material product packages; creates exactly one lot. Immutable."""

    table_meta = TableMeta(
        name="material_purchases", group="materials",
        description="Material purchases (immutable); each creates exactly one material inventory lot.",
    )

    product_id: Annotated[UUID, FK("material_products", "RESTRICT")]
    supplier_id: Annotated[UUID, FK("suppliers", "RESTRICT")]
    purchase_date: Date
    packages_purchased: int = Field(gt=0)
    package_price: Money = Field(ge=0)
    units_added: Real = Field(gt=0)
    unit_cost: Money = Field(ge=0)
    notes: str | None = None


class MaterialInventoryItem(Row):
    """A FIFO lot of a material product, counted in base units."""

    table_meta = TableMeta(
        name="material_inventory_items", group="materials",
        description="FIFO material inventory lots, counted in base units and consumed oldest first.",
    )

    material_product_id: Annotated[UUID, FK("material_products", "CASCADE")]
    material_purchase_id: Annotated[UUID, FK("material_purchases", "RESTRICT")]
    quantity_purchased: Real = Field(gt=0)
    quantity_remaining: Real = Field(ge=0)
    cost_per_unit: Money = Field(ge=0)
    purchase_date: Date
    location: Annotated[str, MaxLen(100)] | None = None
    notes: str | None = None


class MaterialConsumption(Row):
    """Material consumed by an assembly run, with name copies that survive deletes. Immutable."""

    table_meta = TableMeta(
        name="material_consumptions", group="materials",
        description="Immutable ledger of materials consumed by assembly runs, with name copies kept for history.",
    )

    assembly_run_id: Annotated[UUID, FK("assembly_runs", "CASCADE")]
    product_id: Annotated[UUID, FK("material_products", "SET NULL")] | None = None
    inventory_item_id: Annotated[UUID, FK("material_inventory_items", "RESTRICT")] | None = None
    quantity_consumed: Real = Field(gt=0)
    unit_cost: Money
    total_cost: Money = Field(ge=0)
    product_name: Annotated[str, MaxLen(200)]
    material_name: Annotated[str, MaxLen(200)]
    subcategory_name: Annotated[str, MaxLen(100)]
    category_name: Annotated[str, MaxLen(100)]
    supplier_name: Annotated[str, MaxLen(200)] | None = None
