"""What a SQL read model is: the rows it keeps, changed by the event types it names.

The SQL projector (``projections.sql_projector``) hands every event, in log order, to each
read model that wants it, all inside ONE transaction with the tracking position: a batch
lands whole or not at all, and a replayed event changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent, is_unreadable
from domain.vocabulary import AggregateType, EventType

Apply = Callable[[AsyncConnection, RecordedEvent], Awaitable[None]]


class ReadModel:
    """Subclasses set ``table`` and return their appliers, one per event type."""

    table: ClassVar[Table]
    # True: also given events whose payload this process cannot read (the audit log keeps
    # them sealed); the others never see them
    reads_unreadable: ClassVar[bool] = False
    # a read model of one aggregate's events: given its events of a type this Kasal does not
    # know (written by a newer one) too, which ``unknown`` applies
    aggregate: ClassVar[AggregateType | None] = None

    def __init__(self) -> None:
        self.apply_by_type: dict[str, Apply] = {t.value: a for t, a in self.appliers().items()}

    def appliers(self) -> Mapping[EventType, Apply]:
        raise NotImplementedError

    def wants(self, event: RecordedEvent) -> bool:
        if is_unreadable(event.payload) and not self.reads_unreadable:
            return False
        return event.type in self.apply_by_type or (
            self.aggregate is not None and event.aggregate_type == self.aggregate
        )

    async def apply(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self.apply_by_type.get(event.type, self.unknown)(conn, event)

    async def unknown(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        raise NotImplementedError


async def insert_row(conn: AsyncConnection, table: Table, e: RecordedEvent, **values: Any) -> None:
    """A definition's first row: id, tenant, version and times from the event."""
    await conn.execute(
        insert(table),
        {
            "id": e.aggregate_id,
            "tenant_id": e.tenant_id,
            **values,
            "version": e.version,
            "created_at": e.occurred_at,
            "updated_at": e.occurred_at,
        },
    )


async def update_row(conn: AsyncConnection, table: Table, e: RecordedEvent, **values: Any) -> None:
    """A later event of the row's aggregate: its version and time, and ``values``."""
    await conn.execute(
        update(table)
        .where(table.c.id == e.aggregate_id)
        .values(version=e.version, updated_at=e.occurred_at, **values)
    )
