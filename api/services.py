"""What the query side of the API is given: read models, the projection clock, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from projections.clock import ProjectionClock
from projections.live import LiveExecutionFeed
from projections.queries import ReadModels
from projections.search import VectorSearch

if TYPE_CHECKING:
    from api.tokens import TokenVerifier

T = TypeVar("T")


@dataclass(frozen=True)
class QueryServices:
    read_models: ReadModels
    clock: ProjectionClock
    min_position_timeout: float = 5.0
    live: LiveExecutionFeed | None = None
    catch_up_s: float = 2.0  # how long an unknown key or execution waits for the projection
    keepalive_s: float = 15.0
    search: VectorSearch | None = None
    # the log's head position (not its events): a read model that reached it has everything,
    # so an unknown key is unknown at once and a min_position past it is refused at once
    log_head: Callable[[], Awaitable[int | None]] | None = None
    tokens: TokenVerifier | None = None  # bearer JWTs beside API keys, when configured


async def find_soon(
    services: QueryServices, lookup: Callable[[], Awaitable[T | None]],
    timeout: float | None = None,
) -> T | None:
    """``lookup()``, retried after each commit of the SQL projection for up to ``timeout``
    (default ``catch_up_s``): a key issued or an execution requested a moment ago may still
    be in flight. Reads the projection, never the log (only its head position: once the
    projection has reached it, what is not found does not exist, and the answer is at once).
    None when it is not there, or the bound passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (services.catch_up_s if timeout is None else timeout)
    since = services.clock.position  # before the lookup: a commit in between is not missed
    found = await lookup()
    if found is None:  # the read model had all the log has before the lookup: not there
        head = await log_head(services)
        if head is not None and head <= since:
            return None
    while found is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        reached = await services.clock.wait_for(since + 1, remaining)
        if reached <= since:
            return None
        since = reached
        found = await lookup()
    return found



async def log_head(services: QueryServices) -> int | None:
    """The log's head position; None where it is not given or cannot be read just now (the
    read then waits as it would without it: the read models answer while the log is away)."""
    return None if services.log_head is None else await services.log_head()
