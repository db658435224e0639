"""The SQL projector: events -> the rows of every SQL read model, with its tracking position,
in ONE transaction.

Events at or below the tracked position are skipped inside that same transaction, so a
replay or a redelivery changes nothing. ``rebuild`` drops every row and starts over. The
read models themselves are listed in ``projections.read_models``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.envelope import RecordedEvent, is_unreadable
from projections.connections import reading
from projections.processor_health import quarantined
from projections.read_models import read_models
from projections.read_models.base import ReadModel
from projections.schema import SQL_PROJECTION, create_tables, read_model_tables, tracking
from projections.tracking import set_position, tracked_position

log = logging.getLogger(__name__)


class SqlProjector:
    name = SQL_PROJECTION

    def __init__(self, engine: AsyncEngine, models: Sequence[ReadModel] | None = None) -> None:
        self.engine = engine
        self.models = tuple(models) if models is not None else read_models()

    async def initialize(self, *, rebuild_changed: bool = False) -> bool:
        """Create the tables if missing; True when read models of another schema were
        dropped (``rebuild_changed``; otherwise that is ``ReadModelSchemaChanged``)."""
        async with self.engine.begin() as conn:
            return await create_tables(conn, rebuild_changed=rebuild_changed)

    async def position(self) -> int:
        async with reading(self.engine) as conn:
            return await tracked_position(conn, self.name)

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        """Project a batch in one transaction; returns the position now tracked."""
        async with self.engine.begin() as conn:
            start = await tracked_position(conn, self.name, lock=True)
            # events an operator set aside (one indexed query per batch)
            set_aside = await quarantined(conn, self.name, [e.position for e in events])
            position = start
            for event in events:
                if event.position <= position:
                    continue
                if event.position in set_aside:
                    log.warning("%s v%s of %s %s is quarantined; projected to the audit log "
                                "only", event.type, event.version, event.aggregate_type,
                                event.aggregate_id)
                    await self.audit.apply(conn, event)
                else:
                    await self.apply(conn, event)
                position = event.position
            if position != start:
                await set_position(conn, self.name, position, start)
        return position

    async def apply(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        if is_unreadable(event.payload):
            # its key is gone (shredded) or not configured: the audit trail keeps the sealed
            # event; the read models cannot show what it said, and must not stall on it
            log.warning("%s v%s of %s %s is unreadable; projected to the audit log only",
                        event.type, event.version, event.aggregate_type, event.aggregate_id)
        for model in self.models:
            if model.wants(event):
                await model.apply(conn, event)

    @property
    def audit(self) -> ReadModel:
        return next(m for m in self.models if m.reads_unreadable)

    async def rebuild(self) -> None:
        """Forget every row and the tracking position: the runtime replays from zero. (The
        processors' failures and the quarantine stay: the same events will be met again.)"""
        async with self.engine.begin() as conn:
            for table in reversed([*read_model_tables(), tracking]):
                await conn.execute(delete(table))
