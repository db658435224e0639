"""The vector adapters for real: the packaged WordLlama model, and Qdrant both in local mode on
disk and as the test server (``scripts/qdrant.sh``)."""

from __future__ import annotations

import importlib
import math
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.vectors.embeddings import (
    WORDLLAMA_MODEL,
    LiteLLMEmbedder,
    WordLlamaEmbedder,
    build_embedder,
)
from adapters.vectors.qdrant_index import QdrantVectorIndex
from projections.vectors import Kind, VectorPoint, collection_name
from tests.qdrant import QDRANT_URL, drop_collections, qdrant_env, server_legs_run

PREFIX = f"kasal_vectors_{uuid.uuid4().hex[:8]}"  # this run's own on the shared test server
COLLECTION = collection_name(WORDLLAMA_MODEL, 256, PREFIX)
NAMESPACE = uuid.UUID("00000000-0000-4000-8000-000000000001")

CORPUS = {
    "ai-1": "Senior AI researcher who studies machine learning models, neural networks and "
    "deep learning, and writes research papers on them.",
    "ai-2": "Research scientist in artificial intelligence: trains and evaluates language "
    "models and reads the machine learning literature.",
    "cook-1": "Italian chef who cooks fresh pasta, risotto and tomato sauces, and writes "
    "recipes for home cooks.",
    "cook-2": "Pastry cook and recipe writer: bakes bread, cakes and desserts and plans "
    "kitchen menus.",
    "fin-1": "Financial analyst who reads balance sheets, values companies and forecasts stock "
    "market returns.",
    "fin-2": "Accountant and tax advisor who prepares budgets, audits expenses and manages "
    "investment portfolios.",
}


def pid(kind: Kind, aggregate_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{aggregate_id}"))


def points_for(
    embedder: WordLlamaEmbedder,
    texts: dict[str, str],
    *,
    tenant_id: str = "tenant-a",
    kind: Kind = "agent",
) -> list[VectorPoint]:
    vectors = embedder.embed(list(texts.values()))
    return [
        VectorPoint(
            id=pid(kind, aggregate_id),
            vector=vector,
            tenant_id=tenant_id,
            kind=kind,
            aggregate_id=aggregate_id,
            title=f"{aggregate_id} title",
            text=text,
            extra={"source": "test", "n": i},
        )
        for i, ((aggregate_id, text), vector) in enumerate(zip(texts.items(), vectors, strict=True))
    ]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> WordLlamaEmbedder:
    return WordLlamaEmbedder(tmp_path_factory.mktemp("models"))


def index_legs() -> list[object]:
    """Local mode (the embedded deployment), and the Qdrant server (the distributed one) when
    there is one: always in CI (tests/qdrant.py)."""
    return ["local", "server"] if server_legs_run() else ["local"]


@pytest.fixture(params=index_legs())
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QdrantVectorIndex]:
    if request.param == "local":
        index = QdrantVectorIndex(path=tmp_path / "qdrant")
    else:
        qdrant_env("")  # fails, saying why, when there is no server
        drop_collections(PREFIX)  # one left by a run that died
        index = QdrantVectorIndex(url=QDRANT_URL)
    await index.ensure_collection(COLLECTION, 256, WORDLLAMA_MODEL)
    yield index
    await index.close()
    if request.param == "server":
        drop_collections(PREFIX)


async def search(
    index: QdrantVectorIndex,
    embedder: WordLlamaEmbedder,
    query: str,
    *,
    tenant_id: str = "tenant-a",
    kind: Kind | None = None,
    limit: int = 10,
) -> list[Any]:
    [vector] = embedder.embed([query])
    return await index.search(COLLECTION, vector, tenant_id=tenant_id, kind=kind, limit=limit)


