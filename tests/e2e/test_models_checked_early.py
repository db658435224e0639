"""Models are checked before anything is appended (issue 10, item 6): a model litellm cannot
route is 422 when an agent or crew names it; a run whose models lack their provider's
credentials is 422 when requested, naming the variable, instead of failing as a run."""

from __future__ import annotations

import httpx
import pytest

from adapters.crewai.llm_check import credentials_problem, model_problem
from tests.e2e.conftest import AGENT, App, create_agent, create_crew


async def test_a_model_litellm_does_not_know_is_refused_at_definition(
    app: App, acme: httpx.AsyncClient,
) -> None:
    head = await app.kasal.store.head_position()
    agent = await acme.post("/api/v1/agents", json={**AGENT, "llm": "notaprovider/xyz"})
    assert agent.status_code == 422, agent.text
    assert agent.json()["error"] == "invalid_definition"
    assert agent.json()["message"].startswith(
        "llm: litellm does not know the model 'notaprovider/xyz'")
    known = await create_agent(acme, llm="kasal-offline/default")
    updated = await acme.put(f"/api/v1/agents/{known}", json={**AGENT, "llm": "gpt-9-turbo-x"})
    assert updated.status_code == 422
    crew = await acme.post("/api/v1/crews", json={
        "name": "managed", "process": "hierarchical", "manager_llm": "nope", "agents": [known],
        "tasks": [{"name": "t", "description": "d", "expected_output": "o"}]})
    assert crew.status_code == 422
    assert crew.json()["message"].startswith("manager_llm: litellm does not know")
    assert await app.kasal.store.head_position() == head + 1  # the one good agent


async def test_a_run_without_its_providers_credentials_is_refused_at_request(
    app: App, acme: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = await create_agent(acme, llm="openai/gpt-4o-mini")  # defining it is fine
    crew = await create_crew(acme, agent)
    head = await app.kasal.store.head_position()

    refused = await acme.post("/api/v1/executions", json={"crew_id": crew,
                                                          "inputs": {"topic": "x"}})

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "missing_credentials"
    assert "needs OPENAI_API_KEY" in refused.json()["message"]
    assert await app.kasal.store.head_position() == head
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    for base in ("OPENAI_API_BASE", "OPENAI_BASE_URL"):  # the run reaches nothing outside
        monkeypatch.setenv(base, "http://127.0.0.1:9/v1")
    accepted = await acme.post("/api/v1/executions", json={"crew_id": crew,
                                                           "inputs": {"topic": "x"}})
    assert accepted.status_code == 202, accepted.text
    cancelled = await acme.post(f"/api/v1/executions/{accepted.json()['id']}/cancel",
                                json={"reason": "the key is not real"})
    assert cancelled.status_code in (202, 409), cancelled.text  # 409: it failed already


def test_only_secrets_count_as_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    assert credentials_problem("ollama/llama3") is None  # a local default, no secret
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    problem = credentials_problem("anthropic/claude-3-5-haiku-latest")
    assert problem is not None and "ANTHROPIC_API_KEY" in problem
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert credentials_problem("anthropic/claude-3-5-haiku-latest") is None
    assert model_problem("kasal-offline/anything") is None
    assert credentials_problem("kasal-offline/anything") is None
    assert model_problem("xyz") is not None


async def test_a_network_tool_without_its_key_is_refused_naming_the_variable(
    app: App, acme: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A network tool's credentials are checked where the agent is defined, and again when
    a run of it is requested: 422 naming the variable, nothing appended."""
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    head = await app.kasal.store.head_position()
    refused = await acme.post("/api/v1/agents", json={**AGENT, "tools": ["serper_search"]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "missing_credentials"
    assert refused.json()["message"] == (
        "tools[0]: tool 'serper_search' needs SERPER_API_KEY in the environment of the "
        "processes that run it: set it there, or remove the tool")
    assert await app.kasal.store.head_position() == head

    monkeypatch.setenv("SERPER_API_KEY", "not-a-real-key")
    agent = await create_agent(acme, tools=["serper_search"])
    crew = await create_crew(acme, agent)
    monkeypatch.delenv("SERPER_API_KEY")
    head = await app.kasal.store.head_position()
    run = await acme.post("/api/v1/executions", json={"crew_id": crew, "inputs": {"topic": "x"}})
    assert run.status_code == 422, run.text
    assert "needs SERPER_API_KEY" in run.json()["message"]
    assert await app.kasal.store.head_position() == head
