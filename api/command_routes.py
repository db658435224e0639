"""Command routes: each turns a request into one command on the bus."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from api import schemas
from api.auth import Admin, Editor, Operator, generate_key, hash_key, key_prefix
from api.problems import ApiError
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.ports import AppendResult
from domain.api_key import ROLES
from projections.queries import Principal

router = APIRouter(prefix="/api/v1")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def get_bus(request: Request) -> CommandBus:
    bus: CommandBus = request.app.state.bus
    return bus


BusDep = Annotated[CommandBus, Depends(get_bus)]
IdempotencyKey = Annotated[
    str | None,
    Header(description="retrying with the same key returns the first result, appends nothing"),
]
IfMatch = Annotated[
    str | None, Header(description="the version you read (ETag); a stale one is 409")
]


def context(
    principal: Principal,
    idempotency_key: str | None,
    if_match: str | None = None,
    request: Request | None = None,
) -> CommandContext:
    expected: int | None = None
    if if_match is not None:
        raw = if_match.strip().removeprefix("W/").strip('"')
        if not raw.isdigit():
            raise ApiError(422, "invalid_if_match", 'If-Match must be a version number, e.g. "3"')
        expected = int(raw)
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1-200 printable characters"
        )
    correlation = request.headers.get("X-Correlation-ID", "") if request else ""
    kwargs: dict[str, str] = {"correlation_id": correlation[:200]} if correlation else {}
    if idempotency_key:
        kwargs["command_id"] = idempotency_key
    return CommandContext(
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        expected_version=expected,
        **kwargs,
    )


def written(
    result: AppendResult, response: Response, location: str | None = None
) -> dict[str, object]:
    response.headers["ETag"] = f'"{result.version}"'
    if location:
        response.headers["Location"] = location
    return {"id": result.aggregate_id, "version": result.version, "position": result.position}


# --- agents -------------------------------------------------------------------------
@router.post("/agents", status_code=201, response_model=schemas.WriteResult, tags=["agents"])
async def register_agent(
    body: m.RegisterAgent,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Register an agent."""
    result = await bus.dispatch(body, context(principal, idempotency_key, request=request))
    return written(result, response, f"/api/v1/agents/{result.aggregate_id}")


@router.put("/agents/{agent_id}", response_model=schemas.WriteResult, tags=["agents"])
async def update_agent(
    agent_id: str,
    body: m.RegisterAgent,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> dict[str, object]:
    """Replace an agent's definition."""
    command = m.UpdateAgent(agent_id=agent_id, **body.model_dump())
    result = await bus.dispatch(command, context(principal, idempotency_key, if_match, request))
    return written(result, response)


@router.delete("/agents/{agent_id}", response_model=schemas.WriteResult, tags=["agents"])
async def archive_agent(
    agent_id: str,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> dict[str, object]:
    """Archive an agent: its history stays, it leaves the lists."""
    result = await bus.dispatch(
        m.ArchiveAgent(agent_id=agent_id), context(principal, idempotency_key, if_match, request)
    )
    return written(result, response)


# --- crews --------------------------------------------------------------------------
@router.post("/crews", status_code=201, response_model=schemas.WriteResult, tags=["crews"])
async def define_crew(
    body: m.DefineCrew,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Define a crew of existing agents and its tasks."""
    result = await bus.dispatch(body, context(principal, idempotency_key, request=request))
    return written(result, response, f"/api/v1/crews/{result.aggregate_id}")


@router.put("/crews/{crew_id}", response_model=schemas.WriteResult, tags=["crews"])
async def update_crew(
    crew_id: str,
    body: m.DefineCrew,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> dict[str, object]:
    """Replace a crew's definition (running executions keep their pinned snapshot)."""
    command = m.UpdateCrew(crew_id=crew_id, **body.model_dump())
    result = await bus.dispatch(command, context(principal, idempotency_key, if_match, request))
    return written(result, response)


@router.delete("/crews/{crew_id}", response_model=schemas.WriteResult, tags=["crews"])
async def archive_crew(
    crew_id: str,
    principal: Editor,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> dict[str, object]:
    """Archive a crew."""
    result = await bus.dispatch(
        m.ArchiveCrew(crew_id=crew_id), context(principal, idempotency_key, if_match, request)
    )
    return written(result, response)


# --- executions ---------------------------------------------------------------------
@router.post(
    "/executions", status_code=202, response_model=schemas.WriteResult, tags=["executions"]
)
async def request_execution(
    body: m.RequestExecution,
    principal: Operator,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Request a run of a crew; it pins the crew and its agents as they are now."""
    result = await bus.dispatch(body, context(principal, idempotency_key, request=request))
    return written(result, response, f"/api/v1/executions/{result.aggregate_id}")


class CancelBody(m.Command):
    reason: Annotated[str, Body(max_length=1000)] = "cancelled by user"


@router.post(
    "/executions/{execution_id}/cancel",
    status_code=202,
    response_model=schemas.WriteResult,
    tags=["executions"],
)
async def cancel_execution(
    execution_id: str,
    principal: Operator,
    bus: BusDep,
    request: Request,
    response: Response,
    body: CancelBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Cancel an execution: at once if it has not started, else at its next step."""
    reason = body.reason if body else "cancelled by user"
    command = m.CancelExecution(execution_id=execution_id, reason=reason)
    result = await bus.dispatch(command, context(principal, idempotency_key, request=request))
    return written(result, response)


# --- api keys -----------------------------------------------------------------------
class ApiKeyBody(m.Command):
    name: m.Name
    role: Annotated[str, Body(description=f"one of {', '.join(ROLES)}")]


@router.post("/api-keys", status_code=201, response_model=schemas.IssuedKey, tags=["api keys"])
async def issue_api_key(
    body: ApiKeyBody,
    principal: Admin,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Issue an API key for your tenant; the key is in this response only."""
    if body.role not in ROLES:
        raise ApiError(422, "validation_error", f"role must be one of {', '.join(ROLES)}")
    if idempotency_key:
        raise ApiError(
            422,
            "invalid_idempotency_key",
            "api keys cannot be issued idempotently: a retry would need the secret again",
        )
    key = generate_key()
    command = m.IssueApiKey(
        name=body.name, role=body.role, key_hash=hash_key(key), prefix=key_prefix(key)
    )
    result = await bus.dispatch(command, context(principal, None, request=request))
    return {
        **written(result, response, f"/api/v1/api-keys/{result.aggregate_id}"),
        "key": key,
        "prefix": key_prefix(key),
        "role": body.role,
        "tenant_id": principal.tenant_id,
    }


@router.delete("/api-keys/{key_id}", response_model=schemas.WriteResult, tags=["api keys"])
async def revoke_api_key(
    key_id: str,
    principal: Admin,
    bus: BusDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, object]:
    """Revoke an API key at once."""
    result = await bus.dispatch(
        m.RevokeApiKey(api_key_id=key_id), context(principal, idempotency_key, request=request)
    )
    return written(result, response)