async def test_search_ranks_by_meaning(
    index: QdrantVectorIndex, embedder: WordLlamaEmbedder
) -> None:
    points = points_for(embedder, CORPUS)
    await index.upsert(COLLECTION, points)

    hits = await search(index, embedder, "machine learning researcher")
    ranked = [hit.aggregate_id for hit in hits]
    assert len(ranked) == 6
    assert set(ranked[:2]) == {"ai-1", "ai-2"}
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)

    hits = await search(index, embedder, "pasta recipes")
    assert [hit.aggregate_id for hit in hits][:2] == ["cook-1", "cook-2"]

    # the score is the cosine similarity, and the payload comes back whole
    [query_vector] = embedder.embed(["pasta recipes"])
    by_id = {p.aggregate_id: p for p in points}
    for hit in hits:
        assert hit.score == pytest.approx(cosine(query_vector, by_id[hit.aggregate_id].vector))
        assert hit.kind == "agent"
        assert hit.title == f"{hit.aggregate_id} title"
        assert hit.text == CORPUS[hit.aggregate_id]
        assert hit.extra == {"source": "test", "n": by_id[hit.aggregate_id].extra["n"]}

    assert len(await search(index, embedder, "pasta recipes", limit=3)) == 3


async def test_kind_filter(index: QdrantVectorIndex, embedder: WordLlamaEmbedder) -> None:
    await index.upsert(COLLECTION, points_for(embedder, CORPUS))
    crew = {"crew-ai": "A crew of machine learning researchers writing a survey paper."}
    await index.upsert(COLLECTION, points_for(embedder, crew, kind="crew"))

    everything = await search(index, embedder, "machine learning researcher")
    assert {(hit.aggregate_id, hit.kind) for hit in everything[:3]} == {
        ("ai-1", "agent"),
        ("ai-2", "agent"),
        ("crew-ai", "crew"),
    }
    agents = await search(index, embedder, "machine learning researcher", kind="agent")
    assert {hit.kind for hit in agents} == {"agent"}
    assert len(agents) == 6
    crews = await search(index, embedder, "machine learning researcher", kind="crew")
    assert [(hit.aggregate_id, hit.kind) for hit in crews] == [("crew-ai", "crew")]
    assert await search(index, embedder, "machine learning", kind="execution") == []


async def test_tenants_never_see_each_other(
    index: QdrantVectorIndex, embedder: WordLlamaEmbedder
) -> None:
    text = "AI researcher who studies machine learning and neural networks."
    await index.upsert(COLLECTION, points_for(embedder, {"a-agent": text}, tenant_id="tenant-a"))
    await index.upsert(
        COLLECTION,
        points_for(embedder, {"b-agent": text + " Also a researcher."}, tenant_id="tenant-b"),
    )
    await index.upsert(
        COLLECTION,
        points_for(embedder, {"b-cook": CORPUS["cook-1"]}, tenant_id="tenant-b"),
    )

    as_a = await search(index, embedder, text, tenant_id="tenant-a", limit=100)
    assert [hit.aggregate_id for hit in as_a] == ["a-agent"]
    as_b = await search(index, embedder, text, tenant_id="tenant-b", limit=100)
    assert {hit.aggregate_id for hit in as_b} == {"b-agent", "b-cook"}
    assert await search(index, embedder, text, tenant_id="tenant-c") == []

    assert await index.count(COLLECTION, tenant_id="tenant-a") == 1
    assert await index.count(COLLECTION, tenant_id="tenant-b") == 2
    assert await index.count(COLLECTION) == 3


async def test_upsert_is_idempotent(index: QdrantVectorIndex, embedder: WordLlamaEmbedder) -> None:
    points = points_for(embedder, CORPUS)
    await index.upsert(COLLECTION, points)
    before = [(h.aggregate_id, h.score) for h in await search(index, embedder, "stock analyst")]

    await index.upsert(COLLECTION, points)
    await index.upsert(COLLECTION, points_for(embedder, CORPUS))  # embedded again

    assert await index.count(COLLECTION) == 6
    after = [(h.aggregate_id, h.score) for h in await search(index, embedder, "stock analyst")]
    assert [aggregate_id for aggregate_id, _ in after] == [a for a, _ in before]
    # equal up to float32 rounding: qdrant-client's local mode normalizes a new point in
    # float32 but an updated one in float64 (observed differences ~1e-9)
    assert [score for _, score in after] == pytest.approx([s for _, s in before], abs=1e-6)

    # the same id with a new text replaces the point
    changed = points_for(embedder, {"fin-1": "Italian chef who cooks fresh pasta."})
    await index.upsert(COLLECTION, changed)
    assert await index.count(COLLECTION) == 6
    top = {hit.aggregate_id: hit.text for hit in await search(index, embedder, "pasta", limit=2)}
    assert top == {"cook-1": CORPUS["cook-1"], "fin-1": "Italian chef who cooks fresh pasta."}


