"""The execution timeline read model: every event of a run, in order, with a summary. The
live feed (``projections.live``) sends the same entries straight from the log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    """Every readable event of an execution. (An execution whose request is unreadable has
    no executions row: its later events are kept here all the same, and shown with it.)"""

    table = execution_timeline
    aggregate = AggregateType.EXECUTION

    def appliers(self) -> Mapping[EventType, Apply]:
        return {t: self._entry for t in events_of(AggregateType.EXECUTION)}

    async def unknown(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        await self._entry(conn, e)  # summarised by its type

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


SUMMARIES: dict[EventType, Callable[[Mapping[str, Any]], str]] = {
    EventType.EXECUTION_REQUESTED: lambda p: f"requested crew {p['crew']['name']!r}",
    EventType.EXECUTION_STARTED: lambda _: "started",
    EventType.EXECUTION_TASK_STARTED: lambda p: f"task {p['task_name']!r} started",
    EventType.EXECUTION_TASK_COMPLETED: lambda p: f"task {p['task_name']!r} completed",
    EventType.EXECUTION_TASK_OUTPUT_CHECKED: lambda p: (
        f"task {p['task_name']!r} output: "
        + ("valid JSON" if p["problem"] is None else f"not valid: {p['problem']}")),
    EventType.EXECUTION_LLM_CALL_COMPLETED: lambda p: f"LLM call to {p['call'].get('model', '?')}",
    EventType.EXECUTION_TOOL_USED: lambda p: (
        f"tool {p['tool']!r} used" if p.get("error") is None
        else f"tool {p['tool']!r} failed: {p['error']}"),
    EventType.EXECUTION_ARTIFACT_STORED: lambda p: (
        f"task {p['task_name']!r} wrote {p['path']!r} ({p['size']} bytes)"),
    EventType.EXECUTION_COMPLETED: lambda _: ExecutionStatus.COMPLETED.value,
    EventType.EXECUTION_FAILED: lambda p: f"failed: {p['error']}",
    EventType.EXECUTION_CANCEL_REQUESTED: lambda p: f"cancel requested: {p['reason']}",
    EventType.EXECUTION_CANCELLED: lambda p: f"cancelled: {p['reason']}",
}


def timeline_summary(e: RecordedEvent) -> str:
    summary = SUMMARIES.get(EventType(e.type)) if e.type in SUMMARIES else None
    return summary(e.payload) if summary is not None else str(e.type)


def timeline_data(e: RecordedEvent) -> dict[str, Any]:
    if e.type == EventType.EXECUTION_REQUESTED:
        return {"inputs": e.payload["inputs"], "crew_id": e.payload["crew_id"]}
    if e.type == EventType.EXECUTION_ARTIFACT_STORED:  # its content: at /artifacts/{path}
        return {k: v for k, v in e.payload.items() if k != "content"}
    return dict(e.payload)
