"""The audit trail of one aggregate, from the audit log read model (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from api.problems import ResourceNotFound
from api.reads import AdminRead, Model
from domain.vocabulary import AggregateType
from projections.read_models.audit_log import verify_audit_rows

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEvent(Model):
    event_id: str
    version: int
    position: int
    type: str
    schema_version: int
    occurred_at: str
    actor: str
    command_id: str
    correlation_id: str
    causation_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditTrail(Model):
    aggregate_type: AggregateType
    aggregate_id: str
    position: int
    chain_valid: bool = Field(description="every event's hash and link verified")
    chain_error: str | None
    events: list[AuditEvent]


@router.get("/{aggregate_type}/{aggregate_id}", response_model=AuditTrail)
async def get_audit_trail(aggregate_type: AggregateType, aggregate_id: str, read: AdminRead
                          ) -> dict[str, Any]:
    """Who did what and when: the aggregate's events with actors, hashes and a chain check."""
    page = await read.models.audit_trail(read.tenant_id, aggregate_type, aggregate_id)
    if not page.items:
        raise ResourceNotFound(aggregate_type.label, aggregate_id)
    valid, problem = verify_audit_rows(page.items)
    return {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "position": read.at(page.position),
        "chain_valid": valid,
        "chain_error": problem,
        "events": page.items,
    }
