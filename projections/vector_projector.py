"""The vector projector: agents, crews and execution results, embedded into the vector index.

Point ids are derived from (kind, aggregate id), so an upsert replayed or redelivered lands
on the same point with the same vector: nothing changes. The tracked position is written
after the index accepted the batch (Qdrant has no transaction shared with SQL); a crash in
between replays the batch, which is harmless for the same reason. Archived agents and crews
are deleted from the index.

Crew memory is a projection too: every ``ExecutionTaskCompleted`` becomes a ``memory``
point (id from execution and task; payload ``extra``: crew_id, execution_id, task and the
event's log ``position``), which later runs of that crew recall (``search_memory``) when
the crew has ``memory`` on. Every crew's outputs are indexed, so memory can be turned on
later and still find the past.

Knowledge likewise: each chunk of an ``EventType.KNOWLEDGE_SOURCE_ADDED`` is a ``knowledge``
point (id from source and chunk index), recalled by runs of the agents and crews that name
the source (``search_knowledge``). Archiving a source keeps its points: what names it keeps
it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType
from projections.connections import reading
from projections.read_models.executions import executions
from projections.schema import create_tables
from projections.tracking import forget_position, set_position, tracked_position
from projections.vectors import Embedder, Kind, VectorIndex, VectorPoint, collection_name

POINT_NAMESPACE = uuid.UUID("6b617361-6c00-4000-8000-766563746f72")  # "kasal" ... "vector"
MAX_TEXT = 4000


def point_id(kind: Kind, aggregate_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{kind}:{aggregate_id}"))


def agent_text(spec: dict[str, Any]) -> tuple[str, str]:
    return spec["role"], f"{spec['role']}. {spec['goal']} {spec['backstory']}"


def crew_text(spec: dict[str, Any]) -> tuple[str, str]:
    tasks = " ".join(f"{t['name']}: {t['description']}" for t in spec["tasks"])
    return spec["name"], f"{spec['name']}. {tasks}"


def memory_text(task_name: str, output: str) -> str:
    """A task output as crew memory recalls it (what the next runs' prompts show)."""
    return f"{task_name}: {output}"[:MAX_TEXT]


class VectorProjector:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        engine: AsyncEngine,
        reader: AsyncEngine | None = None,
        *,
        collection_prefix: str = "kasal",
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.engine = engine  # the SQL read-model database: tracking and crew names
        # reads of the position (every search) must not queue on the writer's lock
        self.reader = reader or engine
        self.collection = collection_name(embedder.model, embedder.dimension, collection_prefix)
        self.name = f"vectors:{self.collection}"
        self.crew_of_execution: dict[str, tuple[str, str]] = {}

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await create_tables(conn)
        await self.index.ensure_collection(
            self.collection, self.embedder.dimension, self.embedder.model
        )

    async def position(self) -> int:
        async with reading(self.reader) as conn:
            return await tracked_position(conn, self.name)

    async def rebuild(self) -> None:
        """Forget the tracked position: the runtime re-embeds everything from the log."""
        async with self.engine.begin() as conn:
            await forget_position(conn, self.name)

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        start = await self.position()
        fresh = [e for e in events if e.position > start]
        if not fresh:
            return start
        # the last change of each point in the batch wins, in log order
        changes: dict[str, VectorPoint | None] = {}
        for event in fresh:
            for change in [await self._change(event), *self._knowledge(event)]:
                if change is not None:
                    changes[change[0]] = change[1]
        upserts = [p for p in changes.values() if p is not None]
        deletes = [pid for pid, p in changes.items() if p is None]
        if upserts:
            vectors = await asyncio.to_thread(self.embedder.embed, [p.text for p in upserts])
            points = [
                VectorPoint(**{**p.__dict__, "vector": v})
                for p, v in zip(upserts, vectors, strict=True)
            ]
            await self.index.upsert(self.collection, points)
        if deletes:
            await self.index.delete(self.collection, deletes)
        position = fresh[-1].position
        async with self.engine.begin() as conn:
            await set_position(conn, self.name, position, await tracked_position(conn, self.name))
        return position

    async def _change(self, e: RecordedEvent) -> tuple[str, VectorPoint | None] | None:
        p = e.payload
        match e.type:
            case EventType.AGENT_REGISTERED | EventType.AGENT_UPDATED:
                title, text = agent_text(p["spec"])
                return self._point("agent", e, title, text)
            case EventType.CREW_DEFINED | EventType.CREW_UPDATED:
                title, text = crew_text(p["spec"])
                return self._point("crew", e, title, text, process=p["spec"]["process"])
            case EventType.AGENT_ARCHIVED:
                return point_id("agent", e.aggregate_id), None
            case EventType.CREW_ARCHIVED:
                return point_id("crew", e.aggregate_id), None
            case EventType.EXECUTION_REQUESTED:
                self.crew_of_execution[e.aggregate_id] = (p["crew_id"], p["crew"]["name"])
            case EventType.EXECUTION_TASK_COMPLETED:
                # crew memory: every crew's task outputs (memory may be turned on later)
                crew_id, _ = await self._crew_of(e.aggregate_id)
                task, output = str(p["task_name"]), str(p["output"])
                pid = point_id("memory", f"{e.aggregate_id}:{task}")
                return pid, VectorPoint(
                    id=pid, vector=[], tenant_id=e.tenant_id, kind="memory",
                    aggregate_id=e.aggregate_id, title=task[:200],
                    text=memory_text(task, output),
                    extra={"crew_id": crew_id, "execution_id": e.aggregate_id, "task": task,
                           "position": e.position},
                )
            case EventType.EXECUTION_COMPLETED:
                crew_id, crew_name = await self._crew_of(e.aggregate_id)
                self.crew_of_execution.pop(e.aggregate_id, None)
                return self._point("execution", e, f"result of {crew_name}", str(p["result"]),
                                   crew_id=crew_id)
            case EventType.EXECUTION_FAILED | EventType.EXECUTION_CANCELLED:
                self.crew_of_execution.pop(e.aggregate_id, None)
        return None

    def _knowledge(self, e: RecordedEvent) -> list[tuple[str, VectorPoint]]:
        if e.type != EventType.KNOWLEDGE_SOURCE_ADDED:
            return []
        points = []
        for index, chunk in enumerate(e.payload["chunks"]):
            pid = point_id("knowledge", f"{e.aggregate_id}:{index}")
            points.append((pid, VectorPoint(
                id=pid, vector=[], tenant_id=e.tenant_id, kind="knowledge",
                aggregate_id=e.aggregate_id, title=str(e.payload["name"])[:200],
                text=str(chunk)[:MAX_TEXT], extra={"chunk": index, "position": e.position})))
        return points

    def _point(self, kind: Kind, e: RecordedEvent, title: str, text: str,
               **extra: Any) -> tuple[str, VectorPoint]:
        pid = point_id(kind, e.aggregate_id)
        return pid, VectorPoint(
            id=pid, vector=[], tenant_id=e.tenant_id, kind=kind, aggregate_id=e.aggregate_id,
            title=title[:200], text=text[:MAX_TEXT], extra=extra,
        )

    async def _crew_of(self, execution_id: str) -> tuple[str, str]:
        known = self.crew_of_execution.get(execution_id)
        if known is not None:
            return known
        async with self.engine.connect() as conn:  # requested before this process started
            row = (await conn.execute(
                select(executions.c.crew_id, executions.c.crew_name)
                .where(executions.c.id == execution_id)
            )).first()
        return (row.crew_id, row.crew_name) if row else ("", "a crew")
