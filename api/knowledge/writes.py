"""Knowledge writes: each turns a request into one command on the bus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from api.knowledge.requests import KnowledgeBody
from api.writes import BusDep, WriteResult, write_context, written
from commands import messages as m
from commands.context import CommandContext
from domain.vocabulary import Role

router = APIRouter()
Create = Annotated[CommandContext, write_context(Role.EDITOR)]
Change = Annotated[CommandContext, write_context(Role.EDITOR, versioned=True)]


@router.post("", status_code=201, response_model=WriteResult)
async def add_knowledge_source(
    body: KnowledgeBody, ctx: Create, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Add a knowledge source: agents and crews name its id in knowledge_sources."""
    result = await bus.dispatch(m.AddKnowledgeSource(**body.model_dump()), ctx)
    return written(result, response, f"/api/v1/knowledge/{result.aggregate_id}")


@router.delete("/{knowledge_id}", response_model=WriteResult)
async def archive_knowledge_source(knowledge_id: str, ctx: Change, bus: BusDep,
                                   response: Response) -> dict[str, Any]:
    """Archive a knowledge source: no new agent or crew may name it; those that do keep it."""
    return written(
        await bus.dispatch(m.ArchiveKnowledgeSource(knowledge_id=knowledge_id), ctx), response)
