"""Ingredient catalog and suppliers."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import MaxLen
from pydantic import Field

from .base import Bool, FK, JSON, Real, Row, SqlGlob, TableMeta, UUID

HierarchyLevel = Literal[0, 1, 2]


class Ingredient(Row):
    """A generic ingredient in a 3-level tree (0 root, 1 mid-tier, 2 leaf)."""

    table_meta = TableMeta(
        name="ingredients", group="catalog", natural_key=("slug",),
        description="Generic ingredients in a three-level tree; only leaves (level 2) are bought and used in recipes.",
        uniques=(("display_name",), ("slug",)),
    )

    display_name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(200)] | None = None
    parent_ingredient_id: Annotated[UUID, FK("ingredients", "NO ACTION", cycle=True)] | None = None
    hierarchy_level: HierarchyLevel = 2
    category: Annotated[str, MaxLen(100)]
    description: str | None = None
    notes: str | None = None
    foodon_id: Annotated[str, MaxLen(50)] | None = None
    foodex2_code: Annotated[str, MaxLen(50)] | None = None
    langual_terms: JSON | None = None
    fdc_ids: JSON | None = None
    density_volume_value: Real | None = None
    density_volume_unit: Annotated[str, MaxLen(20)] | None = None
    density_weight_value: Real | None = None
    density_weight_unit: Annotated[str, MaxLen(20)] | None = None
    moisture_pct: Real | None = None
    allergens: JSON | None = None


class IngredientAlias(Row):
    """An alternative name of an ingredient."""

    table_meta = TableMeta(
        name="ingredient_aliases", group="catalog",
        description="Alternative names of ingredients, optionally per locale.",
    )

    ingredient_id: Annotated[UUID, FK("ingredients", "CASCADE")]
    alias: Annotated[str, MaxLen(200)]
    locale: Annotated[str, MaxLen(10)] | None = None


class IngredientCrosswalk(Row):
    """A mapping of an ingredient to an external code system."""

    table_meta = TableMeta(
        name="ingredient_crosswalks", group="catalog",
        description="External code mappings (system + code) of ingredients.",
        indexes=(("system", "code"),),
    )

    ingredient_id: Annotated[UUID, FK("ingredients", "CASCADE")]
    system: Annotated[str, MaxLen(50)]
    code: Annotated[str, MaxLen(100)]
    meta: JSON | None = None


class Product(Row):
    """A purchasable brand or package of a leaf ingredient."""

    table_meta = TableMeta(
        name="products", group="catalog", natural_key=("slug",),
        description="Purchasable brands/packages of leaf ingredients (package_unit_quantity x package_unit).",
        uniques=(("ingredient_id", "brand", "product_name", "package_size", "package_unit"),
                 ("slug",), ("gtin",)),
    )

    ingredient_id: Annotated[UUID, FK("ingredients", "CASCADE")]
    brand: Annotated[str, MaxLen(200)] | None = None
    product_name: Annotated[str, MaxLen(200)] | None = None
    package_size: Annotated[str, MaxLen(100)] | None = None
    package_type: Annotated[str, MaxLen(50)] | None = None
    package_unit: Annotated[str, MaxLen(50)]
    package_unit_quantity: Real
    upc_code: Annotated[str, MaxLen(20)] | None = None
    slug: Annotated[str, MaxLen(200)] | None = None
    supplier: Annotated[str, MaxLen(200)] | None = None
    supplier_sku: Annotated[str, MaxLen(100)] | None = None
    gtin: Annotated[str, MaxLen(20)] | None = None
    brand_owner: Annotated[str, MaxLen(200)] | None = None
    gpc_brick_code: Annotated[str, MaxLen(20)] | None = None
    net_content_value: Real | None = None
    net_content_uom: Annotated[str, MaxLen(20)] | None = None
    country_of_sale: Annotated[str, MaxLen(3)] | None = None
    off_id: Annotated[str, MaxLen(50)] | None = None
    preferred: Bool = False
    preferred_supplier_id: Annotated[UUID, FK("suppliers", "SET NULL")] | None = None
    is_hidden: Bool = False
    is_provisional: Bool = False
    notes: str | None = None


class ProductPackaging(Row):
    """A GS1 packaging level (each/inner/case/pallet) of a product."""

    table_meta = TableMeta(
        name="product_packaging", group="catalog",
        description="GS1 packaging levels of products.",
    )

    product_id: Annotated[UUID, FK("products", "CASCADE")]
    packaging_level: Literal["each", "inner", "case", "pallet"]
    packaging_type_code: Annotated[str, MaxLen(20)] | None = None
    packaging_material_code: Annotated[str, MaxLen(20)] | None = None
    qty_of_next_lower_level: int | None = None
    dimensions_l_w_h_uom: JSON | None = None
    gross_weight_value_uom: JSON | None = None


class Supplier(Row):
    """A store or online vendor."""

    table_meta = TableMeta(
        name="suppliers", group="catalog", natural_key=("slug",),
        description="Stores and online vendors; physical ones carry city, state and ZIP.",
        uniques=(("slug",),),
        indexes=(("name", "city"),),
    )

    name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(100)]
    supplier_type: Literal["physical", "online"] = "physical"
    website_url: Annotated[str, MaxLen(500)] | None = None
    street_address: Annotated[str, MaxLen(200)] | None = None
    city: Annotated[str, MaxLen(100)] | None = None
    state: Annotated[str, MaxLen(2), Field(pattern=r"^[A-Z]{2}$"), SqlGlob("[A-Z][A-Z]")] | None = None
    zip_code: Annotated[str, MaxLen(10)] | None = None
    notes: str | None = None
    is_active: Bool = True
