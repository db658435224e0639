"""Crew memory over HTTP: a crew with ``memory`` on recalls its earlier runs' task outputs.

Observable: the model's request messages are not recorded (only their hash), but the
offline model says what it remembers when CrewAI put recalled memory into its prompt
(``It remembers: ...``), so the recorded response of a run's first model call shows
exactly the memory that reached the prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AGENT, App, open_app
from tests.e2e.test_runs import stream
from tests.qdrant import qdrant_env, search_deployments


# Vector search needs a Qdrant server in the distributed deployment (local mode is one
# process's folder): the test server (tests/qdrant.py), when there is one.
@pytest.fixture(params=search_deployments())
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    if request.param == "distributed":
        qdrant_env("")  # fails, saying why, when there is no server
    async with open_app(request.param, tmp_path) as opened:
        yield opened


REMEMBERS = "It remembers:"


async def define_memory_crew(client: httpx.AsyncClient, *, memory: bool) -> str:
    agent = await client.post("/api/v1/agents", json={**AGENT, "llm": "kasal-offline/default"})
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    crew = await client.post("/api/v1/crews", json={
        "name": "naturalists", "process": "sequential", "agents": [agent_id], "memory": memory,
        "tasks": [{"name": "research", "description": "Research {topic}.",
                   "expected_output": "Notes.", "agent": agent_id}],
    })
    assert crew.status_code == 201, crew.text
    return str(crew.json()["id"])


async def run_to_end(client: httpx.AsyncClient, crew_id: str, topic: str) -> list[dict[str, Any]]:
    response = await client.post("/api/v1/executions",
                                 json={"crew_id": crew_id, "inputs": {"topic": topic}})
    assert response.status_code == 202, response.text
    events = await stream(client, str(response.json()["id"]))
    assert events[-1]["event"] == "ExecutionCompleted", events[-1]
    return events


def first_response(events: list[dict[str, Any]]) -> str:
    call = next(e for e in events if e["event"] == "ExecutionLlmCallCompleted")
    return str(call["data"]["data"]["call"]["response"])


def task_output(events: list[dict[str, Any]], task: str) -> str:
    done = next(e for e in events if e["event"] == "ExecutionTaskCompleted"
                and e["data"]["data"]["task_name"] == task)
    return str(done["data"]["data"]["output"])


async def test_a_memory_crew_recalls_its_earlier_runs_task_output(
    acme: httpx.AsyncClient,
) -> None:
    crew_id = await define_memory_crew(acme, memory=True)
    first = await run_to_end(acme, crew_id, "emperor penguins")
    assert REMEMBERS not in first_response(first)  # nothing before the first run
    remembered = f"research: {task_output(first, 'research')}"
    assert "emperor penguins" in remembered

    second = await run_to_end(acme, crew_id, "penguin colonies")
    response = first_response(second)
    assert REMEMBERS in response
    assert remembered in response  # run 1's task output reached run 2's first prompt
    # and run 2 never recalls itself: only one memory line, run 1's
    assert response.count("(score=") == 1


async def test_a_crew_without_memory_recalls_nothing(acme: httpx.AsyncClient) -> None:
    crew_id = await define_memory_crew(acme, memory=False)
    await run_to_end(acme, crew_id, "emperor penguins")
    second = await run_to_end(acme, crew_id, "penguin colonies")
    assert REMEMBERS not in first_response(second)


async def test_memory_stays_within_its_crew_and_tenant(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    ours = await define_memory_crew(acme, memory=True)
    await run_to_end(acme, ours, "emperor penguins")
    # the same crew, defined by another tenant, and another memory crew of acme
    theirs = await define_memory_crew(globex, memory=True)
    assert REMEMBERS not in first_response(await run_to_end(globex, theirs, "emperor penguins"))
    other = await define_memory_crew(acme, memory=True)
    assert REMEMBERS not in first_response(await run_to_end(acme, other, "emperor penguins"))
