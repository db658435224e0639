"""Execution reads: the executions and timeline read models, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.auth import QueryServicesDep, Viewer
from api.executions.responses import ExecutionOut, ExecutionPage, Timeline
from api.problems import ResourceNotFound
from api.reads import POSITION_HEADER, Limit, MinPosition, Offset, one_or_404, page_body, wait_for
from domain.vocabulary import ExecutionStatus

router = APIRouter()


@router.get("", response_model=ExecutionPage)
async def list_executions(
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    status: ExecutionStatus | None = None,
    crew_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """List executions, newest first, filtered by status and crew."""
    await wait_for(services, min_position)
    page = await services.read_models.list_executions(
        principal.tenant_id, status=status, crew_id=crew_id, limit=limit, offset=offset
    )
    return page_body(page, limit, offset, response)


@router.get("/{execution_id}", response_model=ExecutionOut)
async def get_execution(
    execution_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """One execution: status, tasks, result or error, token usage."""
    await wait_for(services, min_position)
    found = await services.read_models.get_execution(principal.tenant_id, execution_id)
    return one_or_404(found, "execution", execution_id, response)


@router.get("/{execution_id}/timeline", response_model=Timeline)
async def get_timeline(
    execution_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Every step of an execution, in order."""
    await wait_for(services, min_position)
    found = await services.read_models.get_execution(principal.tenant_id, execution_id)
    if found.item is None:
        raise ResourceNotFound("execution", execution_id)
    page = await services.read_models.execution_timeline(principal.tenant_id, execution_id)
    response.headers[POSITION_HEADER] = str(page.position)
    return {"execution_id": execution_id, "position": page.position, "items": page.items}
