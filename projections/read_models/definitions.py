"""The shape agents and crews share: a row per definition, created, replaced, archived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import Boolean, Column, Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType
from projections.read_models.base import Apply, ReadModel, insert_row, update_row
from projections.schema import metadata


def definition_table(name: str, *columns: Column[Any]) -> Table:
    """A definitions table: id and tenant, ``columns``, then archived, version and times."""
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True),
        Column("tenant_id", String(100), nullable=False, index=True),
        *columns,
        Column("archived", Boolean, nullable=False, default=False),
        Column("version", Integer, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
    )


class DefinitionReadModel(ReadModel):
    """Rows of ``table`` built from the ``spec`` in the definition's events: ``fields`` are
    the spec's keys copied to columns (``defaults`` for keys older events lack)."""

    defined: ClassVar[EventType]
    updated: ClassVar[EventType]
    archived: ClassVar[EventType]
    fields: ClassVar[tuple[str, ...]]
    defaults: ClassVar[Mapping[str, Any]] = {}

    def columns(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return {name: spec.get(name, self.defaults.get(name)) for name in self.fields}

    def appliers(self) -> Mapping[EventType, Apply]:
        return {self.defined: self._defined, self.updated: self._updated,
                self.archived: self._archived}

    async def _defined(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await insert_row(conn, self.table, e, **self.columns(e.payload["spec"]), archived=False)

    async def _updated(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await update_row(conn, self.table, e, **self.columns(e.payload["spec"]))

    async def _archived(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await update_row(conn, self.table, e, archived=True)
