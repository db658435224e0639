"""Search benchmark: vector indexing throughput and search latency at 10,000 points.

Run from the repo root::

    .venv/bin/python bench/search.py [--points N] [--queries Q] [--tenants T]

Local-mode Qdrant on a temporary disk folder, the default offline embedding model
(wordllama), Kasal's own vector projector and search. It measures and prints; it never
asserts a time. The last line is one JSON object.

1. Indexing: N agent definitions fed to ``VectorProjector.handle`` in batches of 500
   (embed, upsert, track), as a rebuild from the log does.
2. Search: Q queries through ``VectorSearch.search`` (embed the query, nearest points of ONE
   tenant, filtered inside Qdrant), spread over T tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adapters.sql.engines import make_engine
from adapters.vectors.embeddings import build_embedder
from adapters.vectors.qdrant_index import QdrantVectorIndex
from domain.envelope import RecordedEvent
from domain.ids import new_id
from projections.search import VectorSearch
from projections.vector_projector import VectorProjector

WORDS = [
    "research",
    "analyse",
    "write",
    "cook",
    "budget",
    "plan",
    "market",
    "design",
    "test",
    "deploy",
    "review",
    "audit",
    "finance",
    "travel",
    "health",
    "legal",
    "data",
    "model",
    "language",
    "vision",
    "pasta",
    "tax",
    "code",
    "cloud",
    "security",
    "sales",
    "support",
    "teach",
    "translate",
]


def agent_event(position: int, tenant: str, rng: random.Random) -> RecordedEvent:
    topic = " ".join(rng.sample(WORDS, 4))
    spec = {
        "role": f"{topic.split()[0].title()} specialist",
        "goal": f"Handle {topic}",
        "backstory": f"Years of work on {topic}.",
        "llm": "kasal-offline/default",
        "tools": [],
        "allow_delegation": False,
        "max_iter": 20,
    }
    return RecordedEvent(
        event_id=new_id(),
        aggregate_type="agent",
        aggregate_id=new_id(),
        version=1,
        type="AgentRegistered",
        schema_version=1,
        occurred_at="2026-11-27T00:00:00.000000Z",
        tenant_id=tenant,
        actor="bench",
        command_id=new_id(),
        correlation_id="b",
        causation_id="b",
        payload={"tenant_id": tenant, "spec": spec},
        position=position,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(points: int, queries: int, tenants: int, root: Path) -> dict[str, float]:
    embedder = build_embedder("wordllama", root / "models")
    index = QdrantVectorIndex(path=root / "qdrant")
    engine = make_engine(f"sqlite:///{root / 'kasal.db'}", immediate=True, durable=False)
    projector = VectorProjector(embedder, index, engine)
    search = VectorSearch(embedder, index, projector)
    await projector.initialize()
    rng = random.Random(7)
    events = [agent_event(i + 1, f"tenant-{i % tenants}", rng) for i in range(points)]
    embedder.embed(["warm up"])
    start = time.perf_counter()
    for i in range(0, points, 500):
        await projector.handle(events[i : i + 500])
    indexing_s = time.perf_counter() - start
    latencies = []
    for n in range(queries + 10):
        query = " ".join(rng.sample(WORDS, 3))
        t = time.perf_counter()
        result = await search.search(f"tenant-{n % tenants}", query, limit=10)
        if n >= 10:  # the first ten warm up
            latencies.append(time.perf_counter() - t)
        assert len(result.hits) == 10
    await index.close()
    await engine.dispose()
    return {
        "points": points,
        "indexing_s": indexing_s,
        "indexed_per_s": points / indexing_s,
        "search_p50_ms": statistics.median(latencies) * 1000,
        "search_p99_ms": pct(latencies, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kasal-search-bench-") as tmp:
        figures = asyncio.run(run(args.points, args.queries, args.tenants, Path(tmp)))
    title = f"Vector search, local-mode Qdrant, wordllama 256 d, {args.tenants} tenants"
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(
        "indexed (embed + upsert + track)",
        f"{figures['points']:,} in {figures['indexing_s']:.1f} s",
    )
    table.add_row("indexing throughput", f"{figures['indexed_per_s']:,.0f} items/s")
    table.add_row(f"search p50 ({args.queries} queries)", f"{figures['search_p50_ms']:.1f} ms")
    table.add_row("search p99", f"{figures['search_p99_ms']:.1f} ms")
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
