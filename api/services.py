"""What the query side of the API is given: read models, the projection clock, limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from projections.clock import ProjectionClock
from projections.live import LiveExecutionFeed
from projections.queries import ReadModels
from projections.search import VectorSearch


@dataclass(frozen=True)
class QueryServices:
    read_models: ReadModels
    clock: ProjectionClock
    # wake the processors and wait (bounded) until the projection reaches the log's head
    refresh: Callable[[float], Awaitable[bool]]
    min_position_timeout: float = 5.0
    live: LiveExecutionFeed | None = None
    keepalive_s: float = 15.0
    search: VectorSearch | None = None