async def test_delete(index: QdrantVectorIndex, embedder: WordLlamaEmbedder) -> None:
    await index.upsert(COLLECTION, points_for(embedder, CORPUS))
    assert (await search(index, embedder, "pasta recipes"))[0].aggregate_id == "cook-1"

    await index.delete(COLLECTION, [pid("agent", "cook-1")])

    hits = await search(index, embedder, "pasta recipes")
    assert "cook-1" not in {hit.aggregate_id for hit in hits}
    assert hits[0].aggregate_id == "cook-2"
    assert await index.count(COLLECTION) == 5
    # deleting again (a replayed event) and deleting nothing are no-ops
    await index.delete(COLLECTION, [pid("agent", "cook-1")])
    await index.delete(COLLECTION, [])
    assert await index.count(COLLECTION) == 5


async def test_refuses_another_dimension_or_model(index: QdrantVectorIndex) -> None:
    await index.ensure_collection(COLLECTION, 256, WORDLLAMA_MODEL)  # same: fine

    with pytest.raises(ValueError, match=r"256 dimensions.*makes 128"):
        await index.ensure_collection(COLLECTION, 128, WORDLLAMA_MODEL)
    with pytest.raises(
        ValueError,
        match=r"built with embedding model 'wordllama/l2_supercat_256'.*not 'openai/other'",
    ):
        await index.ensure_collection(COLLECTION, 256, "openai/other")

    other = collection_name("openai/other", 128, PREFIX)
    await index.ensure_collection(other, 128, "openai/other")
    assert await index.count(other) == 0


async def test_rejects_ids_that_are_not_uuids(index: QdrantVectorIndex) -> None:
    point = VectorPoint(
        id="agent:1", vector=[1.0] * 256, tenant_id="t", kind="agent",
        aggregate_id="1", title="", text="",
    )  # fmt: skip
    with pytest.raises(ValueError, match="must be UUIDs"):
        await index.upsert(COLLECTION, [point])
    assert await index.count(COLLECTION) == 0


async def test_index_persists_across_reopen(tmp_path: Path, embedder: WordLlamaEmbedder) -> None:
    path = tmp_path / "qdrant"
    first = QdrantVectorIndex(path=path)
    await first.ensure_collection(COLLECTION, 256, WORDLLAMA_MODEL)
    await first.upsert(COLLECTION, points_for(embedder, CORPUS))
    await first.close()
    with pytest.raises(RuntimeError, match="closed"):
        await first.count(COLLECTION)

    second = QdrantVectorIndex(path=path)
    try:
        await second.ensure_collection(COLLECTION, 256, WORDLLAMA_MODEL)
        assert await second.count(COLLECTION) == 6
        hits = await search(second, embedder, "pasta recipes")
        assert [hit.aggregate_id for hit in hits][:2] == ["cook-1", "cook-2"]
        # the recorded model survives the reopen too
        with pytest.raises(ValueError, match="built with embedding model"):
            await second.ensure_collection(COLLECTION, 256, "openai/other")
    finally:
        await second.close()


def test_index_needs_a_path_or_a_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        QdrantVectorIndex()
    with pytest.raises(ValueError, match="exactly one"):
        QdrantVectorIndex(path=tmp_path, url="http://localhost:6333")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way out recorded and refused: requests (wordllama's downloader), raw sockets."""
    attempts: list[str] = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what} {args[:2]!r}")
            raise AssertionError(f"network access: {what}")

        return refused

    monkeypatch.setattr(requests, "get", refuse("requests.get"))
    monkeypatch.setattr(requests.Session, "request", refuse("requests.Session.request"))
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    yield attempts


