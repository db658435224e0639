"""Agent reads: the agents read model, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.agents.responses import AgentOut, AgentPage
from api.auth import QueryServicesDep, Viewer
from api.reads import Limit, MinPosition, Offset, one_or_404, page_body, wait_for

router = APIRouter()


@router.get("", response_model=AgentPage)
async def list_agents(
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    include_archived: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """List the tenant's agents."""
    await wait_for(services, min_position)
    page = await services.read_models.list_agents(
        principal.tenant_id, include_archived=include_archived, limit=limit, offset=offset
    )
    return page_body(page, limit, offset, response)


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(
    agent_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """One agent; its ETag is the version to send as If-Match."""
    await wait_for(services, min_position)
    found = await services.read_models.get_agent(principal.tenant_id, agent_id)
    return one_or_404(found, "agent", agent_id, response)
