"""Agent writes: each turns a request into one command on the bus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from api.agents.requests import AgentBody
from api.writes import BusDep, WriteResult, write_context, written
from commands import messages as m
from commands.context import CommandContext
from domain.vocabulary import Role

router = APIRouter()
Create = Annotated[CommandContext, write_context(Role.EDITOR)]
Change = Annotated[CommandContext, write_context(Role.EDITOR, versioned=True)]


@router.post("", status_code=201, response_model=WriteResult)
async def register_agent(
    body: AgentBody, ctx: Create, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Register an agent."""
    result = await bus.dispatch(m.RegisterAgent(**body.model_dump()), ctx)
    return written(result, response, f"/api/v1/agents/{result.aggregate_id}")


@router.put("/{agent_id}", response_model=WriteResult)
async def update_agent(
    agent_id: str, body: AgentBody, ctx: Change, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Replace an agent's definition."""
    result = await bus.dispatch(m.UpdateAgent(agent_id=agent_id, **body.model_dump()), ctx)
    return written(result, response)


@router.delete("/{agent_id}", response_model=WriteResult)
async def archive_agent(agent_id: str, ctx: Change, bus: BusDep, response: Response
                        ) -> dict[str, Any]:
    """Archive an agent: its history stays, it leaves the lists."""
    return written(await bus.dispatch(m.ArchiveAgent(agent_id=agent_id), ctx), response)
