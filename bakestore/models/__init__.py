"""The table models, one module per domain group. ``bakestore.registry`` reads them; nothing else lists tables."""

from __future__ import annotations

from . import catalog, events, inventory, materials, production, recipes, reference, snapshots, system
from .base import FK, Row, TableMeta

#: The modules whose models make up the schema, in the order groups are shown to people.
GROUP_MODULES = (reference, catalog, inventory, recipes, materials, events, production, snapshots, system)

__all__ = ["FK", "GROUP_MODULES", "Row", "TableMeta"]
