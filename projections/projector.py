"""The SQL projector: events -> read-model rows, with its tracking position in ONE transaction.

Events at or below the tracked position are skipped inside that same transaction, so a
replay or a redelivery changes nothing. ``rebuild`` drops every row and starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import MetaData, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.envelope import RecordedEvent, is_unreadable
from projections import schema as s

log = logging.getLogger(__name__)
Apply = Callable[[AsyncConnection, RecordedEvent], Awaitable[None]]


async def tracked_position(conn: AsyncConnection, name: str, *, lock: bool = False) -> int:
    query = select(s.tracking.c.position).where(s.tracking.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else 0


SCHEMA_LOCK_KEY = 0x6B6173616C02  # serialises CREATE TABLE of processes starting together


async def create_tables(conn: AsyncConnection, metadata: MetaData) -> None:
    """``metadata.create_all`` that two processes may run at once (PostgreSQL's
    CREATE TABLE IF NOT EXISTS races on its catalog)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    await conn.run_sync(metadata.create_all)


PROJECTED_CHANNEL = "kasal_projected"  # PostgreSQL NOTIFY "<projection>:<position>" on commit


async def set_position(conn: AsyncConnection, name: str, position: int, previous: int) -> None:
    if conn.dialect.name == "postgresql":
        # delivered at commit: processes whose projectors run elsewhere wake on it
        await conn.execute(select(func.pg_notify(PROJECTED_CHANNEL, f"{name}:{position}")))
    if previous == 0:
        found = (
            await conn.execute(select(s.tracking.c.name).where(s.tracking.c.name == name))
        ).first()
        if found is None:
            await conn.execute(insert(s.tracking), {"name": name, "position": position})
            return
    await conn.execute(
        update(s.tracking).where(s.tracking.c.name == name).values(position=position)
    )


