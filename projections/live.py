"""Live execution events for Server-Sent Events, pushed from the runtime's subscription.

``LiveExecutionFeed`` is a processor: the runtime hands it every batch right after reading
it from the log, and it fans execution events out to subscribers' queues. Nothing polls a
table. A subscriber that reconnects gets what it missed from the timeline read model first
(see api/query_routes.py), then the live queue, with duplicates dropped by version.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from domain.envelope import RecordedEvent
from domain.vocabulary import TERMINAL_EVENTS, AggregateType
from projections.clock import ProjectionClock
from projections.queries import ReadModels
from projections.read_models.timeline import timeline_entry


@dataclass(eq=False)  # hashed by identity: each subscriber is its own
class Subscription:
    execution_id: str
    queue: asyncio.Queue[dict[str, Any]]
    position: int  # the feed's position when the subscription began
    overflowed: bool = False  # a slow reader fell behind: its stream must end


class LiveExecutionFeed:
    name = "live-feed"

    def __init__(self, max_queue: int = 10_000) -> None:
        self.max_queue = max_queue
        self.subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.current = 0
        self.started = False

    async def position(self) -> int:
        return self.current

    def start_at(self, position: int) -> None:
        """Live only: begin at the log's head (history comes from the read model)."""
        self.current = position
        self.started = True

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        for event in events:
            if event.aggregate_type == AggregateType.EXECUTION:
                for subscription in list(self.subscribers.get(event.aggregate_id, ())):
                    if subscription.queue.qsize() < self.max_queue:
                        subscription.queue.put_nowait(timeline_entry(event))
                    else:
                        subscription.overflowed = True
            self.current = max(self.current, event.position)
        return self.current

    def subscribe(self, execution_id: str) -> Subscription:
        subscription = Subscription(execution_id, asyncio.Queue(), self.current)
        self.subscribers[execution_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self.subscribers.get(subscription.execution_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self.subscribers[subscription.execution_id]


async def follow_execution(
    feed: LiveExecutionFeed,
    read_models: ReadModels,
    clock: ProjectionClock,
    tenant_id: str,
    execution_id: str,
    *,
    after: int = 0,
    keepalive_s: float = 15.0,
    catch_up_timeout: float = 5.0,
) -> AsyncIterator[dict[str, Any] | None]:
    """Every timeline entry of an execution with version > ``after``, then live ones, until a
    terminal one. Yields ``None`` after ``keepalive_s`` of silence (for keep-alives).

    It never skips an entry: when it cannot be sure of that (the read model did not catch up
    in time, or the reader fell more than ``max_queue`` entries behind) the stream ends
    early, and a client that reconnects after the last entry it got (SSE ``Last-Event-ID``)
    gets the rest."""
    subscription = feed.subscribe(execution_id)
    sent = after
    try:
        # history up to the moment we subscribed, from the read model...
        if await clock.wait_for(subscription.position, catch_up_timeout) < subscription.position:
            return
        history = await read_models.execution_timeline(tenant_id, execution_id)
        for entry in history.items:
            if entry["version"] > sent:
                sent = entry["version"]
                yield entry
            if entry["type"] in TERMINAL_EVENTS:
                return  # finished: also when the client had this entry already (a reconnect)
        # ...then live, from the runtime's subscription
        while True:
            if subscription.overflowed and subscription.queue.empty():
                return  # entries were dropped after these: the client resumes from here
            try:
                entry = await asyncio.wait_for(subscription.queue.get(), timeout=keepalive_s)
            except TimeoutError:
                yield None
                continue
            if entry["version"] <= sent:
                continue
            sent = entry["version"]
            yield entry
            if entry["type"] in TERMINAL_EVENTS:
                return
    finally:
        feed.unsubscribe(subscription)
