"""A task's output_file becomes an artifact of its execution (issue 10 item 4): listed at
/executions/{id}/artifacts and downloaded with its SHA-256 as ETag, on every deployment;
nothing is written to disk for it; bad paths are 422 and append nothing; another tenant
sees none of it."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.e2e.conftest import App
from tests.e2e.test_runs import define, finished, run
from tests.e2e.test_structured_outputs import BRIEF


async def test_a_task_s_output_file_is_an_artifact_of_its_run(
    app: App, acme: httpx.AsyncClient, globex: httpx.AsyncClient,
) -> None:
    crew = await define(acme, [
        {"name": "research", "description": "Research {topic}.", "expected_output": "Notes.",
         "output_file": "notes/{topic}.md"},
        {"name": "brief", "description": "Brief a reader on {topic}.",
         "expected_output": "A brief.", "output_schema": BRIEF, "output_file": "brief.json"},
        {"name": "close", "description": "Say goodbye.", "expected_output": "A line."},
    ])
    execution = await finished(acme, await run(acme, crew))
    defined = (await acme.get(f"/api/v1/crews/{crew}")).json()  # projected by now
    assert [t["output_file"] for t in defined["tasks"]] == ["notes/{topic}.md", "brief.json",
                                                            None]
    assert execution["status"] == "completed", execution["error"]
    research, brief, close = execution["tasks"]
    assert (research["artifact"], brief["artifact"], close["artifact"]) == (
        "notes/ai.md", "brief.json", None)

    listed = await acme.get(f"/api/v1/executions/{execution['id']}/artifacts")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(a["path"], a["task_name"], a["media_type"]) for a in items] == [
        ("notes/ai.md", "research", "text/markdown"), ("brief.json", "brief", "application/json")]

    notes = await acme.get(items[0]["url"])
    assert notes.status_code == 200, notes.text
    assert notes.text == research["output"]  # the answer, as CrewAI would have written it
    assert notes.headers["content-type"] == "text/markdown; charset=utf-8"
    assert notes.headers["etag"] == f'"{hashlib.sha256(notes.content).hexdigest()}"'
    assert items[0]["sha256"] == hashlib.sha256(notes.content).hexdigest()
    assert items[0]["size"] == len(notes.content)
    assert 'filename="ai.md"' in notes.headers["content-disposition"]
    assert notes.headers["x-content-type-options"] == "nosniff"
    answer = await acme.get(items[1]["url"])
    assert json.loads(answer.text) == brief["output_json"]  # the validated JSON

    # the timeline says so, without the content
    timeline = (await acme.get(f"/api/v1/executions/{execution['id']}/timeline")).json()
    stored = [e for e in timeline["items"] if e["type"] == "ExecutionArtifactStored"]
    assert [e["summary"] for e in stored] == [
        f"task 'research' wrote 'notes/ai.md' ({items[0]['size']} bytes)",
        f"task 'brief' wrote 'brief.json' ({items[1]['size']} bytes)"]
    assert all("content" not in e["data"] for e in stored)

    # nothing of it for another tenant, and no artifact that is not there
    for client, url in ((globex, items[0]["url"]),
                        (globex, f"/api/v1/executions/{execution['id']}/artifacts"),
                        (acme, f"/api/v1/executions/{execution['id']}/artifacts/other.md")):
        refused = await client.get(url)
        assert refused.status_code == 404, refused.text


async def test_an_output_file_that_names_no_artifact_is_422_and_appends_nothing(
    app: App, acme: httpx.AsyncClient,
) -> None:
    agent = (await acme.post("/api/v1/agents", json={
        "role": "R", "goal": "g", "backstory": "b"})).json()["id"]
    head = await app.kasal.store.head_position()
    for path, problem in (("../../etc/passwd", "must not have an empty, '.' or '..' part"),
                          ("/tmp/out.md", "must be a relative path"),
                          (".env", "part '.env' must be")):
        response = await acme.post("/api/v1/crews", json={
            "name": "c", "agents": [agent], "tasks": [{
                "name": "t", "description": "d", "expected_output": "o", "agent": agent,
                "output_file": path}]})
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(f"tasks[0].output_file {problem}"), \
            response.text
    assert await app.kasal.store.head_position() == head
    # an input that would lead the path out is refused when the run is requested
    crew = await define(acme, [{"name": "t", "description": "About {topic}.",
                                "expected_output": "o", "output_file": "{topic}/x.md"}])
    head = await app.kasal.store.head_position()
    response = await acme.post("/api/v1/executions",
                               json={"crew_id": crew, "inputs": {"topic": ".."}})
    assert response.status_code == 422, response.text
    assert "output_file is '../x.md' with these inputs" in response.json()["message"]
    assert await app.kasal.store.head_position() == head