class SqlProjector:
    """Maintains agents, crews, executions, the execution timeline, the audit log and api keys."""

    name = "sql"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.appliers: dict[str, Apply] = {
            "AgentRegistered": self._agent_registered,
            "AgentUpdated": self._agent_updated,
            "AgentArchived": self._agent_archived,
            "CrewDefined": self._crew_defined,
            "CrewUpdated": self._crew_updated,
            "CrewArchived": self._crew_archived,
            "ExecutionRequested": self._execution_requested,
            "ApiKeyIssued": self._api_key_issued,
            "ApiKeyRevoked": self._api_key_revoked,
        }

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await create_tables(conn, s.metadata)

    async def position(self) -> int:
        async with self.engine.connect() as conn:
            return await tracked_position(conn, self.name)

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        """Project a batch in one transaction; returns the position now tracked."""
        async with self.engine.begin() as conn:
            start = await tracked_position(conn, self.name, lock=True)
            position = start
            for event in events:
                if event.position <= position:
                    continue
                await self.apply(conn, event)
                position = event.position
            if position != start:
                await set_position(conn, self.name, position, start)
            return position

    async def apply(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self._audit(conn, event)
        if is_unreadable(event.payload):
            # its key is gone (shredded) or not configured: the audit trail keeps the sealed
            # event; the read models cannot show what it said, and must not stall on it
            log.warning("%s v%s of %s %s is unreadable; projected to the audit log only",
                        event.type, event.version, event.aggregate_type, event.aggregate_id)
            return
        if event.aggregate_type == "execution":
            await self._execution_event(conn, event)
            return
        applier = self.appliers.get(event.type)
        if applier is not None:
            await applier(conn, event)

    async def rebuild(self) -> None:
        """Forget every row and the tracking position: the runtime replays from zero."""
        async with self.engine.begin() as conn:
            for table in reversed(s.metadata.sorted_tables):
                await conn.execute(delete(table))

    # --- audit ----------------------------------------------------------------------
    async def _audit(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await conn.execute(
            insert(s.audit_log),
            {
                "aggregate_id": e.aggregate_id,
                "version": e.version,
                "position": e.position,
                "aggregate_type": e.aggregate_type,
                "tenant_id": e.tenant_id,
                "event_id": e.event_id,
                "type": e.type,
                "schema_version": e.schema_version,
                "occurred_at": e.occurred_at,
                "actor": e.actor,
                "command_id": e.command_id,
                "correlation_id": e.correlation_id,
                "causation_id": e.causation_id,
                "payload": dict(e.stored_payload if e.stored_payload is not None else e.payload),
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            },
        )

    # --- agents and crews -------------------------------------------------------------
    async def _agent_registered(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._create(conn, s.agents, e, **agent_columns(e.payload["spec"]))

    async def _agent_updated(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._touch(conn, s.agents, e, **agent_columns(e.payload["spec"]))

    async def _agent_archived(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._touch(conn, s.agents, e, archived=True)

    async def _crew_defined(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._create(conn, s.crews, e, **crew_columns(e.payload["spec"]))

    async def _crew_updated(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._touch(conn, s.crews, e, **crew_columns(e.payload["spec"]))

    async def _crew_archived(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._touch(conn, s.crews, e, archived=True)

    async def _create(
        self, conn: AsyncConnection, table: Any, e: RecordedEvent, **values: Any
    ) -> None:
        await conn.execute(
            insert(table),
            {
                "id": e.aggregate_id,
                "tenant_id": e.tenant_id,
                **values,
                "archived": False,
                "version": e.version,
                "created_at": e.occurred_at,
                "updated_at": e.occurred_at,
            },
        )

    async def _touch(
        self, conn: AsyncConnection, table: Any, e: RecordedEvent, **values: Any
    ) -> None:
        await conn.execute(
            update(table)
            .where(table.c.id == e.aggregate_id)
            .values(version=e.version, updated_at=e.occurred_at, **values)
        )

    # --- api keys ----------------------------------------------------------------------
    async def _api_key_issued(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        p = e.payload
        await conn.execute(
            insert(s.api_keys),
            {
                "id": e.aggregate_id,
                "tenant_id": e.tenant_id,
                "name": p["name"],
                "role": p["role"],
                "key_hash": p["key_hash"],
                "prefix": p["prefix"],
                "revoked": False,
                "created_by": e.actor,
                "created_at": e.occurred_at,
            },
        )

    async def _api_key_revoked(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await conn.execute(
            update(s.api_keys)
            .where(s.api_keys.c.id == e.aggregate_id)
            .values(revoked=True, revoked_at=e.occurred_at)
        )

    # --- executions --------------------------------------------------------------------
    async def _execution_requested(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        p = e.payload
        await conn.execute(
            insert(s.executions),
            {
                "id": e.aggregate_id,
                "tenant_id": e.tenant_id,
                "crew_id": p["crew_id"],
                "crew_name": p["crew"]["name"],
                "status": "requested",
                "inputs": p["inputs"],
                "tasks": [
                    {"name": t["name"], "agent": t["agent"], "status": "pending", "output": None}
                    for t in p["crew"]["tasks"]
                ],
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "total_tokens": 0,
                "cost": 0.0,
                "llm_calls": 0,
                "requested_by": e.actor,
                "requested_at": e.occurred_at,
                "updated_at": e.occurred_at,
                "version": e.version,
            },
        )

    async def _execution_event(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        if e.type == "ExecutionRequested":
            await self._execution_requested(conn, e)
        else:
            row = (
                await conn.execute(select(s.executions).where(s.executions.c.id == e.aggregate_id))
            ).first()
            if row is None:  # an execution whose request predates this projection's schema
                return
            values = execution_changes(dict(row._mapping), e)
            await conn.execute(
                update(s.executions)
                .where(s.executions.c.id == e.aggregate_id)
                .values(version=e.version, updated_at=e.occurred_at, **values)
            )
        task_name = e.payload.get("task_name")
        if task_name is None and isinstance(e.payload.get("call"), dict):
            task_name = e.payload["call"].get("task_name")
        await conn.execute(
            insert(s.execution_timeline),
            {
                "execution_id": e.aggregate_id,
                "version": e.version,
                "tenant_id": e.tenant_id,
                "position": e.position,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "task_name": task_name,
                "summary": timeline_summary(e),
                "data": timeline_data(e),
            },
        )


def agent_columns(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": spec["role"],
        "goal": spec["goal"],
        "backstory": spec["backstory"],
        "llm": spec["llm"],
        "tools": list(spec["tools"]),
        "allow_delegation": spec["allow_delegation"],
        "max_iter": spec["max_iter"],
    }


def crew_columns(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": spec["name"],
        "process": spec["process"],
        "agents": list(spec["agents"]),
        "tasks": list(spec["tasks"]),
        "manager_llm": spec.get("manager_llm"),
        "memory": bool(spec.get("memory", False)),
    }


def _with_task(tasks: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**t, **changes} if t["name"] == name else t for t in tasks]


def execution_changes(row: dict[str, Any], e: RecordedEvent) -> dict[str, Any]:
    """The columns an execution event changes (the Requested row is built on its own)."""
    p = e.payload
    match e.type:
        case "ExecutionStarted":
            return {"status": "running", "started_at": e.occurred_at}
        case "ExecutionTaskStarted":
            return {"tasks": _with_task(row["tasks"], p["task_name"], status="running")}
        case "ExecutionTaskCompleted":
            return {
                "tasks": _with_task(
                    row["tasks"], p["task_name"], status="completed", output=p["output"]
                )
            }
        case "ExecutionLlmCallCompleted":
            call = p["call"]
            prompt = int(call.get("prompt_tokens", 0))
            completion = int(call.get("completion_tokens", 0))
            return {
                "prompt_tokens": row["prompt_tokens"] + prompt,
                "completion_tokens": row["completion_tokens"] + completion,
                "total_tokens": row["total_tokens"] + prompt + completion,
                "cost": row["cost"] + float(call.get("cost", 0.0)),
                "llm_calls": row["llm_calls"] + 1,
            }
        case "ExecutionCompleted":
            return {"status": "completed", "result": p["result"], "finished_at": e.occurred_at}
        case "ExecutionFailed":
            return {"status": "failed", "error": p["error"], "finished_at": e.occurred_at}
        case "ExecutionCancelRequested":
            return {"status": "cancel_requested", "cancel_reason": p["reason"]}
        case "ExecutionCancelled":
            return {
                "status": "cancelled",
                "cancel_reason": p["reason"],
                "finished_at": e.occurred_at,
            }
    return {}


def timeline_summary(e: RecordedEvent) -> str:
    p = e.payload
    match e.type:
        case "ExecutionRequested":
            return f"requested crew {p['crew']['name']!r}"
        case "ExecutionStarted":
            return "started"
        case "ExecutionTaskStarted":
            return f"task {p['task_name']!r} started"
        case "ExecutionTaskCompleted":
            return f"task {p['task_name']!r} completed"
        case "ExecutionLlmCallCompleted":
            return f"LLM call to {p['call'].get('model', '?')}"
        case "ExecutionToolUsed":
            return f"tool {p['tool']!r} used"
        case "ExecutionCompleted":
            return "completed"
        case "ExecutionFailed":
            return f"failed: {p['error']}"
        case "ExecutionCancelRequested":
            return f"cancel requested: {p['reason']}"
        case "ExecutionCancelled":
            return f"cancelled: {p['reason']}"
    return e.type


def timeline_data(e: RecordedEvent) -> dict[str, Any]:
    if e.type == "ExecutionRequested":
        return {"inputs": e.payload["inputs"], "crew_id": e.payload["crew_id"]}
    return dict(e.payload)
