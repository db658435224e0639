"""What a run recalls from the vector index, for the run recorder's hooks (blocking, on the
engine's threads; the searches run on the event loop): crew memory, knowledge, and the
documents a search tool searches.

Crew memory and knowledge recall what was recorded before the run was requested (``cut``, its
request's log position): never the run itself nor later runs, and the same again when the run
is resumed. Memory is an aid (a run goes on without it); knowledge is never recalled in part
(the index must hold the log up to the request, or the recall raises).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from projections.vectors import Document
from streams.memory import MemoryRecall

log = logging.getLogger(__name__)
MEMORY_WAIT_S = 10.0  # before a run's first recall: for the vector projector to pass its cut
MEMORY_RECALL_TIMEOUT_S = 60.0
KNOWLEDGE_WAIT_S = 30.0  # for the vector index to reach the run's request
T = TypeVar("T")


class IndexRecall:
    def __init__(self, execution_id: str, tenant_id: str, crew_id: str,
                 memory: MemoryRecall | None, loop: asyncio.AbstractEventLoop, cut: int) -> None:
        self.execution_id = execution_id
        self.tenant_id = tenant_id
        self.crew_id = crew_id
        self.index = memory
        self.loop = loop
        self.cut = cut
        self.memory_ready = False

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(MEMORY_RECALL_TIMEOUT_S)
        except BaseException:
            future.cancel()
            raise

    def memory(self, query: str, limit: int) -> list[str]:
        if self.index is None:
            return []
        try:
            return self._wait(self._memory(self.index, query, limit))
        except Exception:  # memory is an aid: a run goes on without it
            log.exception("execution %s: recalling crew memory failed", self.execution_id)
            return []

    def knowledge(self, source_ids: Sequence[str], query: str, limit: int) -> list[str]:
        if self.index is None:
            raise RuntimeError("the vector index is off here (KASAL_VECTOR_SEARCH), and this "
                               "crew's knowledge sources need it")
        return self._wait(self._knowledge(self.index, source_ids, query, limit))

    def documents(self, documents: Sequence[Document], query: str, limit: int) -> list[str]:
        if self.index is None:
            raise RuntimeError("searching files needs the vector index, and it is off here "
                               "(KASAL_VECTOR_SEARCH)")
        return self._wait(self.index.search_documents(self.tenant_id, documents, query, limit))

    async def _memory(self, index: MemoryRecall, query: str, limit: int) -> list[str]:
        if not self.memory_ready:
            if not await index.wait_until_indexed(self.cut, MEMORY_WAIT_S):
                log.warning("execution %s: crew memory is behind the log; recalling what it "
                            "holds", self.execution_id)
            self.memory_ready = True
        return await index.recall_memory(self.tenant_id, self.crew_id, self.cut, query, limit)

    async def _knowledge(self, index: MemoryRecall, source_ids: Sequence[str], query: str,
                         limit: int) -> list[str]:
        if not await index.wait_until_indexed(self.cut, KNOWLEDGE_WAIT_S):
            raise RuntimeError(f"the vector index has not reached log position {self.cut} "
                               f"within {KNOWLEDGE_WAIT_S:.0f} s")
        return await index.recall_knowledge(self.tenant_id, source_ids, query, limit)
