"""Seed / reference tables: units and recipe categories."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from annotated_types import MaxLen

from .base import Row, TableMeta

UnitCategory = Literal["weight", "volume", "count", "package"]


class Unit(Row):
    """A unit code such as ``lb`` or ``fl oz``; seeded with 35 rows, referenced as text."""

    table_meta = TableMeta(
        name="units", group="reference", seed=True, natural_key=("code",),
        description="Reference list of unit codes (35 seeded rows). Other tables store unit codes as text.",
        uniques=(("code",),),
    )

    code: Annotated[str, MaxLen(20)]
    display_name: Annotated[str, MaxLen(50)]
    symbol: Annotated[str, MaxLen(20)]
    category: UnitCategory
    un_cefact_code: Annotated[str, MaxLen(10)] | None = None
    sort_order: int = 0


class RecipeCategory(Row):
    """A user-editable recipe category; seeded with 7 defaults. ``recipes.category`` matches by name."""

    table_meta = TableMeta(
        name="recipe_categories", group="reference", seed=True, natural_key=("slug",),
        description="Recipe categories (7 seeded defaults, user-editable). Not an FK target.",
        uniques=(("name",), ("slug",)),
    )

    name: Annotated[str, MaxLen(100)]
    slug: Annotated[str, MaxLen(100)]
    description: str | None = None
    sort_order: int = Field(default=0)
