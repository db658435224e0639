"""The executions read model: one row per run, its status, tasks, result and usage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.usage import Usage
from domain.vocabulary import AggregateType, EventType, TaskStatus, events_of
from domain.vocabulary import ExecutionStatus as Status
from projections.read_models.base import Apply, ReadModel, update_row
from projections.schema import metadata

executions = Table(
    "executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(100), nullable=False),
    Column("crew_id", String(64), nullable=False),
    Column("crew_name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("tasks", JSON, nullable=False),  # [{name, agent, status, output}]
    Column("result", Text),
    Column("error", Text),
    Column("cancel_reason", Text),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("total_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("llm_calls", Integer, nullable=False, default=0),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", String(40), nullable=False),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Index("executions_tenant_status", "tenant_id", "status"),
    Index("executions_tenant_crew", "tenant_id", "crew_id"),
)


class Executions(ReadModel):
    table = executions
    aggregate = AggregateType.EXECUTION

    def appliers(self) -> Mapping[EventType, Apply]:
        changes = {t: self._changed for t in events_of(AggregateType.EXECUTION)}
        return {**changes, EventType.EXECUTION_REQUESTED: self._requested}

    async def _requested(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        p = e.payload
        await conn.execute(
            insert(executions),
            {
                "id": e.aggregate_id,
                "tenant_id": e.tenant_id,
                "crew_id": p["crew_id"],
                "crew_name": p["crew"]["name"],
                "status": Status.REQUESTED.value,
                "inputs": p["inputs"],
                "tasks": [
                    {"name": t["name"], "agent": t["agent"], "status": TaskStatus.PENDING.value,
                     "output": None}
                    for t in p["crew"]["tasks"]
                ],
                **Usage().as_columns(),
                "requested_by": e.actor,
                "requested_at": e.occurred_at,
                "updated_at": e.occurred_at,
                "version": e.version,
            },
        )

    async def unknown(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._changed(conn, e)  # its version and time move; nothing else is known

    async def _changed(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        row = (await conn.execute(select(executions).where(executions.c.id == e.aggregate_id))
               ).first()
        if row is None:  # an execution whose request predates this projection's schema
            return
        await update_row(conn, executions, e, **execution_changes(dict(row._mapping), e))


def _with_task(tasks: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**t, **changes} if t["name"] == name else t for t in tasks]


def _interrupted(tasks: list[dict[str, Any]], status: TaskStatus) -> list[dict[str, Any]]:
    """The tasks still running when the execution ended take its end (pending ones stay)."""
    return [{**t, "status": status.value} if t["status"] == TaskStatus.RUNNING else t
            for t in tasks]


def execution_changes(row: Mapping[str, Any], e: RecordedEvent) -> dict[str, Any]:
    """The columns an execution event changes (the Requested row is built on its own)."""
    p = e.payload
    match e.type:
        case EventType.EXECUTION_STARTED:
            return {"status": Status.RUNNING.value, "started_at": e.occurred_at}
        case EventType.EXECUTION_TASK_STARTED:
            return {"tasks": _with_task(row["tasks"], p["task_name"],
                                        status=TaskStatus.RUNNING.value)}
        case EventType.EXECUTION_TASK_COMPLETED:
            return {"tasks": _with_task(row["tasks"], p["task_name"],
                                        status=TaskStatus.COMPLETED.value, output=p["output"])}
        case EventType.EXECUTION_TASK_OUTPUT_CHECKED:
            return {"tasks": _with_task(row["tasks"], p["task_name"],
                                        output_json=p["output_json"],
                                        output_problem=p["problem"])}
        case EventType.EXECUTION_ARTIFACT_STORED:
            return {"tasks": _with_task(row["tasks"], p["task_name"], artifact=p["path"])}
        case EventType.EXECUTION_LLM_CALL_COMPLETED:
            return Usage.from_columns(row).add_call(p["call"]).as_columns()
        case EventType.EXECUTION_COMPLETED:
            return {"status": Status.COMPLETED.value, "result": p["result"],
                    "finished_at": e.occurred_at}
        case EventType.EXECUTION_FAILED:
            return {"status": Status.FAILED.value, "error": p["error"],
                    "finished_at": e.occurred_at,
                    "tasks": _interrupted(row["tasks"], TaskStatus.FAILED)}
        case EventType.EXECUTION_CANCEL_REQUESTED:
            return {"status": Status.CANCEL_REQUESTED.value, "cancel_reason": p["reason"]}
        case EventType.EXECUTION_CANCELLED:
            return {"status": Status.CANCELLED.value, "cancel_reason": p["reason"],
                    "finished_at": e.occurred_at,
                    "tasks": _interrupted(row["tasks"], TaskStatus.CANCELLED)}
    return {}
