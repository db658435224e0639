"""Execution writes: request a run, cancel it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from api.executions.requests import CancelBody, ExecutionBody
from api.writes import BusDep, WriteResult, write_context, written
from commands import messages as m
from commands.context import CommandContext
from domain.vocabulary import Role

router = APIRouter()
Run = Annotated[CommandContext, write_context(Role.OPERATOR)]


@router.post("", status_code=202, response_model=WriteResult)
async def request_execution(
    body: ExecutionBody, ctx: Run, bus: BusDep, response: Response
) -> dict[str, Any]:
    """Request a run of a crew; it pins the crew and its agents as they are now."""
    result = await bus.dispatch(m.RequestExecution(**body.model_dump()), ctx)
    return written(result, response, f"/api/v1/executions/{result.aggregate_id}")


@router.post("/{execution_id}/cancel", status_code=202, response_model=WriteResult)
async def cancel_execution(
    execution_id: str, ctx: Run, bus: BusDep, response: Response,
    body: CancelBody | None = None,
) -> dict[str, Any]:
    """Cancel an execution: at once if it has not started, else at its next step."""
    reason = (body or CancelBody()).reason
    command = m.CancelExecution(execution_id=execution_id, reason=reason)
    return written(await bus.dispatch(command, ctx), response)
