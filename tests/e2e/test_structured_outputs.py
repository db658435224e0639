"""Structured task outputs (issue 10, item 4, first part): a task's output_schema (what
CrewAI's output_json / output_pydantic say, as JSON Schema) makes the model answer in JSON,
which Kasal validates and returns per task; a bad schema is 422 and appends nothing."""

from __future__ import annotations

import httpx
import jsonschema

from tests.e2e.conftest import App
from tests.e2e.test_runs import define, finished, run

BRIEF = {
    "type": "object",
    "title": "Brief",
    "required": ["title", "points", "confidence", "sources"],
    "properties": {
        # CrewAI fills {names} of the prompt with the run's inputs: these must reach the
        # model as written (an unknown one would fail the run at kickoff)
        "title": {"type": "string", "maxLength": 80, "description": "{topic}: {subtitle}"},
        "points": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
        "tone": {"enum": ["plain", "formal"]},
        "sources": {"type": "array", "items": {"$ref": "#/$defs/Source"}},
    },
    "$defs": {"Source": {"type": "object", "required": ["url"],
                         "properties": {"url": {"type": "string", "format": "uri"}}}},
}


async def test_a_task_with_an_output_schema_returns_json_valid_against_it(
    acme: httpx.AsyncClient,
) -> None:
    crew = await define(acme, [
        {"name": "research", "description": "Research {topic}.", "expected_output": "Notes."},
        {"name": "brief", "description": "Brief a reader on {topic}.",
         "expected_output": "A brief.", "context": ["research"], "output_schema": BRIEF},
    ])
    execution = await finished(acme, await run(acme, crew))

    defined = (await acme.get(f"/api/v1/crews/{crew}")).json()  # projected by now
    assert defined["tasks"][1]["output_schema"] == BRIEF
    assert defined["tasks"][0]["output_schema"] is None

    assert execution["status"] == "completed", execution["error"]
    research, brief = execution["tasks"]
    assert research["output_json"] is None and research["output_problem"] is None
    assert brief["output_problem"] is None, brief["output"]
    jsonschema.validate(brief["output_json"], BRIEF)
    assert "kasal-offline" in brief["output_json"]["title"]  # the offline model says so
    timeline = (await acme.get(f"/api/v1/executions/{execution['id']}/timeline")).json()
    checked = [e for e in timeline["items"] if e["type"] == "ExecutionTaskOutputChecked"]
    assert [e["task_name"] for e in checked] == ["brief"]
    assert checked[0]["summary"] == "task 'brief' output: valid JSON"


async def test_an_output_schema_that_is_not_one_is_422_and_appends_nothing(
    app: App, acme: httpx.AsyncClient,
) -> None:
    agent = (await acme.post("/api/v1/agents", json={
        "role": "R", "goal": "g", "backstory": "b"})).json()["id"]
    head = await app.kasal.store.head_position()
    for schema, problem in (
        ({"type": "array"}, 'must be a JSON Schema of an object ("type": "object")'),
        ({"type": "object", "properties": {"a": {"type": "nope"}}},
         "is not a valid JSON Schema at properties/a/type"),
    ):
        response = await acme.post("/api/v1/crews", json={
            "name": "c", "agents": [agent], "tasks": [{
                "name": "t", "description": "d", "expected_output": "o", "agent": agent,
                "output_schema": schema}]})
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(f"tasks[0].output_schema {problem}")
    assert await app.kasal.store.head_position() == head
