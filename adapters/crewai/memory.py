"""Crew memory for CrewAI, recall-only, over Kasal's event-sourced memory projection.

CrewAI (1.15) recalls before every task (the task description as query, 5 results) and
appends ``# Memories from past conversations:`` with one ``- (score=S) content`` line per
match to the task prompt; it also offers agents a ``Search memory`` tool (20 results per
query). Memory here is a projection of the log (the vector projector indexes every task
output), so CrewAI never writes, and recall is one search through the run's hooks:

- ``KasalMemory`` forces ``depth="shallow"`` (one search, no query-analysis LLM), is
  ``read_only`` (no extraction/analysis LLM calls after tasks, no ``Save to memory`` tool),
  scores by similarity alone (``recency_weight=0``: a time-dependent score would change the
  prompt, its request hash, and defeat resume-by-replay), and has an LLM that raises, so
  nothing reaches the network even if CrewAI tried.
- ``KasalMemoryStorage`` is the ``StorageBackend``: ``search`` asks
  ``RunHooks.recall_memory`` with the query text (CrewAI hands storage only an embedding:
  ``KasalMemory.recall`` passes the text on this thread) and maps the texts to
  ``MemoryRecord``s. Writes are no-ops.

Same recall, byte-identical prompt: records carry no metadata or categories (both are
printed), ids are a hash of the content, and the printed score is a function of the rank
(1, 1/2, 1/3, ...), not of the index's float similarity.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from crewai.llms.base_llm import BaseLLM
from crewai.memory.types import MemoryMatch, MemoryRecord, ScopeInfo
from crewai.memory.unified_memory import Memory
from crewai.memory.utils import sanitize_scope_name

from streams.engine import RunHooks

EPOCH = datetime(2000, 1, 1)  # records' timestamps: fixed (never printed; recency is off)
DUMMY_VECTOR = [1.0]  # the real query embedding happens in recall_memory


class NoMemoryLLM(BaseLLM):
    """Kasal's memory never calls a model: any attempt fails."""

    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("crew memory never calls a model in Kasal (recall-only memory)")

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("crew memory never calls a model in Kasal (recall-only memory)")

    def supports_function_calling(self) -> bool:
        return False


def dummy_embedder(texts: Sequence[str]) -> list[list[float]]:
    """CrewAI embeds the query before it searches storage; the storage ignores it."""
    return [list(DUMMY_VECTOR) for _ in texts]


class KasalMemoryStorage:
    """A ``StorageBackend`` reading the run's crew memory through its hooks; never writes."""

    def __init__(self, hooks: RunHooks, scope: str) -> None:
        self.hooks = hooks
        self.scope = scope
        self._local = threading.local()

    # the query text of the recall in progress on this thread (set by KasalMemory.recall)
    def set_query(self, query: str | None) -> None:
        self._local.query = query

    def _query(self) -> str | None:
        return getattr(self._local, "query", None)

    def records(self, query: str, limit: int) -> list[tuple[MemoryRecord, float]]:
        texts = self.hooks.recall_memory(query, limit) if limit > 0 else []
        found: list[tuple[MemoryRecord, float]] = []
        for rank, text in enumerate(texts[:limit]):
            record = MemoryRecord(
                id=hashlib.sha256(text.encode()).hexdigest()[:32],
                content=text,
                scope=self.scope,
                categories=[],
                metadata={},  # printed into the prompt: keep it empty
                importance=0.5,
                created_at=EPOCH,
                last_accessed=EPOCH,
            )
            found.append((record, 1.0 / (rank + 1)))
        return found

    # --- StorageBackend -----------------------------------------------------------------
    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        query = self._query()
        if not query:
            return []
        return [(r, s) for r, s in self.records(query, limit) if s >= min_score]

    def save(self, records: list[MemoryRecord]) -> None:
        return None

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return 0

    def update(self, record: MemoryRecord) -> None:
        return None

    def get_record(self, record_id: str) -> MemoryRecord | None:
        return None

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        return []

    def get_scope_info(self, scope: str) -> ScopeInfo:
        return ScopeInfo(path=scope)

    def list_scopes(self, parent: str = "/") -> list[str]:
        return []

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        return {}

    def count(self, scope_prefix: str | None = None) -> int:
        return 0

    def reset(self, scope_prefix: str | None = None) -> None:
        return None

    async def asave(self, records: list[MemoryRecord]) -> None:
        return None

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return self.search(query_embedding, scope_prefix, categories, metadata_filter, limit,
                           min_score)

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return 0


class KasalMemory(Memory):
    """Recall = one search through the run's hooks (no RecallFlow, no LLM, no writes)."""

    def recall(
        self,
        query: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        limit: int = 10,
        depth: Literal["shallow", "deep"] = "deep",
        source: str | None = None,
        include_private: bool = False,
    ) -> list[MemoryMatch]:
        storage = self._storage
        if not isinstance(storage, KasalMemoryStorage):  # pragma: no cover - built below
            raise TypeError("KasalMemory needs a KasalMemoryStorage")
        storage.set_query(query)
        try:
            return super().recall(query, scope=scope, categories=categories, limit=limit,
                                  depth="shallow", source=source,
                                  include_private=include_private)
        finally:
            storage.set_query(None)


def build_memory(hooks: RunHooks, crew_name: str) -> KasalMemory:
    """The memory of one run of a crew that has ``memory`` on."""
    scope = f"/crew/{sanitize_scope_name(crew_name or 'crew')}"
    return KasalMemory(
        llm=NoMemoryLLM(model="kasal-no-memory-llm"),
        storage=KasalMemoryStorage(hooks, scope),
        embedder=dummy_embedder,
        read_only=True,
        root_scope=scope,
        recency_weight=0.0,
        semantic_weight=1.0,
        importance_weight=0.0,
        exploration_budget=0,
        query_analysis_threshold=10**9,
    )


__all__ = ["KasalMemory", "KasalMemoryStorage", "NoMemoryLLM", "build_memory"]
