"""The registry: every table bakestore knows, read once from the models.

Schema creation, export, restore validation, seeds, Datasette metadata, UI forms and forensic
attribution all ask the registry for "the tables". The upstream app lost its user's data because a
hand-kept list of tables drifted from the real schema; here no such list exists (a test fails if the
database and the registry ever disagree).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .errors import SchemaError, UnknownColumnError, UnknownTableError
from .models import GROUP_MODULES
from .models.base import FK, Doc, Kind, Row, SqlGlob, TableMeta, Unique

_SQL_TYPES = {"uuid": "TEXT", "text": "TEXT", "integer": "INTEGER", "real": "REAL",
              "boolean": "INTEGER", "date": "TEXT", "datetime": "TEXT", "json": "TEXT"}


@dataclass(frozen=True)
class Column:
    """One column, as the database, the exporter and the UI need to know it."""

    name: str
    kind: str
    nullable: bool
    required: bool
    default: Any
    fk: FK | None = None
    choices: tuple[Any, ...] | None = None
    checks: tuple[str, ...] = ()
    max_length: int | None = None
    unique: bool = False
    doc: str | None = None

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self.kind]


@dataclass(frozen=True)
class ForeignKey:
    table: str
    column: str
    other_table: str
    on_delete: str
    cycle: bool


@dataclass(frozen=True)
class TableSpec:
    """A table: its model, its columns and the facts from its :class:`TableMeta`."""

    model: type[BaseModel]
    meta: TableMeta
    columns: tuple[Column, ...]
    pk: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def group(self) -> str:
        return self.meta.group

    @property
    def description(self) -> str:
        return self.meta.description

    @property
    def natural_key(self) -> tuple[str, ...] | None:
        return self.meta.natural_key

    @property
    def is_seed(self) -> bool:
        return self.meta.seed

    @property
    def is_system(self) -> bool:
        return self.meta.system

    @property
    def exported(self) -> bool:
        return bool(self.meta.extra.get("export", True))

    @property
    def has_row_identity(self) -> bool:
        """Domain tables carry id/created_at/updated_at/row_version and take part in sync."""
        return issubclass(self.model, Row)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def _by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> Column:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownColumnError(f"{self.name}: no column named {name!r}") from None

    def has_column(self, name: str) -> bool:
        return name in self._by_name

    @cached_property
    def foreign_keys(self) -> tuple[ForeignKey, ...]:
        return tuple(ForeignKey(self.name, c.name, c.fk.table, c.fk.on_delete, c.fk.cycle)
                     for c in self.columns if c.fk is not None)


# --------------------------------------------------------------------------- reading models


def _unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """Return (base type, nullable, metadata) of a field annotation, looking through Optional/Annotated."""
    nullable = False
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            metadata.extend(args[1:])
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != len(typing.get_args(annotation)):
                nullable = True
            if len(members) != 1:
                raise SchemaError(f"unsupported union annotation {annotation!r}")
            annotation = members[0]
            continue
        return annotation, nullable, metadata


def _flatten(metadata: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat.extend(_flatten(list(item.metadata)))
        else:
            flat.append(item)
    return flat


def _column(table: str, name: str, info: FieldInfo) -> Column:
    base, nullable, metadata = _unwrap(info.annotation)
    metadata = _flatten(metadata + list(info.metadata))
    kind: str | None = next((m.name for m in metadata if isinstance(m, Kind)), None)
    choices: tuple[Any, ...] | None = None
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        kind = kind or ("integer" if all(isinstance(c, int) for c in choices) else "text")
    elif kind is None:
        kind = {str: "text", int: "integer", float: "real", bool: "boolean"}.get(base)
    if kind is None:
        raise SchemaError(f"{table}.{name}: cannot map type {base!r} to a column kind")

    checks: list[str] = []
    max_length = None
    quoted = f'"{name}"'
    globs = [m.glob for m in metadata if isinstance(m, SqlGlob)]
    for m in metadata:
        if getattr(m, "pattern", None) is not None and not globs:
            raise SchemaError(f"{table}.{name}: a pattern needs its SQL twin (SqlGlob), or restore and "
                              "the model would disagree about valid rows")
        if isinstance(m, (annotated_types.MinLen, annotated_types.MultipleOf)):
            raise SchemaError(f"{table}.{name}: {type(m).__name__} has no SQL CHECK translation; add one first")
    for glob in globs:
        checks.append(f"{quoted} GLOB '{glob}'")
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            checks.append(f"{quoted} > {m.gt!r}")
        elif isinstance(m, annotated_types.Ge):
            checks.append(f"{quoted} >= {m.ge!r}")
        elif isinstance(m, annotated_types.Lt):
            checks.append(f"{quoted} < {m.lt!r}")
        elif isinstance(m, annotated_types.Le):
            checks.append(f"{quoted} <= {m.le!r}")
        elif isinstance(m, annotated_types.MaxLen):
            max_length = m.max_length
    if choices is not None:
        rendered = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
        checks.append(f"{quoted} IN ({rendered})")
    if kind == "boolean":
        checks.append(f"{quoted} IN (0, 1)")

    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=False)
    return Column(
        name=name, kind=kind, nullable=nullable, required=required, default=default,
        fk=next((m for m in metadata if isinstance(m, FK)), None), choices=choices,
        checks=tuple(checks), max_length=max_length,
        unique=any(isinstance(m, Unique) for m in metadata),
        doc=next((m.text for m in metadata if isinstance(m, Doc)), None) or info.description,
    )


def spec_for(model: type[BaseModel]) -> TableSpec:
    meta: TableMeta = model.table_meta  # type: ignore[attr-defined]
    columns = tuple(_column(meta.name, name, info) for name, info in model.model_fields.items())
    if issubclass(model, Row):
        # Identity and version are filled by the store but are NOT NULL in the database.
        columns = tuple(
            Column(**{**c.__dict__, "nullable": False}) if c.name in ("id", "created_at", "updated_at", "row_version") else c
            for c in columns)
        pk: tuple[str, ...] = ("id",)
    else:
        pk = tuple(meta.extra["pk"])
    return TableSpec(model=model, meta=meta, columns=columns, pk=pk)


# --------------------------------------------------------------------------- the registry


class Registry:
    """All tables, in dependency order (every table after the tables it references)."""

    def __init__(self, specs: list[TableSpec]) -> None:
        by_name: dict[str, TableSpec] = {}
        for spec in specs:
            if spec.name in by_name:
                raise SchemaError(f"table {spec.name!r} is declared twice "
                                  f"({by_name[spec.name].model.__name__} and {spec.model.__name__})")
            by_name[spec.name] = spec
        for spec in specs:
            for fk in spec.foreign_keys:
                if fk.other_table not in by_name:
                    raise SchemaError(f"{spec.name}.{fk.column} references unknown table {fk.other_table!r}")
        self._by_name = by_name
        self.tables: tuple[TableSpec, ...] = tuple(self._dependency_order(specs))

    @staticmethod
    def _dependency_order(specs: list[TableSpec]) -> list[TableSpec]:
        # Kahn's algorithm over FK edges, skipping the edges marked ``cycle`` (self-references and
        # the back-reference of each of the two FK cycles): those columns are nullable and their
        # constraints are DEFERRABLE INITIALLY DEFERRED, so insert order cannot violate them.
        # Ties keep declaration order, so the order is stable.
        names = [s.name for s in specs]
        deps = {s.name: {fk.other_table for fk in s.foreign_keys if not fk.cycle and fk.other_table != s.name}
                for s in specs}
        ordered: list[str] = []
        remaining = list(names)
        while remaining:
            ready = [n for n in remaining if deps[n] <= set(ordered)]
            if not ready:
                raise SchemaError(f"foreign-key cycle among {sorted(remaining)} not marked cycle=True")
            ordered.append(ready[0])
            remaining.remove(ready[0])
        index = {s.name: s for s in specs}
        return [index[n] for n in ordered]

    @classmethod
    def from_modules(cls, modules: tuple[types.ModuleType, ...] = GROUP_MODULES) -> "Registry":
        specs: list[TableSpec] = []
        for module in modules:
            for value in vars(module).values():
                if (isinstance(value, type) and issubclass(value, BaseModel)
                        and value.__module__ == module.__name__ and "table_meta" in value.__dict__):
                    specs.append(spec_for(value))
        return cls(specs)

    # -- lookups

    def __getitem__(self, name: str) -> TableSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTableError(f"unknown table {name!r} (see `bakestore tables`)") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[TableSpec]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.tables)

    @property
    def domain_tables(self) -> tuple[TableSpec, ...]:
        """The baking domain's tables (everything but bakestore's own bookkeeping)."""
        return tuple(s for s in self.tables if not s.is_system)

    @property
    def exported_tables(self) -> tuple[TableSpec, ...]:
        return tuple(s for s in self.tables if s.exported)

    @property
    def seed_tables(self) -> tuple[TableSpec, ...]:
        return tuple(s for s in self.tables if s.is_seed)

    def groups(self) -> dict[str, list[TableSpec]]:
        grouped: dict[str, list[TableSpec]] = {}
        for module in GROUP_MODULES:
            for spec in self.tables:
                if spec.model.__module__ == module.__name__:
                    grouped.setdefault(spec.group, []).append(spec)
        return grouped

    def references_to(self, table: str) -> tuple[ForeignKey, ...]:
        """Every foreign key (in any table) that points at ``table``."""
        return tuple(fk for spec in self.tables for fk in spec.foreign_keys if fk.other_table == table)

    def for_model(self, model: type[BaseModel]) -> TableSpec:
        return self[model.table_meta.name]  # type: ignore[attr-defined]


#: The registry of this bakestore version. Import this; never build a list of tables by hand.
REGISTRY = Registry.from_modules()
