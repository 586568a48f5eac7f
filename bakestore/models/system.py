"""bakestore's own bookkeeping tables, declared like every other table so the registry knows them."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict

from annotated_types import MaxLen

from .base import RowVersion, TableMeta, Timestamp, UUID


class Tombstone(BaseModel):
    """A deleted row, remembered so that sync can make the delete win against older copies."""

    model_config = ConfigDict(extra="forbid", strict=True)
    table_meta: ClassVar[TableMeta] = TableMeta(
        name="_tombstones", group="system", system=True,
        description="Deleted rows (table, id, version): lets a delete win over older copies during sync.",
        extra={"pk": ("table_name", "row_id"), "export": True},
    )

    table_name: Annotated[str, MaxLen(100)]
    row_id: UUID
    row_version: RowVersion
    deleted_at: Timestamp


class Meta(BaseModel):
    """Key/value facts about this database file: its identity and the clock's high-water mark."""

    model_config = ConfigDict(extra="forbid", strict=True)
    table_meta: ClassVar[TableMeta] = TableMeta(
        name="_bakestore_meta", group="system", system=True,
        description="Facts about this database file (identity, clock high-water mark). Not exported.",
        extra={"pk": ("key",), "export": False},
    )

    key: Annotated[str, MaxLen(100)]
    value: str
