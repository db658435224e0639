"""What every read route shares: query parameters, read-your-writes, pages and ETags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.problems import ProjectionBehind, ResourceNotFound
from api.services import QueryServices
from projections.queries import One, Page

MinPosition = Annotated[
    int | None,
    Query(ge=0, description="wait (bounded) until the read model reflects this log position"),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
POSITION_HEADER = "X-Kasal-Position"


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PageOut(Model):
    total: int
    limit: int
    offset: int
    position: int = Field(description="the log position these rows reflect")


async def wait_for(services: QueryServices, min_position: int | None) -> None:
    if min_position is None:
        return
    reached = await services.clock.wait_for(min_position, services.min_position_timeout)
    if reached < min_position:
        raise ProjectionBehind("the read model", reached, min_position)


def page_body(page: Page, limit: int, offset: int, response: Response) -> dict[str, Any]:
    response.headers[POSITION_HEADER] = str(page.position)
    return {
        "items": page.items,
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "position": page.position,
    }


def one_or_404(found: One, kind: str, item_id: str, response: Response) -> dict[str, Any]:
    if found.item is None:
        raise ResourceNotFound(kind, item_id)
    response.headers[POSITION_HEADER] = str(found.position)
    response.headers["ETag"] = f'"{found.item["version"]}"'
    return found.item
