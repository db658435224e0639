"""An execution's live events as Server-Sent Events: the timeline read model first, then
the live feed's entries (``projections.live``), never the log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from api.problems import InvalidLastEventId, LiveFeedUnavailable, ResourceNotFound
from api.reads import ViewerRead
from api.services import find_soon
from projections.live import follow_execution
from projections.queries import One

router = APIRouter()


def sse(entry: dict[str, Any]) -> str:
    return f"id: {entry['version']}\nevent: {entry['type']}\ndata: {json.dumps(entry)}\n\n"


@router.get(
    "/{execution_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_execution_events(
    execution_id: str, read: ViewerRead, last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live Server-Sent Events of one execution; reconnect with Last-Event-ID to resume."""
    services, tenant_id = read.services, read.tenant_id
    if services.live is None:
        raise LiveFeedUnavailable("this process does not run the live feed")
    after = 0
    if last_event_id:
        if not last_event_id.isascii() or not last_event_id.isdigit() or len(last_event_id) > 18:
            raise InvalidLastEventId("Last-Event-ID must be a version number")
        after = int(last_event_id)

    async def lookup() -> One | None:
        found = await services.read_models.get_execution(tenant_id, execution_id)
        return found if found.item is not None else None

    # clients often connect right after requesting: look again as the projection catches up
    if await find_soon(services, lookup) is None:
        raise ResourceNotFound("execution", execution_id)
    live = services.live

    async def events() -> AsyncIterator[str]:
        async for entry in follow_execution(
            live, services.read_models, services.clock, tenant_id, execution_id,
            after=after, keepalive_s=services.keepalive_s,
            catch_up_timeout=services.min_position_timeout,
        ):
            yield ": keepalive\n\n" if entry is None else sse(entry)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
