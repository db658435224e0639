"""Crews really run: CrewAI with the offline model through litellm, driven and recorded as
events, observed over HTTP (queries and Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.e2e.conftest import AGENT
from tests.waiting import until

TERMINAL = {"completed", "failed", "cancelled"}


async def define(client: httpx.AsyncClient, tasks: list[dict[str, Any]], *, llm: str =
                 "kasal-offline/default", tools: list[str] | None = None,
                 process: str = "sequential", agents: int = 1) -> str:
    ids = []
    for i in range(agents):
        response = await client.post("/api/v1/agents", json={
            **AGENT, "role": f"Analyst {i}", "llm": llm, "tools": tools or []})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    body: dict[str, Any] = {"name": "crew", "process": process, "agents": ids, "tasks": [
        {**task, "agent": None if process == "hierarchical" else ids[n % len(ids)]}
        for n, task in enumerate(tasks)
    ]}
    response = await client.post("/api/v1/crews", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


TWO_TASKS = [
    {"name": "research", "description": "Research {topic}.", "expected_output": "Notes."},
    {"name": "write", "description": "Write about {topic}.", "expected_output": "Prose.",
     "context": ["research"]},
]


async def run(client: httpx.AsyncClient, crew_id: str, **body: Any) -> str:
    response = await client.post("/api/v1/executions",
                                 json={"crew_id": crew_id, "inputs": {"topic": "ai"}, **body})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if not line.startswith(":"))
        if fields:
            events.append({"id": int(fields["id"]), "event": fields["event"],
                           "data": json.loads(fields["data"])})
    return events


async def stream(client: httpx.AsyncClient, execution_id: str,
                 last_event_id: int | None = None) -> list[dict[str, Any]]:
    """The SSE stream until the execution ends (the server closes it then)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
    response = await asyncio.wait_for(
        client.get(f"/api/v1/executions/{execution_id}/events", headers=headers), 120)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


