"""Query functions over the read models. The query API reads these, never the log.

A database that cannot be reached is ``ReadModelUnavailable`` (``projections.connections``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.vocabulary import UNFINISHED_STATUSES
from projections.connections import reading
from projections.read_models.agents import agents
from projections.read_models.api_keys import api_keys
from projections.read_models.artifacts import artifact_blobs, execution_artifacts
from projections.read_models.audit_log import audit_log
from projections.read_models.crews import crews
from projections.read_models.executions import executions
from projections.read_models.knowledge import knowledge_sources
from projections.read_models.timeline import execution_timeline
from projections.sql_projector import SqlProjector
from projections.tracking import tracked_position


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    position: int


@dataclass(frozen=True)
class One:
    item: dict[str, Any] | None
    position: int


class ReadModels:
    """Reads one consistent snapshot per call: rows plus the position they reflect."""

    def __init__(self, engine: AsyncEngine, projection: str = SqlProjector.name) -> None:
        self.engine = engine
        self.projection = projection

    async def position(self) -> int:
        async with reading(self.engine) as conn:
            return await tracked_position(conn, self.projection)

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[AsyncConnection]:
        """One snapshot for every statement of a read (SQLite's read transaction has it)."""
        async with reading(self.engine) as conn:
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
    async def _definitions(
        self, table: Table, tenant_id: str, include_archived: bool, limit: int, offset: int
    ) -> Page:
        q = select(table).where(table.c.tenant_id == tenant_id)
        if not include_archived:
            q = q.where(table.c.archived.is_(False))
        return await self._page(q.order_by(table.c.created_at, table.c.id), limit, offset)

    async def _by_id(self, table: Table, tenant_id: str, item_id: str) -> One:
        return await self._one(
            select(table).where(table.c.tenant_id == tenant_id, table.c.id == item_id)
        )

    async def list_agents(
        self, tenant_id: str, *, include_archived: bool = False, limit: int = 50, offset: int = 0
    ) -> Page:
        return await self._definitions(agents, tenant_id, include_archived, limit, offset)

    async def get_agent(self, tenant_id: str, agent_id: str) -> One:
        return await self._by_id(agents, tenant_id, agent_id)

    async def list_crews(
        self, tenant_id: str, *, include_archived: bool = False, limit: int = 50, offset: int = 0
    ) -> Page:
        return await self._definitions(crews, tenant_id, include_archived, limit, offset)

    async def get_crew(self, tenant_id: str, crew_id: str) -> One:
        return await self._by_id(crews, tenant_id, crew_id)

    async def list_knowledge_sources(
        self, tenant_id: str, *, include_archived: bool = False, limit: int = 50, offset: int = 0
    ) -> Page:
        return await self._definitions(knowledge_sources, tenant_id, include_archived, limit,
                                       offset)

    async def get_knowledge_source(self, tenant_id: str, knowledge_id: str) -> One:
        return await self._by_id(knowledge_sources, tenant_id, knowledge_id)

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
        q = select(executions).where(executions.c.tenant_id == tenant_id)
        if status:
            q = q.where(executions.c.status == status)
        if crew_id:
            q = q.where(executions.c.crew_id == crew_id)
        newest_first = (executions.c.requested_at.desc(), executions.c.id.desc())
        return await self._page(q.order_by(*newest_first), limit, offset)

    async def get_execution(self, tenant_id: str, execution_id: str) -> One:
        return await self._by_id(executions, tenant_id, execution_id)

    async def unfinished_execution_ids(self) -> list[str]:
        """Executions of every tenant not yet completed, failed or cancelled (the runner's
        work list after a restart), oldest first."""
        async with reading(self.engine) as conn:
            rows = await conn.execute(
                select(executions.c.id)
                .where(executions.c.status.in_([s.value for s in UNFINISHED_STATUSES]))
                .order_by(executions.c.id)
            )
            return [row.id for row in rows]

    async def execution_timeline(self, tenant_id: str, execution_id: str) -> Page:
        q = (
            select(execution_timeline)
            .where(
                execution_timeline.c.tenant_id == tenant_id,
                execution_timeline.c.execution_id == execution_id,
            )
            .order_by(execution_timeline.c.version)
        )
        return await self._page(q, limit=10_000, offset=0)

    async def execution_artifacts(self, tenant_id: str, execution_id: str) -> Page:
        a = execution_artifacts
        q = (select(a).where(a.c.tenant_id == tenant_id, a.c.execution_id == execution_id)
             .order_by(a.c.position, a.c.path))
        return await self._page(q, limit=10_000, offset=0)

    async def artifact_content(self, tenant_id: str, execution_id: str, path: str) -> One:
        """One artifact's row with its ``content`` (bytes)."""
        a = execution_artifacts
        return await self._one(
            select(a, artifact_blobs.c.content)
            .join(artifact_blobs, artifact_blobs.c.sha256 == a.c.sha256)
            .where(a.c.tenant_id == tenant_id, a.c.execution_id == execution_id,
                   a.c.path == path))

    # --- audit ------------------------------------------------------------------------
    async def audit_trail(self, tenant_id: str, aggregate_type: str, aggregate_id: str) -> Page:
        q = (
            select(audit_log)
            .where(
                audit_log.c.tenant_id == tenant_id,
                audit_log.c.aggregate_type == aggregate_type,
                audit_log.c.aggregate_id == aggregate_id,
            )
            .order_by(audit_log.c.version)
        )
        return await self._page(q, limit=100_000, offset=0)

    async def audit_entries(self, after: int, limit: int) -> list[tuple[int, str, int, str]]:
        """The trail's copy of the log, in position order: (position, aggregate id, version,
        hash) of every event projected after ``after`` (``kasal audit verify``)."""
        a = audit_log
        async with reading(self.engine) as conn:
            rows = await conn.execute(
                select(a.c.position, a.c.aggregate_id, a.c.version, a.c.hash)
                .where(a.c.position > after).order_by(a.c.position).limit(limit))
            return [(int(r.position), str(r.aggregate_id), int(r.version), str(r.hash))
                    for r in rows]

    # --- api keys ---------------------------------------------------------------------
    async def api_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key with this SHA-256, revoked or not, of any tenant (authentication)."""
        async with reading(self.engine) as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).first()
        return None if row is None else dict(row._mapping)

    async def list_api_keys(self, tenant_id: str, *, limit: int = 100, offset: int = 0) -> Page:
        q = select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.id)
        return await self._page(q, limit, offset)

    async def get_api_key(self, tenant_id: str, key_id: str) -> One:
        return await self._by_id(api_keys, tenant_id, key_id)

    async def count_api_keys(self) -> int:
        async with reading(self.engine) as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
            )
