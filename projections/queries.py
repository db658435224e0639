"""Query functions over the read models. The query API reads these, never the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.envelope import RecordedEvent, verify_chain
from domain.errors import TamperedEvent
from projections import schema as s
from projections.projector import SqlProjector, tracked_position


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    position: int


@dataclass(frozen=True)
class One:
    item: dict[str, Any] | None
    position: int


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant_id: str
    role: str
    name: str

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"


class ReadModels:
    """Reads one consistent snapshot per call: rows plus the position they reflect."""

    def __init__(self, engine: AsyncEngine, projection: str = SqlProjector.name) -> None:
        self.engine = engine
        self.projection = projection

    async def position(self) -> int:
        async with self.engine.connect() as conn:
            return await tracked_position(conn, self.projection)

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[AsyncConnection]:
        """One snapshot for every statement of a read (SQLite's read transaction has it)."""
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    async def _page(self, query: Select[Any], limit: int, offset: int) -> Page:
        async with self._snapshot() as conn:
            position = await tracked_position(conn, self.projection)
            total = (
                await conn.execute(select(func.count()).select_from(query.subquery()))
            ).scalar_one()
            rows = await conn.execute(query.limit(limit).offset(offset))
            return Page([dict(r._mapping) for r in rows], int(total), position)

    async def _one(self, query: Select[Any]) -> One:
        async with self._snapshot() as conn:
            position = await tracked_position(conn, self.projection)
            row = (await conn.execute(query)).first()
            return One(dict(row._mapping) if row else None, position)

    # --- agents and crews -------------------------------------------------------------
    async def list_agents(
        self, tenant_id: str, *, include_archived: bool = False, limit: int = 50, offset: int = 0
    ) -> Page:
        q = select(s.agents).where(s.agents.c.tenant_id == tenant_id)
        if not include_archived:
            q = q.where(s.agents.c.archived.is_(False))
        return await self._page(q.order_by(s.agents.c.created_at, s.agents.c.id), limit, offset)

    async def get_agent(self, tenant_id: str, agent_id: str) -> One:
        return await self._one(
            select(s.agents).where(s.agents.c.tenant_id == tenant_id, s.agents.c.id == agent_id)
        )

    async def list_crews(
        self, tenant_id: str, *, include_archived: bool = False, limit: int = 50, offset: int = 0
    ) -> Page:
        q = select(s.crews).where(s.crews.c.tenant_id == tenant_id)
        if not include_archived:
            q = q.where(s.crews.c.archived.is_(False))
        return await self._page(q.order_by(s.crews.c.created_at, s.crews.c.id), limit, offset)

    async def get_crew(self, tenant_id: str, crew_id: str) -> One:
        return await self._one(
            select(s.crews).where(s.crews.c.tenant_id == tenant_id, s.crews.c.id == crew_id)
        )

    # --- executions -------------------------------------------------------------------
    async def list_executions(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        crew_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        q = select(s.executions).where(s.executions.c.tenant_id == tenant_id)
        if status:
            q = q.where(s.executions.c.status == status)
        if crew_id:
            q = q.where(s.executions.c.crew_id == crew_id)
        newest_first = (s.executions.c.requested_at.desc(), s.executions.c.id.desc())
        return await self._page(q.order_by(*newest_first), limit, offset)

    async def get_execution(self, tenant_id: str, execution_id: str) -> One:
        return await self._one(
            select(s.executions).where(
                s.executions.c.tenant_id == tenant_id, s.executions.c.id == execution_id
            )
        )

    async def unfinished_execution_ids(self) -> list[str]:
        """Executions of every tenant not yet completed, failed or cancelled (the runner's
        work list after a restart), oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(s.executions.c.id)
                .where(s.executions.c.status.in_(("requested", "running", "cancel_requested")))
                .order_by(s.executions.c.id)
            )
            return [row.id for row in rows]

    async def execution_timeline(self, tenant_id: str, execution_id: str) -> Page:
        q = (
            select(s.execution_timeline)
            .where(
                s.execution_timeline.c.tenant_id == tenant_id,
                s.execution_timeline.c.execution_id == execution_id,
            )
            .order_by(s.execution_timeline.c.version)
        )
        return await self._page(q, limit=10_000, offset=0)

    # --- audit ------------------------------------------------------------------------
    async def audit_trail(self, tenant_id: str, aggregate_type: str, aggregate_id: str) -> Page:
        q = (
            select(s.audit_log)
            .where(
                s.audit_log.c.tenant_id == tenant_id,
                s.audit_log.c.aggregate_type == aggregate_type,
                s.audit_log.c.aggregate_id == aggregate_id,
            )
            .order_by(s.audit_log.c.version)
        )
        return await self._page(q, limit=100_000, offset=0)

    # --- api keys ---------------------------------------------------------------------
    async def principal_for(self, key_hash: str) -> Principal | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(s.api_keys).where(
                        s.api_keys.c.key_hash == key_hash, s.api_keys.c.revoked.is_(False)
                    )
                )
            ).first()
        if row is None:
            return None
        return Principal(row.id, row.tenant_id, row.role, row.name)

    async def list_api_keys(self, tenant_id: str, *, limit: int = 100, offset: int = 0) -> Page:
        q = select(s.api_keys).where(s.api_keys.c.tenant_id == tenant_id).order_by(s.api_keys.c.id)
        return await self._page(q, limit, offset)

    async def get_api_key(self, tenant_id: str, key_id: str) -> One:
        return await self._one(
            select(s.api_keys).where(s.api_keys.c.tenant_id == tenant_id, s.api_keys.c.id == key_id)
        )

    async def count_api_keys(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(s.api_keys))).scalar_one()
            )


def verify_audit_rows(rows: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """Re-check the hash chain of an audit trail as projected (no key needed)."""
    events = [
        RecordedEvent(
            **{
                k: row[k]
                for k in RecordedEvent.__dataclass_fields__
                if k not in ("stored_payload",)
            }
        )
        for row in rows
    ]
    try:
        verify_chain(events)
    except TamperedEvent as error:
        return False, str(error)
    return True, None
