"""Crew writes: each turns a request into one command on the bus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from api.crews.requests import CrewBody
from api.writes import BusDep, WriteResult, write_context, written
from commands import messages as m
from commands.context import CommandContext
from domain.vocabulary import Role

router = APIRouter()
Create = Annotated[CommandContext, write_context(Role.EDITOR)]
Change = Annotated[CommandContext, write_context(Role.EDITOR, versioned=True)]


@router.post("", status_code=201, response_model=WriteResult)
async def define_crew(body: CrewBody, ctx: Create, bus: BusDep, response: Response
                      ) -> dict[str, Any]:
    """Define a crew of existing agents and its tasks."""
    result = await bus.dispatch(m.DefineCrew(**body.model_dump()), ctx)
    return written(result, response, f"/api/v1/crews/{result.aggregate_id}")


@router.put("/{crew_id}", response_model=WriteResult)
async def update_crew(
    crew_id: str, body: CrewBody, ctx: Change, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Replace a crew's definition (running executions keep their pinned snapshot)."""
    result = await bus.dispatch(m.UpdateCrew(crew_id=crew_id, **body.model_dump()), ctx)
    return written(result, response)


@router.delete("/{crew_id}", response_model=WriteResult)
async def archive_crew(crew_id: str, ctx: Change, bus: BusDep, response: Response
                       ) -> dict[str, Any]:
    """Archive a crew."""
    return written(await bus.dispatch(m.ArchiveCrew(crew_id=crew_id), ctx), response)
