"""Semantic search over HTTP: a real embedding model (wordllama, shipped in its package) and
Qdrant in local mode, fed by the vector projector from the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kasal.bootstrap import bootstrap
from kasal.web import build_app
from tests.e2e.conftest import AGENT, App, open_app, settings_for
from tests.qdrant import qdrant_env, search_deployments


# Vector search needs a Qdrant server in the distributed deployment (local mode is one
# process's folder): the test server (tests/qdrant.py), when there is one.
@pytest.fixture(params=search_deployments())
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    if request.param == "distributed":
        qdrant_env("")  # fails, saying why, when there is no server
    async with open_app(request.param, tmp_path) as opened:
        yield opened


CORPUS = {
    "ml": ("Machine Learning Researcher", "Train neural networks and study deep learning models",
           "A scientist of artificial intelligence and machine learning."),
    "nlp": ("Language Model Scientist", "Research large language models and AI",
            "Publishes papers on neural language models."),
    "chef": ("Pasta Chef", "Cook fresh pasta and Italian sauces",
             "Runs a kitchen that makes tomato sauce and ravioli."),
    "accountant": ("Tax Accountant", "Prepare tax returns and balance budgets",
                   "Handles invoices, payroll and financial statements."),
}


async def define_corpus(client: httpx.AsyncClient) -> tuple[dict[str, str], int]:
    ids, position = {}, 0
    for key, (role, goal, backstory) in CORPUS.items():
        response = await client.post("/api/v1/agents", json={
            **AGENT, "role": role, "goal": goal, "backstory": backstory})
        assert response.status_code == 201, response.text  # a refusal says why
        ids[key] = response.json()["id"]
        position = response.json()["position"]
    return ids, position


async def search(client: httpx.AsyncClient, q: str, position: int, **params: object) -> list[dict]:
    response = await client.get("/api/v1/search",
                                params={"q": q, "min_position": position, **params})
    assert response.status_code == 200, response.text
    assert response.json()["position"] >= position
    return list(response.json()["items"])


async def test_related_agents_rank_above_unrelated_ones(acme: httpx.AsyncClient) -> None:
    ids, position = await define_corpus(acme)
    hits = await search(acme, "deep learning and neural networks", position)
    top_two = {h["id"] for h in hits[:2]}
    assert top_two == {ids["ml"], ids["nlp"]}
    assert hits[0]["score"] > hits[-1]["score"]
    cooking = await search(acme, "Italian pasta kitchen", position)
    assert cooking[0]["id"] == ids["chef"]


async def test_another_tenants_near_identical_text_never_appears(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    ours, _ = await define_corpus(acme)
    theirs, position = await define_corpus(globex)
    hits = await search(acme, "Machine Learning Researcher", position, limit=50)
    assert {h["id"] for h in hits} == set(ours.values())
    assert not {h["id"] for h in hits} & set(theirs.values())


async def test_archived_agents_disappear_and_kind_filters(acme: httpx.AsyncClient) -> None:
    ids, _ = await define_corpus(acme)
    crew = await acme.post("/api/v1/crews", json={
        "name": "pasta night", "agents": [ids["chef"]],
        "tasks": [{"name": "cook", "description": "Cook pasta for ten people.",
                   "expected_output": "Dinner.", "agent": ids["chef"]}]})
    archived = await acme.delete(f"/api/v1/agents/{ids['chef']}")
    position = archived.json()["position"]
    hits = await search(acme, "pasta", position, limit=50)
    assert ids["chef"] not in {h["id"] for h in hits}
    crews = await search(acme, "pasta", position, kind="crew")
    assert [h["id"] for h in crews] == [crew.json()["id"]]
    assert crews[0]["kind"] == "crew" and crews[0]["title"] == "pasta night"


async def test_completed_execution_results_are_searchable(acme: httpx.AsyncClient) -> None:
    ids, _ = await define_corpus(acme)
    crew = (await acme.post("/api/v1/crews", json={
        "name": "tax season", "agents": [ids["accountant"]],
        "tasks": [{"name": "returns", "description": "Prepare the tax returns of {client}.",
                   "expected_output": "A summary.", "agent": ids["accountant"]}]})).json()
    run = (await acme.post("/api/v1/executions", json={
        "crew_id": crew["id"], "inputs": {"client": "Acme Corp"}})).json()
    events = await acme.get(f"/api/v1/executions/{run['id']}/events")
    assert "ExecutionCompleted" in events.text
    last_position = [line for line in events.text.splitlines() if line.startswith("data: ")][-1]
    position = int(last_position.split('"position": ')[1].split(",")[0])
    hits = await search(acme, "tax returns of Acme Corp", position, kind="execution")
    assert hits and hits[0]["id"] == run["id"]
    assert hits[0]["title"] == "result of tax season"


async def test_empty_oversized_or_missing_queries_are_422(acme: httpx.AsyncClient) -> None:
    for params in ({"q": "   "}, {"q": "x" * 1001}, {}, {"q": "ok", "kind": "robot"},
                   {"q": "ok", "limit": 0}):
        response = await acme.get("/api/v1/search", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["message"]


async def test_replaying_the_log_into_the_index_changes_nothing(app: App) -> None:
    async with await app.client("acme") as acme:
        _, position = await define_corpus(acme)
        before = await search(acme, "neural networks", position, limit=50)
        search_ = app.kasal.search
        assert search_ is not None
        count = await search_.index.count(search_.projector.collection)
        await search_.projector.rebuild()  # tracking back to zero: everything again
        await search_.projector.handle(await app.kasal.store.read_all(0, 10_000))
        after = await search(acme, "neural networks", position, limit=50)
        assert await search_.index.count(search_.projector.collection) == count
    assert [(h["id"], round(h["score"], 6)) for h in after] == [
        (h["id"], round(h["score"], 6)) for h in before
    ]


async def test_a_new_embedding_model_builds_a_new_collection_from_the_log(
    tmp_path: Path,
) -> None:
    first = await bootstrap(settings_for(tmp_path, KASAL_EMBEDDING_MODEL="wordllama"))
    await first.start()
    app = App(first, httpx.AsyncClient())
    key = await app.key("acme", "admin")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(build_app(first, manage_lifecycle=False)),
        base_url="http://kasal", headers={"Authorization": f"Bearer {key}"},
    ) as client:
        ids, position = await define_corpus(client)
        assert (await search(client, "pasta", position))[0]["id"] == ids["chef"]
    assert first.search is not None
    old_collection = first.search.projector.collection
    await first.stop()

    second = await bootstrap(settings_for(tmp_path,
                                          KASAL_EMBEDDING_MODEL="wordllama/l2_supercat_128"))
    await second.start()
    try:
        assert second.search is not None
        assert second.search.projector.collection != old_collection
        assert await second.wait_until_projected(10)
        await second.search.clock.wait_for(position, 30)
        result = await second.search.search("acme", "pasta")
        assert result.model == "wordllama/l2_supercat_128"
        assert result.hits[0].aggregate_id == ids["chef"]
        assert len(result.hits) == len(CORPUS)  # every agent, from the log, once
        assert await second.search.index.count(old_collection) == len(CORPUS)  # left as it was
    finally:
        await second.stop()
