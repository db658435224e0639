"""Query routes: they read projections only, never the event log (an import-linter contract)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from api import schemas
from api.auth import Admin, QueryServicesDep, Viewer
from api.problems import ApiError
from api.services import QueryServices, find_soon
from projections.live import follow_execution
from projections.queries import One, Page, verify_audit_rows

router = APIRouter(prefix="/api/v1")

MinPosition = Annotated[
    int | None,
    Query(ge=0, description="wait (bounded) until the read model reflects this log position"),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
POSITION_HEADER = "X-Kasal-Position"


async def wait_for(services: QueryServices, min_position: int | None) -> None:
    if min_position is None:
        return
    reached = await services.clock.wait_for(min_position, services.min_position_timeout)
    if reached < min_position:
        raise ApiError(
            503,
            "projection_behind",
            f"the read model is at position {reached}, not yet {min_position}; retry shortly",
            {"Retry-After": "1"},
        )


def page_body(page: Page, limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": page.items,
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "position": page.position,
    }


def one_or_404(found: One, kind: str, item_id: str, response: Response) -> dict[str, Any]:
    if found.item is None:
        raise ApiError(404, "not_found", f"{kind} {item_id} not found")
    response.headers[POSITION_HEADER] = str(found.position)
    response.headers["ETag"] = f'"{found.item["version"]}"'
    return found.item


@router.get("/agents", response_model=schemas.AgentPage, tags=["agents"])
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
    response.headers[POSITION_HEADER] = str(page.position)
    return page_body(page, limit, offset)


@router.get("/agents/{agent_id}", response_model=schemas.AgentOut, tags=["agents"])
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


@router.get("/crews", response_model=schemas.CrewPage, tags=["crews"])
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
    response.headers[POSITION_HEADER] = str(page.position)
    return page_body(page, limit, offset)


@router.get("/crews/{crew_id}", response_model=schemas.CrewOut, tags=["crews"])
async def get_crew(
    crew_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """One crew with its tasks."""
    await wait_for(services, min_position)
    found = await services.read_models.get_crew(principal.tenant_id, crew_id)
    return one_or_404(found, "crew", crew_id, response)


ExecutionStatus = Literal[
    "requested", "running", "cancel_requested", "completed", "failed", "cancelled"
]


@router.get("/executions", response_model=schemas.ExecutionPage, tags=["executions"])
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
    response.headers[POSITION_HEADER] = str(page.position)
    return page_body(page, limit, offset)


@router.get("/executions/{execution_id}", response_model=schemas.ExecutionOut, tags=["executions"])
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


@router.get(
    "/executions/{execution_id}/timeline", response_model=schemas.Timeline, tags=["executions"]
)
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
        raise ApiError(404, "not_found", f"execution {execution_id} not found")
    page = await services.read_models.execution_timeline(principal.tenant_id, execution_id)
    response.headers[POSITION_HEADER] = str(page.position)
    return {"execution_id": execution_id, "position": page.position, "items": page.items}


@router.get("/api-keys", response_model=schemas.ApiKeyPage, tags=["api keys"])
async def list_api_keys(
    principal: Admin,
    services: QueryServicesDep,
    response: Response,
    limit: Limit = 100,
    offset: Offset = 0,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """The tenant's API keys (never the keys themselves)."""
    await wait_for(services, min_position)
    page = await services.read_models.list_api_keys(principal.tenant_id, limit=limit, offset=offset)
    response.headers[POSITION_HEADER] = str(page.position)
    return page_body(page, limit, offset)


AggregateType = Literal["agent", "crew", "execution", "api_key"]


@router.get(
    "/audit/{aggregate_type}/{aggregate_id}", response_model=schemas.AuditTrail, tags=["audit"]
)
async def get_audit_trail(
    aggregate_type: AggregateType,
    aggregate_id: str,
    principal: Admin,
    services: QueryServicesDep,
    response: Response,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Who did what and when: the aggregate's events with actors, hashes and a chain check."""
    await wait_for(services, min_position)
    page = await services.read_models.audit_trail(principal.tenant_id, aggregate_type, aggregate_id)
    if not page.items:
        raise ApiError(404, "not_found", f"{aggregate_type} {aggregate_id} not found")
    valid, problem = verify_audit_rows(page.items)
    response.headers[POSITION_HEADER] = str(page.position)
    return {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "position": page.position,
        "chain_valid": valid,
        "chain_error": problem,
        "events": page.items,
    }


def sse(entry: dict[str, Any]) -> str:
    return f"id: {entry['version']}\nevent: {entry['type']}\ndata: {json.dumps(entry)}\n\n"


@router.get(
    "/executions/{execution_id}/events",
    tags=["executions"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_execution_events(
    execution_id: str,
    principal: Viewer,
    services: QueryServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
    min_position: MinPosition = None,
) -> StreamingResponse:
    """Live Server-Sent Events of one execution; reconnect with Last-Event-ID to resume."""
    if services.live is None:
        raise ApiError(503, "live_unavailable", "this process does not run the live feed")
    try:
        after = int(last_event_id) if last_event_id else 0
    except ValueError:
        raise ApiError(
            422, "invalid_last_event_id", "Last-Event-ID must be a version number"
        ) from None
    await wait_for(services, min_position)

    async def lookup() -> One | None:
        found = await services.read_models.get_execution(principal.tenant_id, execution_id)
        return found if found.item is not None else None

    # clients often connect right after requesting: look again as the projection catches up
    if await find_soon(services, lookup) is None:
        raise ApiError(404, "not_found", f"execution {execution_id} not found")
    live = services.live

    async def events() -> AsyncIterator[str]:
        async for entry in follow_execution(
            live, services.read_models, services.clock, principal.tenant_id, execution_id,
            after=after, keepalive_s=services.keepalive_s,
            catch_up_timeout=services.min_position_timeout,
        ):
            yield ": keepalive\n\n" if entry is None else sse(entry)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/search", response_model=schemas.SearchResults, tags=["search"])
async def search(
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    q: Annotated[str, Query(description="what to look for, in plain words", max_length=1000)],
    kind: Literal["agent", "crew", "execution"] | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Semantic search over the tenant's agents, crews and execution results."""
    if services.search is None:
        raise ApiError(503, "search_unavailable", "vector search is off (KASAL_VECTOR_SEARCH)")
    if not q.strip():
        raise ApiError(422, "validation_error", "q: must not be empty; say what to look for")
    if min_position is not None:
        reached = await services.search.clock.wait_for(
            min_position, services.min_position_timeout
        )
        if reached < min_position:
            raise ApiError(
                503, "projection_behind",
                f"the vector index is at position {reached}, not yet {min_position}; "
                "retry shortly", {"Retry-After": "1"},
            )
    result = await services.search.search(principal.tenant_id, q, kind=kind, limit=limit)
    response.headers[POSITION_HEADER] = str(result.position)
    return {
        "query": q,
        "model": result.model,
        "position": result.position,
        "items": [
            {"id": h.aggregate_id, "kind": h.kind, "score": h.score, "title": h.title,
             "text": h.text}
            for h in result.hits
        ],
    }
