"""A project's own tools (``tests/projects/own_tools_crew``: a ``BaseTool`` subclass with an
option and a ``@tool`` function) defined over the API as pinned code and run on every
deployment in their own processes; refused where the operator has not allowed project code;
a bundle whose content is not its pin is refused; a tool's failure, a call past its timeout
and a cancel mid-call each end as they should, the tool's process stopped."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.crewai.project import load_project
from adapters.crewai.workspace import Workspace
from domain.project_code import ProjectTool
from tests.e2e.conftest import DEPLOYMENTS, App, open_app
from tests.e2e.test_runs import finished, run, stream

PROJECT = Path(__file__).parents[1] / "projects" / "own_tools_crew"
ALLOWED = {"KASAL_ALLOW_PROJECT_CODE": True}


@pytest.fixture(scope="module")
def wordsmith() -> dict[str, Any]:
    """The project's agent as an API body: its two tools as code (read once: reading builds
    the crew in a subprocess)."""
    project = load_project(PROJECT, "kasal-offline/default", allow_code=True)
    assert project.dropped == ()
    return project.agents["wordsmith"].model_dump(mode="json")


@pytest.fixture(params=DEPLOYMENTS)
async def allowed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    async with open_app(request.param, tmp_path, **ALLOWED) as opened:
        yield opened


async def define(client: httpx.AsyncClient, agent: dict[str, Any],
                 *tasks: tuple[str, str]) -> str:
    created = await client.post("/api/v1/agents", json=agent)
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    crew = await client.post("/api/v1/crews", json={
        "name": "words", "agents": [agent_id], "tasks": [
            {"name": name, "description": description, "expected_output": "The answer.",
             "agent": agent_id} for name, description in tasks]})
    assert crew.status_code == 201, crew.text
    return str(crew.json()["id"])


def tool_uses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"]["data"] for e in events if e["event"] == "ExecutionToolUsed"]


async def test_a_projects_own_tools_run_from_their_pinned_source_in_their_own_process(
    allowed: App, wordsmith: dict[str, Any],
) -> None:
    async with await allowed.client("acme") as acme:
        crew_id = await define(acme, wordsmith,
                               ("reverse", "Use the Word Reverser on 'kasal'."),
                               ("count", "Use the Letter Counter on 'crews of agents'."))
        execution_id = await run(acme, crew_id, inputs={})
        events = await stream(acme, execution_id)
        view = await finished(acme, execution_id)
        assert view["status"] == "completed", view["error"]
        reversed_, counted = tool_uses(events)
        assert (reversed_["tool"], counted["tool"]) == ("word_reverser", "letter_counter")
        # the class got its option (suffix="?!"); its helper module came with it; it ran in
        # a process of its own, whose environment holds none of Kasal's settings
        assert reversed_["output"].startswith("lasak?! (pid ")
        pid = int(reversed_["output"].split("pid ")[1].split(",")[0])
        assert pid != os.getpid()
        assert reversed_["output"].endswith("kasal settings [])")
        assert "the project's tool prints this" not in reversed_["output"]
        assert counted["output"] == "13 letters"
        assert reversed_["error"] is None and counted["error"] is None

        (agent,) = (await acme.get("/api/v1/agents")).json()["items"]
        summaries = agent["project_tools"]
        assert {s["name"] for s in summaries.values()} == {"Word Reverser", "Letter Counter"}
        assert sorted(agent["tools"]) == sorted(f"project:{sha}" for sha in summaries)
        assert "own_tools_crew/tools/wording.py" in next(iter(summaries.values()))["files"]
        assert "def mirrored" not in str(agent)  # the source stays in the log


async def test_project_code_is_refused_where_the_operator_has_not_allowed_it(
    tmp_path: Path, wordsmith: dict[str, Any],
) -> None:
    async with open_app("sqlite", tmp_path, **ALLOWED) as app, \
            await app.client("acme") as acme:
        crew_id = await define(acme, wordsmith, ("reverse", "Use the Word Reverser on 'x'."))
    async with open_app("sqlite", tmp_path) as app, await app.client("acme") as acme:
        head = await app.kasal.store.head_position()
        refused = await acme.post("/api/v1/agents", json=wordsmith)
        assert refused.status_code == 422, refused.text
        assert "KASAL_ALLOW_PROJECT_CODE=true" in refused.json()["message"]
        assert "project:" in refused.json()["message"]
        # defined while it was allowed: its run is refused now, before anything runs
        request = await acme.post("/api/v1/executions", json={"crew_id": crew_id})
        assert request.status_code == 422, request.text
        assert "KASAL_ALLOW_PROJECT_CODE=true" in request.json()["message"]
        assert await app.kasal.store.head_position() == head


async def test_a_bundle_whose_content_is_not_its_pin_is_refused(
    tmp_path: Path, wordsmith: dict[str, Any],
) -> None:
    sha, bundle = next(iter(wordsmith["project_tools"].items()))
    files = dict(bundle["files"])
    files["own_tools_crew/tools/wording.py"] = "def mirrored(text):\n    return 'pwned'\n"
    tampered = {**wordsmith, "project_tools": {
        **wordsmith["project_tools"], sha: {**bundle, "files": files}}}
    unnamed = {**wordsmith, "tools": [t for t in wordsmith["tools"] if sha not in t]}
    async with open_app("sqlite", tmp_path, **ALLOWED) as app, \
            await app.client("acme") as acme:
        head = await app.kasal.store.head_position()
        response = await acme.post("/api/v1/agents", json=tampered)
        assert response.status_code == 422, response.text
        assert "hashes to" in response.json()["message"]
        response = await acme.post("/api/v1/agents", json=unnamed)
        assert response.status_code == 422, response.text
        assert "do not name it" in response.json()["message"]
        assert await app.kasal.store.head_position() == head


SLEEPY = ProjectTool(
    name="Sleepy Tool", description="Sleeps for the seconds it is given.",
    args_schema={"properties": {"seconds": {"type": "string"}}, "required": ["seconds"],
                 "type": "object"},
    module="sleepy", attribute="Sleepy", kind="class",
    files={"sleepy.py": (
        "import os\nimport time\n\nfrom crewai.tools import BaseTool\n\n\n"
        "class Sleepy(BaseTool):\n"
        "    name: str = 'Sleepy Tool'\n"
        "    description: str = 'Sleeps for the seconds it is given.'\n\n"
        "    def _run(self, seconds: str) -> str:\n"
        "        with open('sleepy.pid', 'w') as out:\n"
        "            out.write(str(os.getpid()))\n"
        "        time.sleep(float(seconds))\n"
        "        return 'woke up'\n")})
SLEEPER = {"role": "Sleeper", "goal": "Rest", "backstory": "Tired.",
           "llm": "kasal-offline/default", "tools": [SLEEPY.ref],
           "project_tools": {SLEEPY.sha256: SLEEPY.as_payload()}}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def wait_for_pid(space: Workspace) -> int:
    for _ in range(600):
        pid_file = space.root / "sleepy.pid"
        if pid_file.is_file() and pid_file.read_text():
            return int(pid_file.read_text())
        await asyncio.sleep(0.1)
    raise AssertionError("the tool never started")


async def test_a_failing_tool_and_a_call_past_its_timeout_are_errors_the_agent_reads(
    tmp_path: Path, wordsmith: dict[str, Any],
) -> None:
    async with open_app("sqlite", tmp_path, KASAL_PROJECT_TOOL_TIMEOUT_S=3,
                        **ALLOWED) as app, await app.client("acme") as acme:
        crew_id = await define(acme, {**SLEEPER, "tools": [*SLEEPER["tools"],
                                                            *wordsmith["tools"]],
                                      "project_tools": {**SLEEPER["project_tools"],
                                                        **wordsmith["project_tools"]}},
                               ("explode", "Use the Word Reverser on 'explode'."),
                               ("sleep", "Use the Sleepy Tool on '60'."),
                               ("again", "Use the Word Reverser on 'again'."))
        execution_id = await run(acme, crew_id, inputs={})
        events = await stream(acme, execution_id)
        view = await finished(acme, execution_id)
        assert view["status"] == "completed", view["error"]
        exploded, slept, again = tool_uses(events)
        assert exploded["error"].startswith(
            "Error: ValueError: this tool does not reverse 'explode' "
            "(own_tools_crew/tools/text_tools.py:")
        assert slept["error"] == ("Error: project tool 'Sleepy Tool' did not answer within 3 s; "
                                  "its process was stopped")
        pid = int((Workspace(app.kasal.settings.workspace_dir, "acme").root
                   / "sleepy.pid").read_text())
        assert not alive(pid)
        # the reverser's process outlived its tool's failure and answers the next call
        assert again["output"].startswith("niaga?! (pid "), again
        assert again["error"] is None


async def test_a_cancel_during_a_tool_call_stops_the_tools_process(tmp_path: Path) -> None:
    async with open_app("sqlite", tmp_path, **ALLOWED) as app, \
            await app.client("acme") as acme:
        crew_id = await define(acme, SLEEPER, ("sleep", "Use the Sleepy Tool on '120'."))
        execution_id = await run(acme, crew_id, inputs={})
        pid = await wait_for_pid(Workspace(app.kasal.settings.workspace_dir, "acme"))
        assert alive(pid)
        cancel = await acme.post(f"/api/v1/executions/{execution_id}/cancel", json={})
        assert cancel.status_code == 202, cancel.text
        view = await asyncio.wait_for(finished(acme, execution_id), 60)
        assert view["status"] == "cancelled", view
        assert not alive(pid)


FORKER = ProjectTool(
    name="Forker Tool", description="Forks a child that outlives it, then sleeps.",
    args_schema={"properties": {"seconds": {"type": "string"}}, "required": ["seconds"],
                 "type": "object"},
    module="forker", attribute="Forker", kind="class",
    files={"forker.py": (
        "import os\nimport time\n\nfrom crewai.tools import BaseTool\n\n\n"
        "class Forker(BaseTool):\n"
        "    name: str = 'Forker Tool'\n"
        "    description: str = 'Forks a child that outlives it, then sleeps.'\n\n"
        "    def _run(self, seconds: str) -> str:\n"
        "        child = os.fork()\n"
        "        if child == 0:  # holds every descriptor the tool's process had\n"
        "            time.sleep(300)\n"
        "            os._exit(0)\n"
        "        with open('forker.pid', 'w') as out:\n"
        "            out.write(str(child))\n"
        "        time.sleep(float(seconds))\n"
        "        return 'done'\n")})


async def test_a_tool_that_forks_is_stopped_with_its_children_and_the_run_ends(
    tmp_path: Path,
) -> None:
    agent = {**SLEEPER, "tools": [FORKER.ref],
             "project_tools": {FORKER.sha256: FORKER.as_payload()}}
    async with open_app("sqlite", tmp_path, KASAL_PROJECT_TOOL_TIMEOUT_S=3,
                        **ALLOWED) as app, await app.client("acme") as acme:
        crew_id = await define(acme, agent, ("fork", "Use the Forker Tool on '60'."))
        execution_id = await run(acme, crew_id, inputs={})
        events = await asyncio.wait_for(stream(acme, execution_id), 120)
        view = await finished(acme, execution_id)
        assert view["status"] == "completed", view["error"]
        (used,) = tool_uses(events)
        assert "did not answer within 3 s" in used["error"]
        child = int((Workspace(app.kasal.settings.workspace_dir, "acme").root
                     / "forker.pid").read_text())
        for _ in range(50):  # SIGKILL to the session; its reaping is init's
            if not alive(child):
                break
            await asyncio.sleep(0.1)
        assert not alive(child)
