"""Semantic search over the vector read model, always within one tenant."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from projections.clock import ProjectionClock
from projections.vector_projector import VectorProjector
from projections.vectors import Embedder, Kind, VectorHit, VectorIndex


@dataclass(frozen=True)
class SearchResult:
    hits: list[VectorHit]
    position: int
    model: str


class VectorSearch:
    def __init__(self, embedder: Embedder, index: VectorIndex, projector: VectorProjector) -> None:
        self.embedder = embedder
        self.index = index
        self.projector = projector
        self.clock = ProjectionClock(projector.position)

    async def search(
        self, tenant_id: str, query: str, *, kind: Kind | None = None, limit: int = 10
    ) -> SearchResult:
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        position = await self.projector.position()
        hits = await self.index.search(
            self.projector.collection, vector, tenant_id=tenant_id, kind=kind, limit=limit
        )
        return SearchResult(hits, position, self.embedder.model)
