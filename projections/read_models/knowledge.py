"""The knowledge sources read model: one row per source (its chunks are in the log and the
vector index, not here)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, Integer, String
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType
from projections.read_models.base import Apply, ReadModel, insert_row, update_row
from projections.read_models.definitions import definition_table

knowledge_sources = definition_table(
    "knowledge_sources",
    Column("name", String(200), nullable=False),
    Column("media_type", String(40), nullable=False),
    Column("origin", String(500)),
    Column("sha256", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("characters", Integer, nullable=False),
)


class KnowledgeSources(ReadModel):
    table = knowledge_sources

    def appliers(self) -> Mapping[EventType, Apply]:
        return {EventType.KNOWLEDGE_SOURCE_ADDED: self._added,
                EventType.KNOWLEDGE_SOURCE_ARCHIVED: self._archived}

    async def _added(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        p = e.payload
        await insert_row(conn, knowledge_sources, e, name=p["name"],
                         media_type=p["media_type"], origin=p.get("origin"), sha256=p["sha256"],
                         chunks=len(p["chunks"]), characters=p["characters"], archived=False)

    async def _archived(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await update_row(conn, knowledge_sources, e, archived=True)
