"""Knowledge sources over HTTP (issue 10, item 5): a document added at /api/v1/knowledge is
chunked into its event, indexed by the vector projector with the offline embedder, and
recalled by CrewAI's knowledge retrieval for the agents and crews that name it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import AGENT, App, open_app
from tests.e2e.test_memory import run_to_end
from tests.qdrant import qdrant_env, search_deployments

OWLS = ("Barn owls hunt by sound alone: their facial disc funnels the faint rustle of a "
        "mouse to ears set at different heights.")
BEES = "Honey bees dance to tell the hive where flowers are."


@pytest.fixture(params=search_deployments())
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    if request.param == "distributed":
        qdrant_env("")  # fails, saying why, when there is no server
    async with open_app(request.param, tmp_path) as opened:
        yield opened


POSITION: dict[str, int] = {}  # a source's id -> the position of its event


async def add(client: httpx.AsyncClient, name: str, text: str, **extra: object) -> str:
    response = await client.post("/api/v1/knowledge", json={"name": name, "text": text, **extra})
    assert response.status_code == 201, response.text
    POSITION[response.json()["id"]] = response.json()["position"]
    return str(response.json()["id"])


async def test_a_crews_knowledge_reaches_its_tasks_and_is_listed(
    app: App, acme: httpx.AsyncClient,
) -> None:
    owls, bees = await add(acme, "owls.txt", OWLS), await add(acme, "bees.md", BEES,
                                                               media_type="text/markdown")
    agent = await acme.post("/api/v1/agents", json={**AGENT, "knowledge_sources": [bees]})
    assert agent.status_code == 201, agent.text
    crew = await acme.post("/api/v1/crews", json={
        "name": "naturalists", "agents": [agent.json()["id"]], "knowledge_sources": [owls],
        "tasks": [{"name": "explain", "description": "Explain how barn owls find {topic}.",
                   "expected_output": "Two sentences.", "agent": agent.json()["id"]}]})
    assert crew.status_code == 201, crew.text

    events = await run_to_end(acme, crew.json()["id"], "mice")

    calls = [e["data"]["data"]["call"] for e in events
             if e["event"] == "ExecutionLlmCallCompleted"]
    assert calls[0]["response"] == "Explain how barn owls find mice."  # CrewAI's rewrite
    assert OWLS[:60] in calls[1]["response"] and BEES[:40] in calls[1]["response"]
    listed = await acme.get("/api/v1/knowledge", params={"min_position": events[-1]["id"]})
    assert listed.status_code == 200, listed.text
    assert [(k["name"], k["media_type"], k["chunks"], k["characters"])
            for k in listed.json()["items"]] == [("owls.txt", "text/plain", 1, len(OWLS)),
                                                  ("bees.md", "text/markdown", 1, len(BEES))]
    view = (await acme.get(f"/api/v1/crews/{crew.json()['id']}")).json()
    assert view["knowledge_sources"] == [owls]


async def test_a_long_document_is_chunked_as_crewai_chunks_it_and_each_chunk_recalled(
    app: App, acme: httpx.AsyncClient,
) -> None:
    filler = "Kestrels hover over open fields while they watch for voles. " * 70  # ~4,200
    source = await add(acme, "birds.txt", filler + OWLS)
    added = (await acme.get(f"/api/v1/knowledge/{source}",
                            params={"min_position": POSITION[source]})).json()
    assert added["chunks"] == 2 and added["characters"] == len(filler + OWLS)
    agent = await acme.post("/api/v1/agents", json={**AGENT, "knowledge_sources": [source]})
    crew = await acme.post("/api/v1/crews", json={
        "name": "birders", "agents": [agent.json()["id"]],
        "tasks": [{"name": "q", "description": "How do barn owls hear {topic}?",
                   "expected_output": "One sentence.", "agent": agent.json()["id"]}]})
    events = await run_to_end(acme, crew.json()["id"], "mice")
    answer = [e["data"]["data"]["call"]["response"] for e in events
              if e["event"] == "ExecutionLlmCallCompleted"][1]
    assert "It knows:" in answer and "Kestrels" in answer  # both chunks, 5 results asked


async def test_knowledge_is_the_tenants_own_and_archived_knowledge_is_not_named_anew(
    app: App, acme: httpx.AsyncClient, globex: httpx.AsyncClient,
) -> None:
    owls = await add(acme, "owls.txt", OWLS)
    head = await app.kasal.store.head_position()
    theirs = await globex.post("/api/v1/agents", json={**AGENT, "knowledge_sources": [owls]})
    assert theirs.status_code == 422, theirs.text
    assert theirs.json()["message"] == f"knowledge_sources[0]: knowledge source {owls} not found"
    assert (await globex.get(f"/api/v1/knowledge/{owls}")).status_code == 404
    assert await app.kasal.store.head_position() == head

    mine = await acme.post("/api/v1/agents", json={**AGENT, "knowledge_sources": [owls]})
    assert mine.status_code == 201
    archived = await acme.delete(f"/api/v1/knowledge/{owls}")
    assert archived.status_code == 200, archived.text
    again = await acme.post("/api/v1/agents", json={**AGENT, "knowledge_sources": [owls]})
    assert again.status_code == 422
    assert again.json()["message"].endswith("is archived")
    # what names it keeps it: an edit of the agent that names it already is accepted, and
    # may add another source beside it; another agent may not take it up
    bees = await add(acme, "bees.md", BEES)
    edited = await acme.put(f"/api/v1/agents/{mine.json()['id']}",
                            json={**AGENT, "goal": "Know owls", "knowledge_sources": [owls, bees]})
    assert edited.status_code == 200, edited.text
    plain = await acme.post("/api/v1/agents", json=AGENT)
    taken = await acme.put(f"/api/v1/agents/{plain.json()['id']}",
                           json={**AGENT, "knowledge_sources": [owls]})
    assert taken.status_code == 422 and taken.json()["message"].endswith("is archived")
    twice = await acme.delete(f"/api/v1/knowledge/{owls}")
    assert twice.status_code == 409, twice.text


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "text": ""}, "text"),
    ({"name": "x", "text": "a" * 400_001}, "text"),
    ({"name": "x", "text": "ok", "media_type": "image/png"}, "media_type"),
    ({"name": "", "text": "ok"}, "name"),
    ({"name": "x", "text": "ok", "chunks": ["smuggled"]}, "chunks"),
])
async def test_a_bad_knowledge_source_is_422_naming_the_field(
    app: App, acme: httpx.AsyncClient, body: dict[str, object], field: str,
) -> None:
    head = await app.kasal.store.head_position()
    response = await acme.post("/api/v1/knowledge", json=body)
    assert response.status_code in (413, 422), response.text
    if response.status_code == 422:
        assert field in response.text
    assert await app.kasal.store.head_position() == head


async def test_a_search_tool_ranks_an_uploaded_files_chunks_with_the_index(
    app: App, acme: httpx.AsyncClient, globex: httpx.AsyncClient,
) -> None:
    """txt_search over a file put through the workspace route: crewai-tools' chunker cuts
    it, Kasal's embedder and vector index rank the chunks, the nearest comes first; another
    tenant's same-named file is its own."""
    others = [f"Kestrels hover over open fields while they watch for voles, number {i}. " * 12
              for i in range(6)]
    text = "\n\n".join([*others[:3], OWLS, *others[3:]])
    put = await acme.put("/api/v1/workspace/files/notes/birds.txt", content=text.encode())
    assert put.status_code == 201, put.text
    theirs = await globex.put("/api/v1/workspace/files/notes/birds.txt",
                              content=b"Globex's own notes: penguins.")
    assert theirs.status_code == 201, theirs.text
    for client, expected in ((acme, OWLS[:40]), (globex, "Globex's own notes")):
        agent = await client.post("/api/v1/agents", json={
            **AGENT, "tools": ["txt_search"],
            "tool_config": {"txt_search": {"txt": "notes/birds.txt"}}})
        assert agent.status_code == 201, agent.text
        crew = await client.post("/api/v1/crews", json={
            "name": "searchers", "agents": [agent.json()["id"]],
            "tasks": [{"name": "find", "description": "Look up how barn owls hear {topic}.",
                       "expected_output": "One line.", "agent": agent.json()["id"]}]})
        events = await run_to_end(client, crew.json()["id"], "mice")
        [used] = [e["data"]["data"] for e in events if e["event"] == "ExecutionToolUsed"]
        assert used["error"] is None, used
        # the nearest chunk (crewai-tools' TextChunker: at most 1,500 characters) holds it
        first = used["output"].removeprefix("Relevant Content:\n")[:1500]
        assert expected in first, used["output"][:300]
        assert ("Kestrels" in used["output"]) is (client is acme)  # 5 of acme's chunks
