"""The port through which runs recall crew memory (``projections.search.VectorSearch``).

Crew memory is a projection of the log: the vector projector indexes every task output as
a ``memory`` point carrying its log position. A run recalls only points of its own tenant
and crew recorded before its ``ExecutionRequested`` event (``before_position``), so it never
recalls itself or later runs, and a resumed run recalls exactly what its first attempt did.
"""

from __future__ import annotations

from typing import Protocol


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
