"""An agent with crewai-tools' file tools, run on every deployment: it reads and writes the
files of its tenant's workspace only, every call recorded; tool options that cannot hold
are 422 at definition, nothing appended."""

from __future__ import annotations

import httpx
import pytest

from adapters.crewai.workspace import Workspace
from tests.e2e.conftest import AGENT, App
from tests.e2e.test_runs import finished, run, stream


async def test_an_agent_reads_and_writes_its_tenant_s_workspace(
    app: App, acme: httpx.AsyncClient,
) -> None:
    acme_space = Workspace(app.kasal.settings.workspace_dir, "acme")
    acme_space.put("notes.txt", b"Owls hunt at night and fly silently.")
    agent = await acme.post("/api/v1/agents", json={
        **AGENT, "llm": "kasal-offline/default", "tools": ["file_read", "file_write"]})
    assert agent.status_code == 201, agent.text
    crew = await acme.post("/api/v1/crews", json={
        "name": "files", "agents": [agent.json()["id"]], "tasks": [
            {"name": "read", "description": "Summarise what notes.txt says.",
             "expected_output": "One sentence.", "agent": agent.json()["id"]},
            {"name": "write", "description": "Write a short summary and save it as "
             "out/summary.md.", "expected_output": "Done.", "agent": agent.json()["id"]}]})
    assert crew.status_code == 201, crew.text
    execution_id = await run(acme, crew.json()["id"], inputs={})
    events = await stream(acme, execution_id)
    used = [e["data"]["data"] for e in events if e["event"] == "ExecutionToolUsed"]
    assert [(u["task_name"], u["tool"]) for u in used] == [
        ("read", "read_a_files_content"), ("write", "file_writer_tool")], used
    assert "Owls hunt at night" in used[0]["output"]
    view = await finished(acme, execution_id)
    assert view["status"] == "completed", view["error"]
    written = acme_space.root / "out" / "summary.md"
    assert written.is_file() and "notes.txt" in written.read_text()
    assert Workspace(app.kasal.settings.workspace_dir, "globex").files() == []


@pytest.mark.parametrize(("tools", "tool_config", "message"), [
    (["file_read"], {"file_read": {"file_path": "../../etc/passwd"}}, "leaves the workspace"),
    (["file_read"], {"file_read": {"base_dir": "/"}}, "takes file_path; not base_dir"),
    ([], {"file_read": {"file_path": "a.txt"}}, "does not use tool 'file_read'"),
    (["file_read"], {"file_read": {"file_path": "a\x00.txt"}}, "tool_config"),
    (["file_read"], {"file_read": {"file_path": "\t/etc/passwd"}}, "is absolute"),
    (["file_read"], {"file_read": {"file_path": " ../x"}}, "leaves the workspace"),
])
async def test_tool_options_that_cannot_hold_are_422_and_nothing_is_appended(
    app: App, acme: httpx.AsyncClient, tools: list[str], tool_config: dict[str, object],
    message: str,
) -> None:
    head = await app.kasal.store.head_position()
    response = await acme.post("/api/v1/agents",
                               json={**AGENT, "tools": tools, "tool_config": tool_config})
    assert response.status_code == 422, response.text
    assert message in response.text
    assert await app.kasal.store.head_position() == head


async def test_a_file_uploaded_through_the_api_is_read_by_an_agent_s_file_tool(
    app: App, acme: httpx.AsyncClient,
) -> None:
    uploaded = await acme.put("/api/v1/workspace/files/field/owls.txt",
                              content=b"Barn owls swallow their prey whole.")
    assert uploaded.status_code == 201, uploaded.text
    agent = await acme.post("/api/v1/agents", json={
        **AGENT, "llm": "kasal-offline/default", "tools": ["file_read", "file_write"]})
    assert agent.status_code == 201, agent.text
    crew = await acme.post("/api/v1/crews", json={
        "name": "files", "agents": [agent.json()["id"]], "tasks": [
            {"name": "read", "description": "Summarise what field/owls.txt says.",
             "expected_output": "One sentence.", "agent": agent.json()["id"]},
            {"name": "write", "description": "Write a short summary and save it as "
             "out/owls.md.", "expected_output": "Done.", "agent": agent.json()["id"]}]})
    assert crew.status_code == 201, crew.text
    execution_id = await run(acme, crew.json()["id"], inputs={})
    events = await stream(acme, execution_id)
    used = [e["data"]["data"] for e in events if e["event"] == "ExecutionToolUsed"]
    assert [(u["task_name"], u["tool"]) for u in used] == [
        ("read", "read_a_files_content"), ("write", "file_writer_tool")], used
    assert "Barn owls swallow their prey whole." in used[0]["output"]
    view = await finished(acme, execution_id)
    assert view["status"] == "completed", view["error"]
    # and what the agent wrote comes back through the API
    listed = (await acme.get("/api/v1/workspace/files")).json()["items"]
    assert [f["path"] for f in listed] == ["field/owls.txt", "out/owls.md"]
    written = await acme.get("/api/v1/workspace/files/out/owls.md")
    assert written.status_code == 200, written.text
    assert b"field/owls.txt" in written.content