def test_embedder_is_offline_and_deterministic(tmp_path: Path, no_network: list[str]) -> None:
    cache = tmp_path / "models"
    first = WordLlamaEmbedder(cache)
    texts = ["An AI researcher.", "A pasta chef.", ""]

    vectors = first.embed(texts)

    assert (first.model, first.dimension) == ("wordllama/l2_supercat_256", 256)
    assert [len(v) for v in vectors] == [256, 256, 256]
    assert all(type(x) is float for v in vectors for x in v)
    assert vectors[2] == [0.0] * 256  # no tokens: the zero vector
    assert first.embed(texts) == vectors
    assert first.embed(["A pasta chef."]) == [vectors[1]]  # batch-independent
    assert WordLlamaEmbedder(cache).embed(texts) == vectors  # reloaded: the same
    assert WordLlamaEmbedder(tmp_path / "elsewhere").embed(texts) == vectors
    assert first.embed([]) == []
    assert (cache / "tokenizers" / "l2_supercat_tokenizer_config.json").is_file()
    assert no_network == []


def test_smaller_wordllama_models_truncate_the_shipped_one(
    tmp_path: Path, embedder: WordLlamaEmbedder, no_network: list[str]
) -> None:
    texts = ["An AI researcher.", "A pasta chef."]
    full = embedder.embed(texts)
    for dimension in (128, 64):
        small = WordLlamaEmbedder(tmp_path / "models", dimension)
        assert small.model == f"wordllama/l2_supercat_{dimension}"
        assert small.embed(texts) == [vector[:dimension] for vector in full]
    assert no_network == []


def test_embedder_loads_once_under_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    word_llama = importlib.import_module("wordllama").WordLlama  # untyped: kept as Any
    loads: list[int] = []
    real_load = word_llama.load

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(word_llama, "load", counting_load)
    embedder = WordLlamaEmbedder(tmp_path / "models")
    barrier = threading.Barrier(6)
    results: list[list[list[float]]] = []

    def work() -> None:
        barrier.wait()
        results.append(embedder.embed(["A financial analyst."]))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert loads == [1]
    assert len(results) == 6
    assert all(result == results[0] for result in results)
    assert no_network == []


def test_build_embedder(tmp_path: Path) -> None:
    for name in ("wordllama", "wordllama/l2_supercat_256"):
        embedder = build_embedder(name, tmp_path)
        assert isinstance(embedder, WordLlamaEmbedder)
        assert (embedder.model, embedder.dimension) == (WORDLLAMA_MODEL, 256)
    small = build_embedder("wordllama/l2_supercat_128", tmp_path)
    assert isinstance(small, WordLlamaEmbedder)
    assert (small.model, small.dimension) == ("wordllama/l2_supercat_128", 128)
    with pytest.raises(ValueError, match="would need a download"):
        build_embedder("wordllama/l2_supercat_512", tmp_path)
    other = build_embedder("openai/text-embedding-3-small", tmp_path)
    assert isinstance(other, LiteLLMEmbedder)
    assert other.model == "openai/text-embedding-3-small"


def test_litellm_embedder_with_litellm_mock() -> None:
    """litellm.embedding(mock_response=[...]) answers ONE vector whatever the input, with no
    provider call: enough to check the dimension discovery and the count check."""
    embedder = LiteLLMEmbedder(
        "openai/text-embedding-3-small", options={"mock_response": [0.5, -0.25, 1.0]}
    )
    assert embedder.dimension == 3  # learnt from a probe call
    assert embedder.embed(["hello"]) == [[0.5, -0.25, 1.0]]
    with pytest.raises(ValueError, match="returned 1 embeddings for 2 texts"):
        embedder.embed(["a", "b"])

    declared = LiteLLMEmbedder(
        "openai/text-embedding-3-small", 4, options={"mock_response": [0.5, -0.25, 1.0]}
    )
    assert declared.dimension == 4
    with pytest.raises(ValueError, match="3 dimensions, expected 4"):
        declared.embed(["hello"])


def test_collections_are_named_by_prefix_model_and_dimension() -> None:
    """Deployments sharing one Qdrant server keep apart by KASAL_QDRANT_COLLECTION_PREFIX."""
    assert collection_name("wordllama/l2", 256) == "kasal_wordllama_l2_256"
    assert collection_name("openai/Text-3", 128, "blue") == "blue_openai_text_3_128"
