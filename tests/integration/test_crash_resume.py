"""SIGKILL a real `kasal serve` in the middle of a run; the next start resumes the run from
its last completed task, answering recorded LLM calls from the log instead of the model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import Server

TASKS = 6


def follow(client: httpx.Client, execution_id: str, until: Callable[[list[str]], bool]) -> int:
    """Read the execution's Server-Sent Events until ``until(event types so far)`` or the
    end of the stream; return the log position of the last event read."""
    seen: list[str] = []
    position = 0
    with client.stream("GET", f"/executions/{execution_id}/events") as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            elif line.startswith("data: "):
                position = int(json.loads(line.removeprefix("data: "))["position"])
                if until(seen):
                    break
    return position


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    yield server
    server.stop()


def timeline(client: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/executions/{execution_id}/timeline")
    return list(response.json().get("items", [])) if response.status_code == 200 else []


def test_sigkill_mid_run_resumes_without_repeating_llm_calls(server: Server) -> None:
    server.start()
    with server.client() as client:
        agent = client.post("/agents", json={
            "role": "Planner", "goal": "Plan {topic}", "backstory": "Plans things.",
            "llm": "kasal-test/slow"}).json()["id"]
        crew = client.post("/crews", json={"name": "long", "agents": [agent], "tasks": [
            {"name": f"step{i}", "description": f"Step {i} of planning {{topic}}.",
             "expected_output": "A short plan step.", "agent": agent} for i in range(TASKS)
        ]}).json()["id"]
        execution_id = client.post("/executions", json={
            "crew_id": crew, "inputs": {"topic": "a launch"}}).json()["id"]

        follow(client, execution_id, lambda seen: seen.count("ExecutionTaskCompleted") >= 2)
    server.kill()  # SIGKILL: no shutdown code runs

    server.start()  # the same data dir: the runner resumes what the log left running
    with server.client() as client:
        end = follow(client, execution_id, lambda seen: False)  # it ends with the run
        view = client.get(f"/executions/{execution_id}", params={"min_position": end}).json()
        events = timeline(client, execution_id)
    assert view["status"] == "completed", view["error"]
    types = [e["type"] for e in events]
    assert types.count("ExecutionStarted") == 1
    completed = [e["task_name"] for e in events if e["type"] == "ExecutionTaskCompleted"]
    assert completed == [f"step{i}" for i in range(TASKS)]  # each task once, in order
    hashes = [e["data"]["call"]["request_hash"] for e in events
              if e["type"] == "ExecutionLlmCallCompleted"]
    assert len(hashes) == len(set(hashes)), "an LLM call recorded before the kill was made again"
    completion = events[-1]["data"]
    assert completion["usage"]["replayed_llm_calls"] >= 2  # the calls of the finished tasks
