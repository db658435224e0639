"""Execution reads: the executions and timeline read models, never the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.executions.responses import ExecutionOut, ExecutionPage, Timeline
from api.problems import ResourceNotFound
from api.reads import Limit, Offset, ViewerRead
from domain.vocabulary import ExecutionStatus

router = APIRouter()


@router.get("", response_model=ExecutionPage)
async def list_executions(
    read: ViewerRead, status: ExecutionStatus | None = None, crew_id: str | None = None,
    limit: Limit = 50, offset: Offset = 0,
) -> dict[str, Any]:
    """List executions, newest first, filtered by status and crew."""
    page = await read.models.list_executions(read.tenant_id, status=status, crew_id=crew_id,
                                             limit=limit, offset=offset)
    return read.page(page, limit, offset)


@router.get("/{execution_id}", response_model=ExecutionOut)
async def get_execution(execution_id: str, read: ViewerRead) -> dict[str, Any]:
    """One execution: status, tasks, result or error, token usage."""
    found = await read.models.get_execution(read.tenant_id, execution_id)
    return read.one(found, "execution", execution_id)


@router.get("/{execution_id}/timeline", response_model=Timeline)
async def get_timeline(execution_id: str, read: ViewerRead) -> dict[str, Any]:
    """Every step of an execution, in order."""
    if (await read.models.get_execution(read.tenant_id, execution_id)).item is None:
        raise ResourceNotFound("execution", execution_id)
    page = await read.models.execution_timeline(read.tenant_id, execution_id)
    return {"execution_id": execution_id, "position": read.at(page.position),
            "items": page.items}
