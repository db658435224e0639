"""The port through which runs recall crew memory and knowledge
(``projections.search.VectorSearch``).

Crew memory is a projection of the log: the vector projector indexes every task output as
a ``memory`` point carrying its log position. A run recalls only points of its own tenant
and crew recorded before its ``ExecutionRequested`` event (``before_position``), so it never
recalls itself or later runs, and a resumed run recalls exactly what its first attempt did.

Knowledge is a projection too: each chunk of an ``EventType.KNOWLEDGE_SOURCE_ADDED`` is a
``knowledge`` point. A source never changes and every source a run names was added before
the run was requested, so once the index reflects the log up to the request a resumed run
recalls the same chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from projections.vectors import Document


class MemoryRecall(Protocol):
    async def wait_until_indexed(self, position: int, timeout: float) -> bool:
        """Wait (bounded) until memory reflects the log up to ``position``; False when the
        timeout ran out first."""
        ...

    async def recall_memory(
        self, tenant_id: str, crew_id: str, before_position: int, query: str, limit: int
    ) -> list[str]:
        """Texts of the crew's memory points nearest to ``query``, best first."""
        ...

    async def recall_knowledge(
        self, tenant_id: str, source_ids: Sequence[str], query: str, limit: int
    ) -> list[str]:
        """Texts of the chunks of those knowledge sources nearest to ``query``, best first."""
        ...

    async def search_documents(self, tenant_id: str, documents: Sequence[Document], query: str,
                               limit: int) -> list[str]:
        """The chunks of ``documents`` nearest to ``query``, best first; a document's
        chunks are embedded and indexed the first time it is searched."""
        ...
