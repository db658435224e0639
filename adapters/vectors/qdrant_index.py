"""``QdrantVectorIndex``: the ``projections.vectors.VectorIndex`` port, on Qdrant.

Two modes, one client each, created on first use and never again:

- local (``path=``): qdrant-client's embedded engine, persisted under that directory. Only
  one client may open a path at a time (a second raises "Storage folder ... is already
  accessed by another instance"), so one process owns it. Its "async" calls compute
  synchronously (exact search, payload filters evaluated in Python), so they run on a
  thread and event loop of their own: a search never holds the caller's event loop.
- server (``url=``, ``api_key=``): a Qdrant server.

Each collection records the model and dimension that built it in the collection's own
metadata (``create_collection(metadata=...)``, stored by local mode in its ``meta.json`` and
by a server in the collection config; older servers without collection metadata lose it).
``ensure_collection`` refuses a collection whose vector size, distance or recorded model
differ.

Every search is filtered by tenant; payload indexes on ``tenant_id`` (a tenant index),
``kind``, and for memory recall ``extra.crew_id`` and ``extra.position``, are created in
server mode (local mode has no payload indexes).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from projections.vectors import RECALLED_ONLY, Kind, VectorHit, VectorPoint

T = TypeVar("T")

META_MODEL = "kasal_embedding_model"
META_DIMENSION = "kasal_embedding_dimension"
UPSERT_BATCH = 256


class QdrantVectorIndex:
    def __init__(
        self, path: Path | None = None, url: str | None = None, api_key: str | None = None
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("QdrantVectorIndex needs exactly one of path= (local) or url=")
        if api_key is not None and url is None:
            raise ValueError("api_key= only applies to a Qdrant server (url=)")
        self.path = Path(path) if path is not None else None
        self.url = url
        self._api_key = api_key
        self._client: AsyncQdrantClient | None = None
        self._closed = False
        # local mode computes on the calling thread (filters in Python): give it its own
        # thread and loop so a search never holds the server's event loop
        self._worker: asyncio.AbstractEventLoop | None = None
        self._worker_thread: threading.Thread | None = None

    @property
    def local(self) -> bool:
        return self.path is not None

    async def _run(self, call: Coroutine[Any, Any, T]) -> T:
        if not self.local:
            return await call
        if self._worker is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="kasal-qdrant", daemon=True)
            thread.start()
            self._worker, self._worker_thread = loop, thread
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, self._worker))

    def _get_client(self) -> AsyncQdrantClient:
        # No await between the check and the assignment: one client per instance, even
        # when several coroutines ask first.
        if self._closed:
            raise RuntimeError("QdrantVectorIndex is closed")
        if self._client is None:
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = AsyncQdrantClient(path=str(self.path))
            else:
                self._client = AsyncQdrantClient(url=self.url, api_key=self._api_key)
        return self._client

    async def ensure_collection(self, name: str, dimension: int, model: str) -> None:
        client = self._get_client()
        if not await self._run(client.collection_exists(name)):
            try:
                await self._run(
                    client.create_collection(
                        name,
                        vectors_config=models.VectorParams(
                            size=dimension, distance=models.Distance.COSINE
                        ),
                        metadata={META_MODEL: model, META_DIMENSION: dimension},
                    )
                )
            except (ValueError, UnexpectedResponse):
                # created meanwhile by another process (server mode): check it below
                if not await self._run(client.collection_exists(name)):
                    raise
        info = await self._run(client.get_collection(name))
        self._check_collection(name, info, dimension, model)
        if not self.local:
            await self._ensure_payload_indexes(client, name, info)

    @staticmethod
    def _check_collection(
        name: str, info: models.CollectionInfo, dimension: int, model: str
    ) -> None:
        vectors = info.config.params.vectors
        if not isinstance(vectors, models.VectorParams):
            raise ValueError(
                f"Qdrant collection {name!r} has named vectors; Kasal expects one unnamed "
                "vector per point"
            )
        if vectors.size != dimension:
            raise ValueError(
                f"Qdrant collection {name!r} holds vectors of {vectors.size} dimensions, "
                f"but the embedding model {model!r} makes {dimension}: vectors of two models "
                "are never mixed; use a collection named after the model"
            )
        if vectors.distance != models.Distance.COSINE:
            raise ValueError(
                f"Qdrant collection {name!r} uses {vectors.distance.value} distance, "
                "Kasal expects Cosine"
            )
        metadata = info.config.metadata or {}
        if META_MODEL not in metadata:
            raise ValueError(
                f"Qdrant collection {name!r} records no embedding model in its metadata: it "
                "was not created by Kasal (or the Qdrant server is too old to keep "
                "collection metadata)"
            )
        recorded_model = metadata[META_MODEL]
        recorded_dimension = metadata.get(META_DIMENSION)
        if recorded_model != model or recorded_dimension != dimension:
            raise ValueError(
                f"Qdrant collection {name!r} was built with embedding model "
                f"{recorded_model!r} ({recorded_dimension} dimensions), not {model!r} "
                f"({dimension} dimensions): vectors of two models are never mixed"
            )

    @staticmethod
    async def _ensure_payload_indexes(
        client: AsyncQdrantClient, name: str, info: models.CollectionInfo
    ) -> None:
        schema = info.payload_schema or {}
        wanted: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
            "tenant_id": models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True
            ),
            "kind": models.PayloadSchemaType.KEYWORD,
            "extra.crew_id": models.PayloadSchemaType.KEYWORD,  # memory recall
            "extra.position": models.PayloadSchemaType.INTEGER,
            "aggregate_id": models.PayloadSchemaType.KEYWORD,  # knowledge recall
        }
        for field, field_schema in wanted.items():
            if field not in schema:
                await client.create_payload_index(name, field, field_schema=field_schema)

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        structs = [_point_struct(point) for point in points]
        client = self._get_client()
        for start in range(0, len(structs), UPSERT_BATCH):
            await self._run(client.upsert(collection, points=structs[start : start + UPSERT_BATCH]))

    async def delete(self, collection: str, point_ids: Sequence[str]) -> None:
        if not point_ids:
            return
        ids: list[models.ExtendedPointId] = [_check_id(point_id) for point_id in point_ids]
        await self._run(
            self._get_client().delete(collection, points_selector=models.PointIdsList(points=ids))
        )

    async def search(self, collection: str, vector: list[float], *, tenant_id: str,
                     kind: Kind | None = None, limit: int = 10) -> list[VectorHit]:
        must: list[models.Condition] = [_match("tenant_id", tenant_id)]
        must_not: list[models.Condition] = []
        if kind is not None:
            must.append(_match("kind", kind))
        else:  # crew memory and knowledge are recalled by runs, not listed by search
            must_not.append(models.FieldCondition(
                key="kind", match=models.MatchAny(any=list(RECALLED_ONLY))))
        return await self._query(collection, vector, must, limit, must_not)

    async def search_memory(self, collection: str, vector: list[float], *, tenant_id: str,
                            crew_id: str, before_position: int, limit: int = 5
                            ) -> list[VectorHit]:
        must: list[models.Condition] = [
            _match("tenant_id", tenant_id),
            _match("kind", "memory"),
            _match("extra.crew_id", crew_id),
            models.FieldCondition(key="extra.position", range=models.Range(lt=before_position)),
        ]
        return await self._query(collection, vector, must, limit)

    async def search_knowledge(self, collection: str, vector: list[float], *, tenant_id: str,
                               source_ids: Sequence[str], limit: int = 5) -> list[VectorHit]:
        if not source_ids:
            return []
        must: list[models.Condition] = [
            _match("tenant_id", tenant_id),
            _match("kind", "knowledge"),
            models.FieldCondition(key="aggregate_id", match=models.MatchAny(any=list(source_ids))),
        ]
        return await self._query(collection, vector, must, limit)

    async def existing(self, collection: str, point_ids: Sequence[str]) -> set[str]:
        if not point_ids:
            return set()
        ids: list[models.ExtendedPointId] = [_check_id(point_id) for point_id in point_ids]
        found = await self._run(self._get_client().retrieve(
            collection, ids=ids, with_payload=False, with_vectors=False))
        return {str(point.id) for point in found}

    async def search_documents(self, collection: str, vector: list[float], *, tenant_id: str,
                               document_keys: Sequence[str], limit: int = 5
                               ) -> list[VectorHit]:
        if not document_keys:
            return []
        must: list[models.Condition] = [
            _match("tenant_id", tenant_id),
            _match("kind", "document"),
            models.FieldCondition(key="aggregate_id",
                                  match=models.MatchAny(any=list(document_keys))),
        ]
        return await self._query(collection, vector, must, limit)

    async def _query(
        self,
        collection: str,
        vector: list[float],
        must: list[models.Condition],
        limit: int,
        must_not: list[models.Condition] | None = None,
    ) -> list[VectorHit]:
        response = await self._run(
            self._get_client().query_points(
                collection,
                query=vector,
                query_filter=models.Filter(must=must, must_not=must_not or None),
                limit=limit,
                with_payload=True,
                with_vectors=False,
            )
        )
        hits: list[VectorHit] = []
        for point in response.points:
            payload: dict[str, Any] = point.payload or {}
            hits.append(
                VectorHit(
                    aggregate_id=str(payload["aggregate_id"]),
                    kind=cast(Kind, payload["kind"]),
                    score=float(point.score),
                    title=str(payload.get("title", "")),
                    text=str(payload.get("text", "")),
                    extra=dict(payload.get("extra") or {}),
                )
            )
        return hits

    async def count(self, collection: str, tenant_id: str | None = None) -> int:
        count_filter = (
            models.Filter(must=[_match("tenant_id", tenant_id)]) if tenant_id is not None else None
        )
        result = await self._run(
            self._get_client().count(collection, count_filter=count_filter, exact=True)
        )
        return result.count

    async def close(self) -> None:
        client, self._client = self._client, None
        self._closed = True
        if client is not None:
            await self._run(client.close())
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.call_soon_threadsafe(worker.stop)
            if self._worker_thread is not None:
                await asyncio.to_thread(self._worker_thread.join, 5)
            worker.close()


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _check_id(point_id: str) -> str:
    try:
        uuid.UUID(point_id)
    except ValueError:
        raise ValueError(f"Qdrant point ids must be UUIDs, got {point_id!r}") from None
    return point_id


def _point_struct(point: VectorPoint) -> models.PointStruct:
    return models.PointStruct(
        id=_check_id(point.id),
        vector=list(point.vector),
        payload={
            "tenant_id": point.tenant_id,
            "kind": point.kind,
            "aggregate_id": point.aggregate_id,
            "title": point.title,
            "text": point.text,
            "extra": dict(point.extra),
        },
    )
