"""The API keys read model: who may call Kasal (the key's SHA-256, never the key)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Boolean, Column, String, Table, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType
from projections.read_models.base import Apply, ReadModel
from projections.schema import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)


class ApiKeys(ReadModel):
    table = api_keys

    def appliers(self) -> Mapping[EventType, Apply]:
        return {EventType.API_KEY_ISSUED: self._issued, EventType.API_KEY_REVOKED: self._revoked}

    async def _issued(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        key = {name: e.payload[name] for name in ("name", "role", "key_hash", "prefix")}
        await conn.execute(insert(api_keys), {
            "id": e.aggregate_id, "tenant_id": e.tenant_id, **key, "revoked": False,
            "created_by": e.actor, "created_at": e.occurred_at,
        })

    async def _revoked(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == e.aggregate_id)
            .values(revoked=True, revoked_at=e.occurred_at)
        )
