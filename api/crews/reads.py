"""Crew reads: the crews read model, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.crews.responses import CrewOut, CrewPage
from api.reads import Limit, Offset, ViewerRead

router = APIRouter()


@router.get("", response_model=CrewPage)
async def list_crews(read: ViewerRead, include_archived: bool = False, limit: Limit = 50,
                     offset: Offset = 0) -> dict[str, Any]:
    """List the tenant's crews."""
    page = await read.models.list_crews(read.tenant_id, include_archived=include_archived,
                                        limit=limit, offset=offset)
    return read.page(page, limit, offset)


@router.get("/{crew_id}", response_model=CrewOut)
async def get_crew(crew_id: str, read: ViewerRead) -> dict[str, Any]:
    """One crew with its tasks; its ETag is the version to send as If-Match."""
    return read.one(await read.models.get_crew(read.tenant_id, crew_id), "crew", crew_id)
