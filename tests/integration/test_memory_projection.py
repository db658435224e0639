"""Crew memory as a projection: task outputs indexed as ``memory`` points (real wordllama
and a local-mode Qdrant), recalled per tenant, crew and log position, idempotently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sql.engines import make_engine
from adapters.vectors.embeddings import WordLlamaEmbedder
from adapters.vectors.qdrant_index import QdrantVectorIndex
from domain.envelope import RecordedEvent
from projections.search import VectorSearch
from projections.vector_projector import VectorProjector, point_id


def event(position: int, type_: str, payload: dict[str, Any], *, execution: str = "exec-1",
          tenant: str = "acme") -> RecordedEvent:
    return RecordedEvent(
        event_id=f"e{position}", aggregate_type="execution", aggregate_id=execution,
        version=position, type=type_, schema_version=1, occurred_at="2026-11-27T00:00:00Z",
        tenant_id=tenant, actor="test", command_id=f"c{position}", correlation_id="x",
        causation_id="x", payload=payload, position=position,
    )


def requested(position: int, execution: str, crew_id: str, tenant: str = "acme") -> RecordedEvent:
    return event(position, "ExecutionRequested", {"crew_id": crew_id, "crew": {"name": "c"}},
                 execution=execution, tenant=tenant)


def done(position: int, execution: str, task: str, output: str,
         tenant: str = "acme") -> RecordedEvent:
    return event(position, "ExecutionTaskCompleted", {"task_name": task, "output": output},
                 execution=execution, tenant=tenant)


LOG = [
    requested(1, "exec-1", "crew-a"),
    done(2, "exec-1", "research", "Emperor penguins breed in the Antarctic winter."),
    done(3, "exec-1", "write", "A poem about pasta and tomato sauce."),
    requested(4, "exec-2", "crew-a"),
    done(5, "exec-2", "research", "Penguin colonies huddle against the cold."),
    requested(6, "exec-3", "crew-a", tenant="globex"),  # same crew id, another tenant
    done(7, "exec-3", "research", "Penguins of globex.", tenant="globex"),
    requested(8, "exec-4", "crew-b"),
    done(9, "exec-4", "research", "Penguins of another crew."),
]


@pytest.fixture
async def search(tmp_path: Path) -> AsyncIterator[VectorSearch]:
    embedder = WordLlamaEmbedder(tmp_path / "models")
    index = QdrantVectorIndex(path=tmp_path / "qdrant")
    engine = make_engine(f"sqlite:///{tmp_path / 'read.db'}", durable=False)
    projector = VectorProjector(embedder, index, engine)
    await projector.initialize()
    yield VectorSearch(embedder, index, projector)
    await index.close()
    await engine.dispose()


async def test_task_outputs_become_memory_points_idempotently(search: VectorSearch) -> None:
    projector, index = search.projector, search.index
    assert await projector.handle(LOG) == 9
    assert await index.count(projector.collection) == 5
    recall = await search.recall_memory("acme", "crew-a", 10, "penguins breeding", 10)
    assert recall[0] == "research: Emperor penguins breed in the Antarctic winter."
    assert sorted(recall) == sorted([
        "research: Emperor penguins breed in the Antarctic winter.",
        "write: A poem about pasta and tomato sauce.",
        "research: Penguin colonies huddle against the cold.",
    ])
    hits = await index.search_memory(projector.collection, [1.0] * 256, tenant_id="acme",
                                     crew_id="crew-a", before_position=10, limit=10)
    first = next(h for h in hits if h.extra["position"] == 2)
    assert first.kind == "memory" and first.aggregate_id == "exec-1"
    assert first.extra == {"crew_id": "crew-a", "execution_id": "exec-1", "task": "research",
                           "position": 2}

    # replayed from the start and redelivered: the same points, nothing more
    await projector.rebuild()
    await projector.handle(LOG)
    await projector.handle(LOG)
    assert await index.count(projector.collection) == 5
    assert await search.recall_memory("acme", "crew-a", 10, "penguins breeding", 10) == recall
    assert point_id("memory", "exec-1:research") != point_id("memory", "exec-2:research")


async def test_recall_is_cut_at_a_position_and_scoped_to_tenant_and_crew(
    search: VectorSearch,
) -> None:
    await search.projector.handle(LOG)
    # a run requested at position 4 sees exec-1 only, never itself nor later runs
    before_run_2 = await search.recall_memory("acme", "crew-a", 4, "penguins", 10)
    assert len(before_run_2) == 2 and all("colonies" not in t for t in before_run_2)
    assert await search.recall_memory("acme", "crew-a", 1, "penguins", 10) == []
    assert await search.recall_memory("globex", "crew-a", 100, "penguins", 10) == [
        "research: Penguins of globex."]
    assert await search.recall_memory("acme", "crew-b", 100, "penguins", 10) == [
        "research: Penguins of another crew."]
    assert await search.recall_memory("acme", "crew-a", 100, "penguins", 1) != []
    # crew memory never shows in the general search
    [vector] = search.embedder.embed(["penguins"])
    assert await search.index.search(search.projector.collection, vector,
                                     tenant_id="acme") == []
