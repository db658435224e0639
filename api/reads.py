"""What every read route shares: the dependency that checks the caller's role, waits for
``min_position`` (read your writes) and hands the route its read context; pages and ETags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, QueryServicesDep, require
from api.problems import PositionAhead, ProjectionBehind, ResourceNotFound
from api.services import QueryServices, log_head
from domain.vocabulary import Role
from projections.queries import One, Page, ReadModels

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


FIRST_WAIT_S = 0.25  # a position a write just answered with is usually reached by then


async def wait_for(services: QueryServices, min_position: int | None) -> None:
    if min_position is None or min_position <= services.clock.position:
        return
    timeout = services.min_position_timeout
    # the common case (read your write) waits without asking the log anything; only a
    # position not reached at once is checked against the log's head
    reached = await services.clock.wait_for(min_position, min(FIRST_WAIT_S, timeout))
    if reached >= min_position:
        return
    head = await log_head(services)
    if head is not None and min_position > head:  # no write answered with it: no waiting
        raise PositionAhead(min_position, head)
    reached = await services.clock.wait_for(min_position, max(0.0, timeout - FIRST_WAIT_S))
    if reached < min_position:
        raise ProjectionBehind("the read model", reached, min_position)


@dataclass(frozen=True)
class Read:
    """A read route's context: the caller, the read models (caught up to ``min_position``)
    and the response, whose position and ETag headers the answer sets."""

    principal: Principal
    services: QueryServices
    response: Response

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    @property
    def models(self) -> ReadModels:
        return self.services.read_models

    def at(self, position: int) -> int:
        self.response.headers[POSITION_HEADER] = str(position)
        return position

    def page(self, page: Page, limit: int, offset: int) -> dict[str, Any]:
        return {"items": page.items, "total": page.total, "limit": limit, "offset": offset,
                "position": self.at(page.position)}

    def one(self, found: One, kind: str, item_id: str) -> dict[str, Any]:
        if found.item is None:
            raise ResourceNotFound(kind, item_id)
        self.at(found.position)
        self.response.headers["ETag"] = f'"{found.item["version"]}"'
        return found.item


def read_context(role: Role) -> Any:
    caller = require(role)  # a default value, not an annotation: evaluated here, now

    async def read(response: Response, services: QueryServicesDep,
                   min_position: MinPosition = None, principal: Principal = caller) -> Read:
        await wait_for(services, min_position)
        return Read(principal, services, response)

    return Depends(read)


ViewerRead = Annotated[Read, read_context(Role.VIEWER)]
AdminRead = Annotated[Read, read_context(Role.ADMIN)]
