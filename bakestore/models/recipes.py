"""Recipes, finished units and goods, compositions (bills of materials) and gift packages."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Bool, FK, Real, Row, TableMeta, Timestamp, UUID

YieldMode = Literal["discrete_count", "batch_portion"]
YieldType = Literal["EA", "SERVING"]
AssemblyType = Literal["bare", "bundle"]


class Recipe(Row):
    """A recipe; a variant points at its base recipe. ``name`` is not unique, ``slug`` is."""

    table_meta = TableMeta(
        name="recipes", group="recipes", natural_key=("slug",),
        description="Recipes; variants point at their base recipe. Names are not unique, slugs are.",
        uniques=(("slug",),),
        checks=("base_recipe_id IS NULL OR base_recipe_id != id",),
    )

    name: Annotated[str, MaxLen(200)]
    slug: Annotated[str, MaxLen(200)]
    previous_slug: Annotated[str, MaxLen(200)] | None = None
    category: Annotated[str, MaxLen(100)]
    source: Annotated[str, MaxLen(500)] | None = None
    estimated_time_minutes: int | None = None
    notes: str | None = None
    is_archived: Bool = False
    base_recipe_id: Annotated[UUID, FK("recipes", "SET NULL", cycle=True)] | None = None
    variant_name: Annotated[str, MaxLen(100)] | None = None
    is_production_ready: Bool = False


class RecipeIngredient(Row):
    """An ingredient line of a recipe, as quantity and unit code."""

    table_meta = TableMeta(
        name="recipe_ingredients", group="recipes",
        description="Ingredient lines of recipes (quantity and unit code).",
    )

    recipe_id: Annotated[UUID, FK("recipes", "CASCADE")]
    ingredient_id: Annotated[UUID, FK("ingredients", "RESTRICT")]
    quantity: Real
    unit: Annotated[str, MaxLen(50)]
    notes: Annotated[str, MaxLen(500)] | None = None


class RecipeComponent(Row):
    """A nested sub-recipe of a recipe; ``quantity`` is a number of batches."""

    table_meta = TableMeta(
        name="recipe_components", group="recipes",
        description="Sub-recipes nested in recipes; quantity is a number of batches.",
        uniques=(("recipe_id", "component_recipe_id"),),
        checks=("recipe_id != component_recipe_id",),
        indexes=(("recipe_id", "sort_order"),),
    )

    recipe_id: Annotated[UUID, FK("recipes", "CASCADE")]
    component_recipe_id: Annotated[UUID, FK("recipes", "RESTRICT")]
    quantity: Real = Field(default=1.0, gt=0)
    notes: Annotated[str, MaxLen(500)] | None = None
    sort_order: int = 0


class FinishedUnit(Row):
    """What one batch of a recipe yields: a count of items or a portion of the batch."""

    table_meta = TableMeta(
        name="finished_units", group="recipes", natural_key=("slug",),
        description="Finished units: what one batch of a recipe yields (items per batch or a batch portion), with stock on hand.",
        uniques=(("slug",),),
        indexes=(("recipe_id", "inventory_count"),),
    )

    slug: Annotated[str, MaxLen(100)]
    display_name: Annotated[str, MaxLen(200)]
    description: str | None = None
    recipe_id: Annotated[UUID, FK("recipes", "CASCADE")]
    yield_mode: YieldMode = "discrete_count"
    yield_type: YieldType = "SERVING"
    items_per_batch: int | None = Field(default=None, gt=0)
    item_unit: Annotated[str, MaxLen(50)] | None = None
    batch_percentage: Real | None = Field(default=None, gt=0, le=100)
    portion_description: Annotated[str, MaxLen(200)] | None = None
    inventory_count: int = Field(default=0, ge=0)
    category: Annotated[str, MaxLen(100)] | None = None
    production_notes: str | None = None
    notes: str | None = None


class FinishedGood(Row):
    """A finished good: a bare wrapper of one finished unit or a multi-component bundle."""

    table_meta = TableMeta(
        name="finished_goods", group="recipes", natural_key=("slug",),
        description="Finished goods: a bare wrapper of one finished unit or a bundle of components, with stock on hand.",
        uniques=(("slug",),),
    )

    slug: Annotated[str, MaxLen(100)]
    display_name: Annotated[str, MaxLen(200)]
    description: str | None = None
    assembly_type: AssemblyType = "bundle"
    packaging_instructions: str | None = None
    inventory_count: int = Field(default=0, ge=0)
    notes: str | None = None


class Composition(Row):
    """A bill-of-materials line: a finished good or package contains one component."""

    table_meta = TableMeta(
        name="compositions", group="recipes",
        description="Bill-of-materials lines: a finished good or package contains a finished unit, finished good, packaging product or material unit.",
        uniques=(("assembly_id", "finished_good_id"), ("assembly_id", "finished_unit_id"),
                 ("package_id", "packaging_product_id"), ("assembly_id", "packaging_product_id"),
                 ("assembly_id", "material_unit_id")),
        checks=(
            "(finished_unit_id IS NOT NULL) + (finished_good_id IS NOT NULL)"
            " + (packaging_product_id IS NOT NULL) + (material_unit_id IS NOT NULL) = 1",
            "assembly_id != finished_good_id",
            "(assembly_id IS NOT NULL) + (package_id IS NOT NULL) = 1",
        ),
        indexes=(("assembly_id", "sort_order"),),
    )

    assembly_id: Annotated[UUID, FK("finished_goods", "CASCADE")] | None = None
    package_id: Annotated[UUID, FK("packages", "CASCADE")] | None = None
    finished_unit_id: Annotated[UUID, FK("finished_units", "CASCADE")] | None = None
    finished_good_id: Annotated[UUID, FK("finished_goods", "CASCADE")] | None = None
    packaging_product_id: Annotated[UUID, FK("products", "RESTRICT")] | None = None
    material_unit_id: Annotated[UUID, FK("material_units", "RESTRICT")] | None = None
    component_quantity: Real = Field(default=1.0, gt=0)
    component_notes: str | None = None
    sort_order: int = Field(default=0, ge=0)
    is_generic: Bool = False


class CompositionAssignment(Row):
    """A concrete inventory lot assigned to a generic packaging composition line."""

    table_meta = TableMeta(
        name="composition_assignments", group="recipes",
        description="Concrete inventory lots assigned to generic (deferred) packaging composition lines.",
        uniques=(("composition_id", "inventory_item_id"),),
    )

    composition_id: Annotated[UUID, FK("compositions", "CASCADE")]
    inventory_item_id: Annotated[UUID, FK("inventory_items", "RESTRICT")]
    quantity_assigned: Real = Field(gt=0)
    assigned_at: Timestamp


class Package(Row):
    """A gift package definition; ``name`` is not unique."""

    table_meta = TableMeta(
        name="packages", group="recipes",
        description="Gift package definitions (names are not unique; some are templates).",
    )

    name: Annotated[str, MaxLen(200)]
    description: str | None = None
    is_template: Bool = False
    notes: str | None = None


class PackageFinishedGood(Row):
    """A finished good contained in a package (legacy route; newer data uses compositions)."""

    table_meta = TableMeta(
        name="package_finished_goods", group="recipes",
        description="Finished goods contained in packages (legacy route; compositions are the newer one).",
    )

    package_id: Annotated[UUID, FK("packages", "CASCADE")]
    finished_good_id: Annotated[UUID, FK("finished_goods", "RESTRICT")]
    quantity: int = 1
