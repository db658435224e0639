"""Ports of the vector read model: an embedding model and a vector index (Qdrant in adapters/).

Each collection is named after the model and dimension that built it, and its projector
tracks its position under that name: changing the model starts a new collection, rebuilt
from the log, and vectors of two models are never mixed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["agent", "crew", "execution", "memory", "knowledge", "document"]
# recalled by runs only, never listed by search ("document": a workspace file's chunks, which
# the search tools index when they first search it: a cache, not a projection of the log)
RECALLED_ONLY: tuple[Kind, ...] = ("memory", "knowledge", "document")


@dataclass(frozen=True)
class Document:
    """A file a search tool searches: its key (the SHA-256 of its text, so the same text is
    indexed once per tenant), a name to show, and its chunks."""

    key: str
    name: str
    chunks: tuple[str, ...]


class Embedder(Protocol):
    model: str  # e.g. "wordllama/l2_supercat_256"
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text (blocking, CPU-bound: call it off the event loop)."""
        ...


@dataclass(frozen=True)
class VectorPoint:
    id: str  # deterministic: a UUID derived from (kind, aggregate id)
    vector: list[float]
    tenant_id: str
    kind: Kind
    aggregate_id: str
    title: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorHit:
    aggregate_id: str
    kind: Kind
    score: float
    title: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


class VectorIndex(Protocol):
    async def ensure_collection(self, name: str, dimension: int, model: str) -> None:
        """Create the collection if missing (cosine distance; payload indexes on tenant_id
        and kind); record the model and dimension in it. Refuse a collection of that name
        built with another model or dimension."""
        ...

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None: ...

    async def delete(self, collection: str, point_ids: Sequence[str]) -> None: ...

    async def search(self, collection: str, vector: list[float], *, tenant_id: str,
                     kind: Kind | None = None, limit: int = 10) -> list[VectorHit]:
        """Nearest points of ONE tenant (always filtered), best first; ``kind=None``: of
        every kind but those ``RECALLED_ONLY`` (through ``search_memory``,
        ``search_knowledge``)."""
        ...

    async def search_memory(self, collection: str, vector: list[float], *, tenant_id: str,
                            crew_id: str, before_position: int, limit: int = 5
                            ) -> list[VectorHit]:
        """Nearest ``memory`` points of ONE tenant and ONE crew recorded before a log
        position (``extra.position < before_position``), best first."""
        ...

    async def search_knowledge(self, collection: str, vector: list[float], *, tenant_id: str,
                               source_ids: Sequence[str], limit: int = 5) -> list[VectorHit]:
        """Nearest ``knowledge`` chunks of ONE tenant from the sources named, best first."""
        ...

    async def existing(self, collection: str, point_ids: Sequence[str]) -> set[str]:
        """Which of ``point_ids`` the collection holds."""
        ...

    async def search_documents(self, collection: str, vector: list[float], *, tenant_id: str,
                               document_keys: Sequence[str], limit: int = 5
                               ) -> list[VectorHit]:
        """Nearest ``document`` chunks of ONE tenant from the documents named (by key)."""
        ...

    async def count(self, collection: str, tenant_id: str | None = None) -> int: ...

    async def close(self) -> None: ...


def collection_name(model: str, dimension: int, prefix: str = "kasal") -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
    return f"{prefix}_{slug}_{dimension}"
