"""Agent reads: the agents read model, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.agents.responses import AgentOut, AgentPage
from api.reads import Limit, Offset, ViewerRead

router = APIRouter()


@router.get("", response_model=AgentPage)
async def list_agents(read: ViewerRead, include_archived: bool = False, limit: Limit = 50,
                      offset: Offset = 0) -> dict[str, Any]:
    """List the tenant's agents."""
    page = await read.models.list_agents(read.tenant_id, include_archived=include_archived,
                                         limit=limit, offset=offset)
    return read.page(page, limit, offset)


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: str, read: ViewerRead) -> dict[str, Any]:
    """One agent; its ETag is the version to send as If-Match."""
    return read.one(await read.models.get_agent(read.tenant_id, agent_id), "agent", agent_id)
