"""Knowledge for CrewAI, recall-only, over Kasal's event-sourced knowledge projection.

A knowledge source's chunks are in the log (its ``EventType.KNOWLEDGE_SOURCE_ADDED``) and
the vector index (``kind="knowledge"``), so CrewAI never saves or embeds anything: each
agent and the crew get a ``Knowledge`` whose storage is ``KasalKnowledgeStorage``, which
asks ``RunHooks.recall_knowledge`` with the query text CrewAI gives it. Kasal does not pass
``knowledge_sources`` to CrewAI (it would chunk, embed and save them through chromadb and a
hosted embedding model, again at every task).

What CrewAI does with knowledge stays as it is (crewai 1.15): before each task the agent's
model rewrites the task into a search query (a model call like any other, recorded and
replayed), the agent's knowledge is searched (5 results) and then the crew's (3), and each
result list is appended to the task prompt as ``Additional Information: ...``. A knowledge
recall that fails raises ``HookAborted``, the one error CrewAI does not turn into "no
knowledge", and so does a rewrite the model did not answer (``KnowledgeAgent``; CrewAI would
search nothing): a run never goes on without what it was given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from crewai import Agent, Task
from crewai.hooks import HookAborted
from crewai.knowledge.knowledge import Knowledge
from crewai.knowledge.storage.base_knowledge_storage import BaseKnowledgeStorage
from crewai.rag.types import SearchResult
from pydantic import PrivateAttr

from adapters.crewai.call_limits import RunLimits
from streams.engine import RunHooks


class KasalKnowledgeStorage(BaseKnowledgeStorage):
    """CrewAI's knowledge storage for one agent or crew of one run: reads, never writes."""

    source_ids: tuple[str, ...]
    _hooks: RunHooks = PrivateAttr()

    def search(self, query: list[str], limit: int = 5,
               metadata_filter: dict[str, Any] | None = None,
               score_threshold: float = 0.6) -> list[SearchResult]:
        text = " ".join(q for q in query if q).strip()
        if not text or limit <= 0:
            return []
        try:
            chunks = self._hooks.recall_knowledge(self.source_ids, text, limit)
        except Exception as error:
            raise HookAborted(reason=f"recalling knowledge failed: {error}") from error
        # scores by rank (CrewAI prints none of them), ids by content: the same recall gives
        # the same results, byte for byte
        return [SearchResult(id=hashlib.sha256(chunk.encode()).hexdigest()[:32],
                             content=chunk, metadata={}, score=1.0 / (rank + 1))
                for rank, chunk in enumerate(chunks[:limit])]

    async def asearch(self, query: list[str], limit: int = 5,
                      metadata_filter: dict[str, Any] | None = None,
                      score_threshold: float = 0.6) -> list[SearchResult]:
        return self.search(query, limit, metadata_filter, score_threshold)

    def save(self, documents: list[str]) -> None:
        return None

    async def asave(self, documents: list[str]) -> None:
        return None

    def reset(self) -> None:
        return None

    async def areset(self) -> None:
        return None


class KnowledgeAgent(Agent):
    """CrewAI's agent, except that a knowledge query its model did not answer fails the task
    (CrewAI returns no query then, and the task runs without its knowledge)."""

    _kasal_limits: RunLimits | None = PrivateAttr(default=None)  # the run's, to stop it

    def _get_knowledge_search_query(self, task_prompt: str, task: Task) -> str | None:
        query = super()._get_knowledge_search_query(task_prompt, task)
        if not query:
            error = HookAborted(reason="the agent's model did not answer CrewAI's knowledge "
                                       "search query: the task cannot run without its knowledge")
            if self._kasal_limits is not None:  # sticky: a delegation would swallow it
                self._kasal_limits.fail(error)
            raise error
        return query


def build_knowledge(hooks: RunHooks, source_ids: Sequence[str], name: str) -> Knowledge | None:
    """The ``Knowledge`` of an agent or a crew naming ``source_ids`` (None: none named)."""
    if not source_ids:
        return None
    storage = KasalKnowledgeStorage(source_ids=tuple(source_ids))
    storage._hooks = hooks
    return Knowledge(collection_name=name, sources=[], storage=storage)


__all__ = ["KasalKnowledgeStorage", "KnowledgeAgent", "build_knowledge"]
