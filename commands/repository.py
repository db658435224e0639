"""Loads aggregates for one tenant and remembers the version each was loaded at."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from commands.errors import NotFound
from commands.ports import EventStore
from domain.base import KasalAggregate
from domain.registry import rehydrate

A = TypeVar("A", bound=KasalAggregate)


class Repository:
    def __init__(self, store: EventStore, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.loaded_versions: dict[str, int] = {}

    async def get(self, aggregate_class: type[A], aggregate_id: str) -> A:
        """The tenant's aggregate, or ``NotFound`` (another tenant's is not found either)."""
        label = aggregate_class.AGGREGATE_TYPE.label
        try:
            UUID(aggregate_id)
        except ValueError:
            raise NotFound(f"{label} {aggregate_id} not found") from None
        events = await self.store.read_stream(aggregate_id)
        if not events or events[0].aggregate_type != aggregate_class.AGGREGATE_TYPE:
            raise NotFound(f"{label} {aggregate_id} not found")
        aggregate = rehydrate(aggregate_class, events)
        if aggregate is None or aggregate.tenant_id != self.tenant_id:
            raise NotFound(f"{label} {aggregate_id} not found")
        self.loaded_versions[aggregate_id] = aggregate.version
        return aggregate

    def loaded_version(self, aggregate: KasalAggregate) -> int:
        return self.loaded_versions.get(aggregate.aggregate_id, 0)
