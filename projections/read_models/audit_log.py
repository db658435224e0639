"""The audit log read model: every event's envelope as stored (ciphertext where encrypted),
hashes included, so an admin sees who did what and when and can re-check the chain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import ENVELOPE_FIELDS, RecordedEvent, verify_chain
from domain.errors import TamperedEvent
from domain.vocabulary import EventType
from projections.read_models.base import Apply, ReadModel
from projections.schema import metadata

audit_log = Table(
    "audit_log",
    metadata,
    *(Column(name, String(size) if size else Integer, nullable=False,
             primary_key=name in ("aggregate_id", "version"))
      for name, size in ENVELOPE_FIELDS.items()),
    Column("position", BigInteger, nullable=False, index=True),  # kasal audit verify's walk
    Column("payload", JSON, nullable=False),  # as stored (ciphertext when encrypted)
)
ENVELOPE = [c.name for c in audit_log.columns if c.name != "payload"]


class AuditLog(ReadModel):
    table = audit_log
    reads_unreadable = True  # the trail keeps what no key can read any more

    def appliers(self) -> Mapping[EventType, Apply]:
        return {t: self.apply for t in EventType}

    def wants(self, event: RecordedEvent) -> bool:
        return True  # every event, of any type, readable or not

    async def apply(self, conn: AsyncConnection, e: RecordedEvent) -> None:
        stored = e.stored_payload if e.stored_payload is not None else e.payload
        await conn.execute(
            insert(audit_log),
            {**{name: getattr(e, name) for name in ENVELOPE}, "payload": dict(stored)},
        )


def verify_audit_rows(rows: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """Re-check the hash chain of an audit trail as projected (no key needed)."""
    fields = [k for k in RecordedEvent.__dataclass_fields__ if k != "stored_payload"]
    try:
        verify_chain(RecordedEvent(**{k: row[k] for k in fields}) for row in rows)
    except TamperedEvent as error:
        return False, str(error)
    return True, None
