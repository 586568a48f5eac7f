"""Non-food materials (ribbons, boxes, bags): hierarchy, products, units, purchases, lots, consumption."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Bool, Date, Money, Real, Ref, Row, TableMeta, Text

BaseUnitType = Literal["each", "linear_cm", "square_cm"]


class MaterialCategory(Row):
    """The top level of the material hierarchy."""

    table_meta = TableMeta(
        name="material_categories", group="materials", natural_key=("slug",),
        description="Top level of the material hierarchy (category > subcategory > material > product).",
        uniques=(("name",), ("slug",)),
    )

    name: Text(100)
    slug: Text(100)
    description: str | None = None
    sort_order: int = 0


class MaterialSubcategory(Row):
    """The second level of the material hierarchy; names are unique within a category."""

    table_meta = TableMeta(
        name="material_subcategories", group="materials", natural_key=("slug",),
        description="Material subcategories; names are unique within their category.",
        uniques=(("slug",), ("category_id", "name")),
    )

    category_id: Ref("material_categories", "CASCADE")
    name: Text(100)
    slug: Text(100)
    description: str | None = None
    sort_order: int = 0


class Material(Row):
    """A generic material, counted in one base unit type (each, linear cm or square cm)."""

    table_meta = TableMeta(
        name="materials", group="materials", natural_key=("slug",),
        description="Generic materials, each counted in one base unit type (each, linear_cm or square_cm).",
        uniques=(("slug",),),
    )

    subcategory_id: Ref("material_subcategories", "CASCADE")
    name: Text(200)
    slug: Text(200)
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

    material_id: Ref("materials", "CASCADE")
    supplier_id: Ref("suppliers", "SET NULL") | None = None
    name: Text(200)
    slug: Text(200) | None = None
    brand: Text(100) | None = None
    sku: Text(100) | None = None
    package_quantity: Real = Field(gt=0)
    package_unit: Text(20)
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

    material_product_id: Ref("material_products", "CASCADE")
    name: Text(200)
    slug: Text(200)
    quantity_per_unit: Real = Field(gt=0)
    description: str | None = None


class MaterialPurchase(Row):
    """One purchase of material product packages; creates exactly one lot. Immutable."""

    table_meta = TableMeta(
        name="material_purchases", group="materials",
        description="Material purchases (immutable); each creates exactly one material inventory lot.",
    )

    product_id: Ref("material_products", "RESTRICT")
    supplier_id: Ref("suppliers", "RESTRICT")
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

    material_product_id: Ref("material_products", "CASCADE")
    material_purchase_id: Ref("material_purchases", "RESTRICT")
    quantity_purchased: Real = Field(gt=0)
    quantity_remaining: Real = Field(ge=0)
    cost_per_unit: Money = Field(ge=0)
    purchase_date: Date
    location: Text(100) | None = None
    notes: str | None = None


class MaterialConsumption(Row):
    """Material consumed by an assembly run, with name copies that survive deletes. Immutable."""

    table_meta = TableMeta(
        name="material_consumptions", group="materials",
        description="Immutable ledger of materials consumed by assembly runs, with name copies kept for history.",
    )

    assembly_run_id: Ref("assembly_runs", "CASCADE")
    product_id: Ref("material_products", "SET NULL") | None = None
    inventory_item_id: Ref("material_inventory_items", "RESTRICT") | None = None
    quantity_consumed: Real = Field(gt=0)
    unit_cost: Money
    total_cost: Money = Field(ge=0)
    product_name: Text(200)
    material_name: Text(200)
    subcategory_name: Text(100)
    category_name: Text(100)
    supplier_name: Text(200) | None = None
