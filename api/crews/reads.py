"""Crew reads: the crews read model, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.auth import QueryServicesDep, Viewer
from api.crews.responses import CrewOut, CrewPage
from api.reads import Limit, MinPosition, Offset, one_or_404, page_body, wait_for

router = APIRouter()


@router.get("", response_model=CrewPage)
async def list_crews(
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    include_archived: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """List the tenant's crews."""
    await wait_for(services, min_position)
    page = await services.read_models.list_crews(
        principal.tenant_id, include_archived=include_archived, limit=limit, offset=offset
    )
    return page_body(page, limit, offset, response)


@router.get("/{crew_id}", response_model=CrewOut)
async def get_agent(
    crew_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """One crew with its tasks; its ETag is the version to send as If-Match."""
    await wait_for(services, min_position)
    found = await services.read_models.get_agent(principal.tenant_id, crew_id)
    return one_or_404(found, "crew", crew_id, response)
