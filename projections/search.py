"""Semantic search over the vector read model, always within one tenant; and crew memory
and knowledge recall (the ``streams.memory.MemoryRecall`` port) over the same index."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from projections.clock import ProjectionClock
from projections.vector_projector import POINT_NAMESPACE, VectorProjector
from projections.vectors import Document, Embedder, Kind, VectorHit, VectorIndex, VectorPoint

DOCUMENT_BATCH = 128  # chunks embedded and upserted at a time (a provider's request limits)


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

    # --- crew memory (the ``streams.memory.MemoryRecall`` port) -------------------------
    async def wait_until_indexed(self, position: int, timeout: float) -> bool:
        return await self.clock.wait_for(position, timeout) >= position

    async def recall_memory(
        self, tenant_id: str, crew_id: str, before_position: int, query: str, limit: int
    ) -> list[str]:
        """The crew's past task outputs nearest to ``query``, recorded before
        ``before_position``, best first (texts only)."""
        if not query.strip() or limit <= 0:
            return []
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        hits = await self.index.search_memory(
            self.projector.collection, vector, tenant_id=tenant_id, crew_id=crew_id,
            before_position=before_position, limit=limit,
        )
        return [h.text for h in hits]

    async def recall_knowledge(
        self, tenant_id: str, source_ids: Sequence[str], query: str, limit: int
    ) -> list[str]:
        """The chunks of those knowledge sources nearest to ``query``, best first."""
        if not query.strip() or limit <= 0 or not source_ids:
            return []
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        hits = await self.index.search_knowledge(
            self.projector.collection, vector, tenant_id=tenant_id, source_ids=source_ids,
            limit=limit,
        )
        return [h.text for h in hits]

    async def search_documents(self, tenant_id: str, documents: Sequence[Document], query: str,
                               limit: int) -> list[str]:
        """The chunks of ``documents`` nearest to ``query``, best first. A document is
        indexed (as ``document`` points of the tenant, ids from tenant, key and chunk) the
        first time it is searched: a cache beside the projection, rebuilt on demand."""
        if not query.strip() or limit <= 0 or not documents:
            return []
        wanted = {
            str(uuid.uuid5(POINT_NAMESPACE, f"document:{tenant_id}:{doc.key}:{index}")):
                (doc, index, chunk)
            for doc in documents for index, chunk in enumerate(doc.chunks)}
        collection = self.projector.collection
        indexed = await self.index.existing(collection, list(wanted))
        missing = [pid for pid in wanted if pid not in indexed]
        for start in range(0, len(missing), DOCUMENT_BATCH):  # a retry resumes where it was
            batch = missing[start:start + DOCUMENT_BATCH]
            vectors = await asyncio.to_thread(self.embedder.embed, [wanted[p][2] for p in batch])
            await self.index.upsert(collection, [
                VectorPoint(id=pid, vector=vector, tenant_id=tenant_id, kind="document",
                            aggregate_id=wanted[pid][0].key, title=wanted[pid][0].name[:200],
                            text=wanted[pid][2], extra={"chunk": wanted[pid][1]})
                for pid, vector in zip(batch, vectors, strict=True)])
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        hits = await self.index.search_documents(
            collection, vector, tenant_id=tenant_id,
            document_keys=sorted({doc.key for doc in documents}), limit=limit)
        return [h.text for h in hits]
