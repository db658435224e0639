"""The artifacts read model: the files a run's tasks produced (``output_file``), one row per
artifact, and their content once per SHA-256 (content-addressed: runs that write the same
bytes share them). Embedded, the read-model database is a SQLite file on disk; distributed,
PostgreSQL. The log holds every artifact's content too, so a rebuild restores them: in the
event, or (content None) as the task's output, which the executions read model has applied
from the same append by then."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType
from projections.read_models.base import Apply, ReadModel
from projections.read_models.executions import executions
from projections.schema import metadata

execution_artifacts = Table(
    "execution_artifacts",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("path", String(200), primary_key=True),
    Column("tenant_id", String(100), nullable=False),
    Column("task_name", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("execution_artifacts_tenant", "tenant_id", "execution_id"),
)

artifact_blobs = Table(
    "artifact_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)


class Artifacts(ReadModel):
    table = execution_artifacts

    def appliers(self) -> Mapping[EventType, Apply]:
        return {EventType.EXECUTION_ARTIFACT_STORED: self._stored}

    async def _stored(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        p = e.payload
        content = p["content"]
        if content is None:  # the task's output: applied to the execution's row already
            tasks = (await conn.execute(select(executions.c.tasks).where(
                executions.c.id == e.aggregate_id))).scalar_one_or_none()
            if tasks is None:  # an execution whose request predates this projection's schema
                return
            content = next(t["output"] for t in tasks if t["name"] == p["task_name"])
        data = content.encode("utf-8")
        if hashlib.sha256(data).hexdigest() != p["sha256"]:
            raise ValueError(f"artifact {p['path']!r} of execution {e.aggregate_id}: its "
                             "content does not match its SHA-256")
        blob = (await conn.execute(select(artifact_blobs.c.sha256)
                                   .where(artifact_blobs.c.sha256 == p["sha256"]))).first()
        if blob is None:
            await conn.execute(insert(artifact_blobs),
                               {"sha256": p["sha256"], "content": data})
        await conn.execute(insert(execution_artifacts), {
            "execution_id": e.aggregate_id, "path": p["path"], "tenant_id": e.tenant_id,
            "task_name": p["task_name"], "sha256": p["sha256"], "size": p["size"],
            "media_type": p["media_type"], "created_at": e.occurred_at, "position": e.position,
        })