async def finished(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    events = await stream(client, execution_id)
    view = await client.get(f"/api/v1/executions/{execution_id}",
                            params={"min_position": events[-1]["data"]["position"]})
    return dict(view.json())


async def test_a_sequential_crew_runs_to_completion_with_every_step_recorded(
    acme: httpx.AsyncClient,
) -> None:
    crew_id = await define(acme, TWO_TASKS, agents=2)
    execution_id = await run(acme, crew_id)
    events = await stream(acme, execution_id)
    types = [e["event"] for e in events]
    assert types[:2] == ["ExecutionRequested", "ExecutionStarted"]
    assert types[-1] == "ExecutionCompleted"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    started = [e["data"]["task_name"] for e in events if e["event"] == "ExecutionTaskStarted"]
    done = [e["data"]["task_name"] for e in events if e["event"] == "ExecutionTaskCompleted"]
    assert started == done == ["research", "write"]
    assert types.index("ExecutionLlmCallCompleted") > types.index("ExecutionTaskStarted")
    view = await finished(acme, execution_id)
    assert view["status"] == "completed"
    assert "kasal-offline" in view["result"]
    assert [t["status"] for t in view["tasks"]] == ["completed", "completed"]
    assert all("kasal-offline" in t["output"] for t in view["tasks"])
    assert view["llm_calls"] >= 2 and view["total_tokens"] > 0
    assert view["started_at"] and view["finished_at"]
    timeline = await acme.get(f"/api/v1/executions/{execution_id}/timeline")
    assert [i["type"] for i in timeline.json()["items"]] == types


async def test_a_hierarchical_crew_completes_with_a_manager_model(acme: httpx.AsyncClient) -> None:
    crew_id = await define(acme, TWO_TASKS, process="hierarchical", agents=2)
    view = await finished(acme, await run(acme, crew_id))
    assert view["status"] == "completed", view["error"]
    assert "kasal-offline" in view["result"]


async def test_an_agent_uses_the_calculator_tool(acme: httpx.AsyncClient) -> None:
    crew_id = await define(acme, [{"name": "sum", "description": "What is 17 * 23?",
                                   "expected_output": "The number."}], tools=["calculator"])
    execution_id = await run(acme, crew_id, inputs={})
    events = await stream(acme, execution_id)
    tools = [e["data"]["data"] for e in events if e["event"] == "ExecutionToolUsed"]
    assert tools and tools[0]["tool"] == "calculator" and "391" in tools[0]["output"]
    assert tools[0]["error"] is None and isinstance(tools[0]["duration_ms"], int)
    view = await finished(acme, execution_id)
    assert "391" in view["result"]


async def test_an_unknown_tool_is_refused_when_the_agent_is_defined(
    acme: httpx.AsyncClient,
) -> None:
    response = await acme.post("/api/v1/agents", json={**AGENT, "tools": ["shell"]})
    assert response.status_code == 422
    assert "unknown tools shell; available: brave_search, calculator" in \
        response.json()["message"]


async def test_a_failing_model_fails_the_execution_with_its_cause(acme: httpx.AsyncClient) -> None:
    crew_id = await define(acme, TWO_TASKS, llm="kasal-test/error")
    view = await finished(acme, await run(acme, crew_id))
    assert view["status"] == "failed"
    assert "kasal-test/error" in view["error"]


async def test_cancel_stops_a_running_execution_at_its_next_step(acme: httpx.AsyncClient) -> None:
    steps = [{"name": f"step{i}", "description": f"Step {i} of {{topic}}.",
              "expected_output": "Done."} for i in range(6)]
    crew_id = await define(acme, steps, llm="kasal-test/slow")
    execution_id = await run(acme, crew_id)
    async def running() -> bool:
        view = (await acme.get(f"/api/v1/executions/{execution_id}")).json()
        return bool(view.get("status") == "running")

    await until(running, timeout=30, what="the execution to start")
    cancel = await acme.post(f"/api/v1/executions/{execution_id}/cancel",
                             json={"reason": "changed plans"})
    assert cancel.status_code == 202
    view = await finished(acme, execution_id)
    assert view["status"] == "cancelled"
    assert view["cancel_reason"] == "changed plans"
    assert sum(t["status"] == "completed" for t in view["tasks"]) < 6
    # the task the cancel interrupted reads cancelled; none reads running
    statuses = [t["status"] for t in view["tasks"]]
    assert set(statuses) <= {"completed", "cancelled", "pending"} and statuses.count(
        "cancelled") <= 1, statuses


async def test_a_run_past_its_timeout_fails_with_the_reason(acme: httpx.AsyncClient) -> None:
    steps = [{"name": f"step{i}", "description": f"Step {i} of {{topic}}.",
              "expected_output": "Done."} for i in range(6)]
    crew_id = await define(acme, steps, llm="kasal-test/slow")
    view = await finished(acme, await run(acme, crew_id, timeout_s=0.5))
    assert view["status"] == "failed"
    assert view["error"] == "timed out after 0.5 s (timeout_s)"
    statuses = [t["status"] for t in view["tasks"]]
    assert set(statuses) <= {"completed", "failed", "pending"} and statuses.count(
        "failed") <= 1, statuses


async def test_concurrent_runs_never_mix_their_steps(acme: httpx.AsyncClient) -> None:
    crews = []
    for n in range(4):
        tasks = [{"name": f"crew{n}-task{i}", "description": f"Part {i} for crew {n}: {{topic}}.",
                  "expected_output": "Text."} for i in range(2)]
        crews.append(await define(acme, tasks))
    runs = [await run(acme, crew_id) for crew_id in crews]
    streams = await asyncio.gather(*(stream(acme, r) for r in runs))
    for n, events in enumerate(streams):
        names = {e["data"]["task_name"] for e in events if e["data"]["task_name"]}
        assert names == {f"crew{n}-task0", f"crew{n}-task1"}
        assert events[-1]["event"] == "ExecutionCompleted"


async def test_the_event_stream_resumes_after_last_event_id(acme: httpx.AsyncClient) -> None:
    crew_id = await define(acme, TWO_TASKS)
    execution_id = await run(acme, crew_id)
    everything = await stream(acme, execution_id)
    rest = await stream(acme, execution_id, last_event_id=3)
    assert [e["id"] for e in rest] == [e["id"] for e in everything if e["id"] > 3]
    assert rest[-1]["event"] == "ExecutionCompleted"


async def test_the_event_stream_of_another_tenants_execution_is_404(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    execution_id = await run(acme, await define(acme, TWO_TASKS))
    await stream(acme, execution_id)
    response = await globex.get(f"/api/v1/executions/{execution_id}/events")
    assert response.status_code == 404
