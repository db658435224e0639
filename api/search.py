"""Semantic search over the tenant's agents, crews and execution results (the vector read
model, never the log)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from api.auth import QueryServicesDep, Viewer
from api.problems import InvalidQuery, PositionAhead, ProjectionBehind, SearchUnavailable
from api.reads import POSITION_HEADER, MinPosition, Model
from api.services import log_head

router = APIRouter(prefix="/api/v1/search", tags=["search"])
SearchKind = Literal["agent", "crew", "execution"]


class SearchHit(Model):
    id: str = Field(description="the agent, crew or execution id")
    kind: SearchKind
    score: float = Field(description="cosine similarity, higher is closer")
    title: str
    text: str


class SearchResults(Model):
    query: str
    model: str = Field(description="the embedding model the index was built with")
    position: int = Field(description="the log position the vector index reflects")
    items: list[SearchHit]


@router.get("", response_model=SearchResults)
async def search(
    principal: Viewer,
    services: QueryServicesDep,
    response: Response,
    q: Annotated[str, Query(description="what to look for, in plain words", max_length=1000)],
    kind: SearchKind | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Semantic search over the tenant's agents, crews and execution results."""
    if services.search is None:
        raise SearchUnavailable("vector search is off (KASAL_VECTOR_SEARCH)")
    if not q.strip():
        raise InvalidQuery("q: must not be empty; say what to look for")
    if min_position is not None and min_position > services.search.clock.position:
        head = await log_head(services)
        if head is not None and min_position > head:  # no write answered with it
            raise PositionAhead(min_position, head)
        timeout = services.min_position_timeout
        reached = await services.search.clock.wait_for(min_position, timeout)
        if reached < min_position:
            raise ProjectionBehind("the vector index", reached, min_position)
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
