"""The execution timeline read model: every event of a run, in order, with a summary. The
live feed (``projections.live``) sends the same entries straight from the log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table, Text, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.vocabulary import AggregateType, EventType, ExecutionStatus, events_of
from projections.read_models.base import Apply, ReadModel
from projections.schema import metadata

execution_timeline = Table(
    "execution_timeline",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(100), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("type", String(100), nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("task_name", String(200)),
    Column("summary", Text, nullable=False),
    Column("data", JSON, nullable=False),
)


class Timeline(ReadModel):
    table = execution_timeline

    def appliers(self) -> Mapping[EventType, Apply]:
        return {t: self._entry for t in events_of(AggregateType.EXECUTION)}

    async def _entry(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        entry = timeline_entry(e)
        await conn.execute(
            insert(execution_timeline),
            {"execution_id": e.aggregate_id, "tenant_id": e.tenant_id, **entry},
        )


def timeline_entry(event: RecordedEvent) -> dict[str, Any]:
    """The shape of a timeline row (the live feed sends it for an event from the log)."""
    task_name = event.payload.get("task_name")
    if task_name is None and isinstance(event.payload.get("call"), dict):
        task_name = event.payload["call"].get("task_name")
    return {
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "task_name": task_name,
        "summary": timeline_summary(event),
        "data": timeline_data(event),
    }


def timeline_summary(e: RecordedEvent) -> str:
    p = e.payload
    match e.type:
        case EventType.EXECUTION_REQUESTED:
            return f"requested crew {p['crew']['name']!r}"
        case EventType.EXECUTION_STARTED:
            return "started"
        case EventType.EXECUTION_TASK_STARTED:
            return f"task {p['task_name']!r} started"
        case EventType.EXECUTION_TASK_COMPLETED:
            return f"task {p['task_name']!r} completed"
        case EventType.EXECUTION_LLM_CALL_COMPLETED:
            return f"LLM call to {p['call'].get('model', '?')}"
        case EventType.EXECUTION_TOOL_USED:
            return f"tool {p['tool']!r} used"
        case EventType.EXECUTION_COMPLETED:
            return ExecutionStatus.COMPLETED.value
        case EventType.EXECUTION_FAILED:
            return f"failed: {p['error']}"
        case EventType.EXECUTION_CANCEL_REQUESTED:
            return f"cancel requested: {p['reason']}"
        case EventType.EXECUTION_CANCELLED:
            return f"cancelled: {p['reason']}"
    return str(e.type)


def timeline_data(e: RecordedEvent) -> dict[str, Any]:
    if e.type == EventType.EXECUTION_REQUESTED:
        return {"inputs": e.payload["inputs"], "crew_id": e.payload["crew_id"]}
    return dict(e.payload)
